"""Pipeline validation, the dependency graph and the ready-set scheduler: pure, no Temporal."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.dag.graph import DagGraph, Problem, Scheduler, validate_pipeline
from workflows.dag.models import DagRunInput, StepConfig


def step(name: str, *dependencies: str, **fields: Any) -> dict[str, Any]:
    return {
        "step_name": name,
        "usid": fields.pop("usid", f"u-{name}"),
        "service_url": fields.pop("service_url", f"http://127.0.0.1:9000/{name}"),
        "dependencies": list(dependencies),
        **fields,
    }


def payload(*steps: dict[str, Any], **fields: Any) -> DagRunInput:
    return DagRunInput.model_validate(
        {"workflow_id": "wf-1", "STEPS_CONFIG": list(steps), **fields}
    )


def problems(*steps: dict[str, Any], **fields: Any) -> list[tuple[tuple[str | int, ...], str]]:
    return [(p.loc, p.msg) for p in validate_pipeline(payload(*steps, **fields))]


def graph(*steps: dict[str, Any]) -> DagGraph:
    return DagGraph.build(StepConfig.model_validate(s) for s in steps)


KNOWN = (
    "names no variable; known: original_input, input_data, input_data keys, <step>_result,"
    " step outputs and secrets.NAME"
)


class TestValidPipelines:
    def test_diamond_with_templates_passes(self) -> None:
        assert (
            problems(
                step("fetch", outputs=["doc"], input_prep_config={"body": "{{original_input}}"}),
                step(
                    "left",
                    "fetch",
                    outputs=["summary"],
                    input_prep_config={"body": {"text": "{{doc.content[0].text}}"}},
                ),
                step(
                    "right",
                    "u-fetch",
                    input_prep_config={"query": {"q": "{{fetch_result.id}} {{topic}}"}},
                ),
                step(
                    "join",
                    "left",
                    "right",
                    headers={"X-Doc": "{{doc.id}}"},
                    input_prep_config={
                        "body": ["{{summary}}", {"r": "{{right_result}}"}],
                        "headers": {"X-Topic": "{{input_data.topic}}"},
                    },
                ),
                input_data={"topic": "bees"},
            )
            == []
        )

    def test_single_step_without_anything(self) -> None:
        assert problems(step("only")) == []

    def test_lowercase_method_is_accepted(self) -> None:
        assert problems(step("a", method="patch")) == []
        assert payload(step("a", method="patch")).STEPS_CONFIG[0].method == "PATCH"

    @pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
    def test_every_supported_method(self, method: str) -> None:
        assert problems(step("a", method=method)) == []

    def test_https_url(self) -> None:
        assert problems(step("a", service_url="https://api.example.com/v1?x=1")) == []

    def test_templated_url_is_not_checked_as_a_url(self) -> None:
        assert problems(step("a", service_url="{{input_data.base}}/v1"), input_data={}) == []

    def test_selection_dependency_needs_no_producer(self) -> None:
        assert problems(step("a", "selection_writers")) == []

    def test_input_data_keys_are_variables(self) -> None:
        assert (
            problems(
                step("a", input_prep_config={"body": "{{city}} {{input_data.city}}"}),
                input_data={"city": "Oslo"},
            )
            == []
        )

    def test_transitive_dependency_allows_the_reference(self) -> None:
        assert (
            problems(
                step("a", outputs=["facts"]),
                step("b", "a"),
                step("c", "b", input_prep_config={"body": "{{facts}} {{a_result.x}}"}),
            )
            == []
        )

    def test_dependency_by_usid_allows_the_reference(self) -> None:
        assert problems(step("a"), step("b", "u-a", headers={"X": "{{a_result}}"})) == []

    def test_forward_dependency_in_payload_order(self) -> None:
        assert problems(step("b", "a", headers={"X": "{{a_result}}"}), step("a")) == []

    def test_thousand_step_chain_has_no_recursion_error(self) -> None:
        steps = [step("s0", outputs=["o0"])] + [
            step(f"s{i}", f"s{i - 1}", outputs=[f"o{i}"], input_prep_config={"body": "{{o0}}"})
            for i in range(1, 1000)
        ]
        assert validate_pipeline(payload(*steps)) == []

    def test_thousand_step_cycle_is_found(self) -> None:
        steps = [step("s0", "s999")] + [step(f"s{i}", f"s{i - 1}") for i in range(1, 1000)]
        found = problems(*steps)
        assert len(found) == 1
        loc, msg = found[0]
        assert loc == ("STEPS_CONFIG", 0, "dependencies")
        assert msg.startswith("dependency cycle: s0 -> s1 -> s2 -> ")
        assert msg.endswith(" -> s998 -> s999 -> s0")


class TestStructuralProblems:
    def test_duplicate_step_name(self) -> None:
        assert problems(step("a"), step("b"), step("a", usid="other")) == [
            (("STEPS_CONFIG", 2, "step_name"), "duplicate step_name 'a' (also step 0)")
        ]

    def test_duplicate_usid(self) -> None:
        assert problems(step("a", usid="x"), step("b", usid="x")) == [
            (("STEPS_CONFIG", 1, "usid"), "duplicate usid 'x' (also step 0)")
        ]

    def test_unknown_dependency_names_step_and_dependency(self) -> None:
        assert problems(step("a"), step("b", "a", "nope")) == [
            (
                ("STEPS_CONFIG", 1, "dependencies", 1),
                "step 'b' depends on 'nope', which is no step in STEPS_CONFIG",
            )
        ]

    def test_self_dependency_by_name_and_by_usid(self) -> None:
        assert problems(step("a", "a"), step("b", "u-b")) == [
            (("STEPS_CONFIG", 0, "dependencies", 0), "step 'a' depends on itself"),
            (("STEPS_CONFIG", 1, "dependencies", 0), "step 'b' depends on itself"),
        ]

    @pytest.mark.parametrize("method", ["FETCH", "HEAD", "OPTIONS"])
    def test_bad_method(self, method: str) -> None:
        assert problems(step("a", method=method)) == [
            (
                ("STEPS_CONFIG", 0, "method"),
                f"step 'a': method {method!r} is not one of GET, POST, PUT, PATCH, DELETE",
            )
        ]

    @pytest.mark.parametrize(
        "url", ["ftp://files.example.com/x", "http:///no-host", "localhost:8000/x", "/relative"]
    )
    def test_non_http_url(self, url: str) -> None:
        assert problems(step("a", service_url=url)) == [
            (
                ("STEPS_CONFIG", 0, "service_url"),
                f"step 'a': service_url {url!r} is not an http(s) URL",
            )
        ]


class TestCycles:
    def test_three_step_cycle_is_named_in_flow_order(self) -> None:
        assert problems(step("a", "c"), step("b", "a"), step("c", "b")) == [
            (("STEPS_CONFIG", 0, "dependencies"), "dependency cycle: a -> b -> c -> a")
        ]

    def test_cycle_below_a_root_points_at_its_first_step(self) -> None:
        found = problems(
            step("root"), step("a", "root", "c"), step("b", "a"), step("c", "b"), step("d", "c")
        )
        assert found == [
            (("STEPS_CONFIG", 1, "dependencies"), "dependency cycle: a -> b -> c -> a")
        ]

    def test_two_separate_cycles_are_both_named(self) -> None:
        found = problems(
            step("a", "b"), step("b", "a"), step("free"), step("c", "d"), step("d", "c")
        )
        assert found == [
            (("STEPS_CONFIG", 0, "dependencies"), "dependency cycle: a -> b -> a"),
            (("STEPS_CONFIG", 3, "dependencies"), "dependency cycle: c -> d -> c"),
        ]

    def test_cycle_through_a_usid(self) -> None:
        assert problems(step("a", "u-b"), step("b", "a")) == [
            (("STEPS_CONFIG", 0, "dependencies"), "dependency cycle: a -> b -> a")
        ]

    def test_cycle_through_a_selection_output(self) -> None:
        assert problems(step("a", "selection_x"), step("b", "a", outputs=["selection_x"])) == [
            (("STEPS_CONFIG", 0, "dependencies"), "dependency cycle: a -> b -> a")
        ]


class TestTemplateReferences:
    def test_secrets_are_a_known_root(self) -> None:
        assert (
            problems(
                step(
                    "a",
                    service_url="https://h/{{secrets.URL_KEY}}",
                    headers={"Authorization": "Bearer {{ secrets.API_TOKEN }}"},
                    input_prep_config={"query": {"k": "{{secrets._k2}}"}},
                ),
                # `secrets` is reserved: an input_data key of that name is not what it means.
                input_data={"secrets": {"x": 1}},
            )
            == []
        )

    @pytest.mark.parametrize(
        "written", ["{{secrets}}", "{{secrets.a.b}}", "{{secrets[0]}}", "{{secrets.my-key}}"]
    )
    def test_a_secret_must_be_named_by_an_identifier(self, written: str) -> None:
        expression = written[2:-2]
        assert problems(step("a", headers={"K": written})) == [
            (
                ("STEPS_CONFIG", 0, "headers", "K"),
                f"step 'a': {{{{{expression}}}}} is not {{{{secrets.NAME}}}} (NAME: a letter or"
                " underscore, then letters, digits and underscores)",
            )
        ]

    def test_unknown_variable(self) -> None:
        assert problems(step("a", input_prep_config={"body": {"x": "hi {{who}}"}})) == [
            (
                ("STEPS_CONFIG", 0, "input_prep_config", "body", "x"),
                f"step 'a': {{{{who}}}} {KNOWN}",
            )
        ]

    def test_unknown_variable_in_every_templated_field(self) -> None:
        found = problems(
            step(
                "a",
                service_url="http://h/{{u}}",
                headers={"H": "{{h}}"},
                input_prep_config={
                    "body": ["{{b}}"],
                    "query": {"q": "{{q}}"},
                    "headers": {"P": "{{p}}"},
                },
            )
        )
        assert [loc for loc, _ in found] == [
            ("STEPS_CONFIG", 0, "service_url"),
            ("STEPS_CONFIG", 0, "headers", "H"),
            ("STEPS_CONFIG", 0, "input_prep_config", "body", "[0]"),
            ("STEPS_CONFIG", 0, "input_prep_config", "query", "q"),
            ("STEPS_CONFIG", 0, "input_prep_config", "headers", "P"),
        ]

    def test_selection_value_is_not_a_variable(self) -> None:
        # The selection list gates the step; it is never substituted unless a step outputs it.
        assert problems(
            step("a", "selection_x", input_prep_config={"body": "{{selection_x}}"})
        ) == [
            (
                ("STEPS_CONFIG", 0, "input_prep_config", "body"),
                f"step 'a': {{{{selection_x}}}} {KNOWN}",
            )
        ]

    def test_output_of_a_step_not_depended_on(self) -> None:
        assert problems(
            step("writer", outputs=["draft"]),
            step("reviewer", input_prep_config={"body": {"text": "{{draft}}"}}),
        ) == [
            (
                ("STEPS_CONFIG", 1, "input_prep_config", "body", "text"),
                "step 'reviewer': {{draft}} is produced by step 'writer', which 'reviewer' does"
                " not depend on; add 'writer' to its dependencies",
            )
        ]

    def test_result_of_a_step_not_depended_on(self) -> None:
        assert problems(step("a"), step("b"), step("c", "b", headers={"X": "{{a_result.id}}"})) == [
            (
                ("STEPS_CONFIG", 2, "headers", "X"),
                "step 'c': {{a_result.id}} is produced by step 'a', which 'c' does not depend"
                " on; add 'a' to its dependencies",
            )
        ]

    def test_downstream_step_output_is_not_an_ancestor(self) -> None:
        found = problems(step("a", headers={"X": "{{b_result}}"}), step("b", "a"))
        assert found == [
            (
                ("STEPS_CONFIG", 0, "headers", "X"),
                "step 'a': {{b_result}} is produced by step 'b', which 'a' does not depend on;"
                " add 'b' to its dependencies",
            )
        ]

    def test_own_output_and_result(self) -> None:
        assert problems(
            step("a", outputs=["o"], input_prep_config={"body": "{{o}} {{a_result}}"})
        ) == [
            (
                ("STEPS_CONFIG", 0, "input_prep_config", "body"),
                "step 'a': {{o}} refers to its own output",
            ),
            (
                ("STEPS_CONFIG", 0, "input_prep_config", "body"),
                "step 'a': {{a_result}} refers to its own output",
            ),
        ]

    def test_unparseable_template(self) -> None:
        assert problems(step("a", input_prep_config={"query": {"q": "{{a..b}}"}})) == [
            (
                ("STEPS_CONFIG", 0, "input_prep_config", "query"),
                "step 'a': cannot parse {{a..b}} at position 1",
            )
        ]


class TestEveryProblemAtOnce:
    def test_structural_problems_are_all_listed(self) -> None:
        found = problems(
            step("a", method="FETCH"),
            step("a", usid="u-a", service_url="ftp://x/y"),
            step("c", "zzz", "selection_q", "c", service_url="http:///nohost"),
        )
        assert found == [
            (
                ("STEPS_CONFIG", 0, "method"),
                "step 'a': method 'FETCH' is not one of GET, POST, PUT, PATCH, DELETE",
            ),
            (("STEPS_CONFIG", 1, "step_name"), "duplicate step_name 'a' (also step 0)"),
            (("STEPS_CONFIG", 1, "usid"), "duplicate usid 'u-a' (also step 0)"),
            (
                ("STEPS_CONFIG", 1, "service_url"),
                "step 'a': service_url 'ftp://x/y' is not an http(s) URL",
            ),
            (
                ("STEPS_CONFIG", 2, "service_url"),
                "step 'c': service_url 'http:///nohost' is not an http(s) URL",
            ),
            (
                ("STEPS_CONFIG", 2, "dependencies", 0),
                "step 'c' depends on 'zzz', which is no step in STEPS_CONFIG",
            ),
            (("STEPS_CONFIG", 2, "dependencies", 2), "step 'c' depends on itself"),
        ]

    def test_structural_cycle_and_template_problems_together(self) -> None:
        found = problems(
            step("a", "b", method="FETCH"),
            step("b", "a"),
            step("c", "ghost", outputs=["x"]),
            step("d", input_prep_config={"body": {"u": "{{unknown}}", "x": "{{x}}"}}),
        )
        assert [loc for loc, _ in found] == [
            ("STEPS_CONFIG", 0, "method"),
            ("STEPS_CONFIG", 2, "dependencies", 0),
            ("STEPS_CONFIG", 0, "dependencies"),
            ("STEPS_CONFIG", 3, "input_prep_config", "body", "u"),
            ("STEPS_CONFIG", 3, "input_prep_config", "body", "x"),
        ]
        assert found[2][1] == "dependency cycle: a -> b -> a"
        assert "'d': {{x}} is produced by step 'c'" in found[4][1]

    def test_duplicates_stop_before_graph_checks(self) -> None:
        # With two steps called "a" the graph is ambiguous, so only the duplicate is reported.
        found = problems(step("a", "b"), step("b", "a"), step("a", usid="u-a2"))
        assert found == [
            (("STEPS_CONFIG", 2, "step_name"), "duplicate step_name 'a' (also step 0)")
        ]

    def test_as_dict_is_shaped_like_fastapi_422(self) -> None:
        [problem] = validate_pipeline(payload(step("a", "nope")))
        assert problem.as_dict() == {
            "loc": ["body", "STEPS_CONFIG", 0, "dependencies", 0],
            "msg": "step 'a' depends on 'nope', which is no step in STEPS_CONFIG",
            "type": "value_error",
        }

    def test_problem_as_dict_always_starts_with_body(self) -> None:
        assert Problem(("x",), "m").as_dict()["loc"] == ["body", "x"]


class TestDagGraph:
    def test_upstream_by_step_name_and_by_usid_without_duplicates(self) -> None:
        g = graph(step("a"), step("b", "u-a"), step("c", "a", "b", "u-a"))
        assert g.upstream == {"a": [], "b": ["a"], "c": ["a", "b"]}
        assert g.order == ["a", "b", "c"]

    def test_selection_dependency_waits_for_the_step_that_outputs_it(self) -> None:
        g = graph(
            step("picker", outputs=["selection_writers"]),
            step("writer", "selection_writers", "selection_external"),
        )
        assert g.upstream["writer"] == ["picker"]
        assert g.selections == {
            "picker": [],
            "writer": ["selection_writers", "selection_external"],
        }

    def test_selection_without_producer_adds_no_upstream(self) -> None:
        g = graph(step("a", "selection_x"))
        assert g.upstream["a"] == []
        assert g.selections["a"] == ["selection_x"]

    def test_unknown_and_self_dependencies_are_ignored(self) -> None:
        assert graph(step("a", "a", "ghost")).upstream == {"a": []}

    def test_ancestors(self) -> None:
        g = graph(step("a"), step("b", "a"), step("c", "b"), step("z"))
        ancestry = g.ancestry()
        assert ancestry.includes("c", "a") and ancestry.includes("c", "b")
        assert not ancestry.includes("a", "c") and not ancestry.includes("a", "a")

    def test_no_cycles_in_a_dag(self) -> None:
        assert graph(step("a"), step("b", "a"), step("c", "a", "b")).find_cycles() == []


class TestScheduler:
    def test_ready_set_is_not_level_by_level(self) -> None:
        # a -> c -> e and b (slow) -> d: when c finishes, e may start while b still runs.
        g = graph(step("a"), step("b"), step("c", "a"), step("d", "b"), step("e", "c"))
        scheduler = Scheduler(g)
        assert scheduler.take_ready() == ["a", "b"]
        assert scheduler.running == {"a", "b"}
        assert scheduler.take_ready() == []

        scheduler.complete("a")
        assert scheduler.take_ready() == ["c"]

        scheduler.complete("c")
        assert scheduler.take_ready() == ["e"]

        scheduler.complete("b")
        assert scheduler.take_ready() == ["d"]

    def test_step_waits_for_every_dependency(self) -> None:
        g = graph(step("a"), step("b"), step("c", "a", "b"))
        scheduler = Scheduler(g)
        assert scheduler.take_ready() == ["a", "b"]
        scheduler.complete("a")
        assert scheduler.take_ready() == []
        scheduler.complete("b")
        assert scheduler.take_ready() == ["c"]

    def test_ready_steps_start_in_payload_order(self) -> None:
        g = graph(step("z"), step("y", "z"), step("x", "z"), step("w"))
        scheduler = Scheduler(g, max_parallel=1)
        assert scheduler.take_ready() == ["z"]
        scheduler.complete("z")
        assert scheduler.take_ready() == ["y"]
        scheduler.complete("y")
        assert scheduler.take_ready() == ["x"]

    def test_max_parallel_caps_running_steps(self) -> None:
        g = graph(*(step(f"s{i}") for i in range(5)))
        scheduler = Scheduler(g, max_parallel=2)
        assert scheduler.take_ready() == ["s0", "s1"]
        assert scheduler.take_ready() == []
        scheduler.complete("s0")
        assert scheduler.take_ready() == ["s2"]

    def test_no_cap_by_default(self) -> None:
        g = graph(*(step(f"s{i}") for i in range(50)))
        assert len(Scheduler(g).take_ready()) == 50

    def test_failed_step_blocks_its_dependents(self) -> None:
        g = graph(step("a"), step("b", "a"))
        scheduler = Scheduler(g)
        assert scheduler.take_ready() == ["a"]
        scheduler.fail("a")
        assert scheduler.take_ready() == []
        assert scheduler.pending == ["b"]

    def test_cascade_abort_reaches_transitive_dependents_only(self) -> None:
        g = graph(
            step("sel"),
            step("other"),
            step("child", "sel"),
            step("grandchild", "child"),
            step("mixed", "other", "grandchild"),
            step("sibling", "other"),
        )
        scheduler = Scheduler(g)
        assert scheduler.take_ready() == ["sel", "other"]
        scheduler.complete("other")
        scheduler.abort("sel")
        assert scheduler.cascade_abort() == ["child", "grandchild", "mixed"]
        assert scheduler.aborted == {"sel", "child", "grandchild", "mixed"}
        assert scheduler.take_ready() == ["sibling"]
        assert scheduler.cascade_abort() == []

    def test_cascade_abort_follows_payload_order_backwards_too(self) -> None:
        # The dependent appears before its upstream in the payload; the walk still reaches it.
        g = graph(step("late", "mid"), step("mid", "top"), step("top"))
        scheduler = Scheduler(g)
        scheduler.abort("top")
        assert scheduler.cascade_abort() == ["late", "mid"]

    def test_an_aborted_step_that_was_ready_never_starts(self) -> None:
        g = graph(step("a"), step("b", "a"), step("c", "b"))
        scheduler = Scheduler(g)
        scheduler.take_ready()
        scheduler.complete("a")
        scheduler.abort("b")  # b was ready; its selection said no
        assert scheduler.take_ready() == []
        assert scheduler.cascade_abort() == ["c"]

    def test_cascade_abort_leaves_running_and_completed_steps(self) -> None:
        g = graph(step("a"), step("b"), step("c"), step("d", "a", "b"), step("e", "a", "c"))
        scheduler = Scheduler(g)
        scheduler.take_ready()
        scheduler.complete("c")
        scheduler.abort("a")
        assert scheduler.cascade_abort() == ["d", "e"]
        assert scheduler.running == {"b"}
        assert "c" in scheduler.completed

    def test_steps_an_earlier_run_finished_never_start_again(self) -> None:
        # A run that continued as new replays what the chain finished before it.
        g = graph(step("a"), step("b", "a"), step("c", "b"), step("d"))
        scheduler = Scheduler(g)
        scheduler.complete("a")
        scheduler.complete("b")
        assert scheduler.take_ready() == ["c", "d"]

    def test_pending(self) -> None:
        g = graph(step("a"), step("b"), step("c"), step("d"), step("e", "a"))
        scheduler = Scheduler(g, max_parallel=4)
        assert scheduler.take_ready() == ["a", "b", "c", "d"]
        scheduler.complete("a")
        scheduler.abort("c")
        scheduler.fail("d")
        assert scheduler.pending == ["e"]

    def test_a_ten_thousand_step_chain_validates(self) -> None:
        # How validation's time grows with the chain: bench/hostile_inputs.py.
        n = 10_000
        steps = [
            {
                "step_name": f"s{i}",
                "usid": f"u{i}",
                "service_url": "https://example.com/x",
                "dependencies": [f"s{i - 1}"] if i else [],
                "outputs": [f"o{i}"],
                "input_prep_config": {"body": {"first": "{{o0}}"} if i else {}},
            }
            for i in range(n)
        ]
        run = DagRunInput.model_validate({"workflow_id": "w", "STEPS_CONFIG": steps}, context=None)
        assert validate_pipeline(run) == []

    def test_a_wide_graph_is_scheduled_whole(self) -> None:
        # How scheduling's time grows with the width: bench/hostile_inputs.py.
        n = 20_000
        g = graph(step("root"), *(step(f"s{i}", "root") for i in range(n)))
        scheduler = Scheduler(g, max_parallel=500)
        scheduler.take_ready()
        scheduler.complete("root")
        done = 0
        while batch := scheduler.take_ready():
            for name in batch:
                scheduler.complete(name)
                done += 1
        assert done == n


def test_an_output_name_has_one_producer():
    run = DagRunInput.model_validate(
        {
            "workflow_id": "w",
            "STEPS_CONFIG": [
                {"step_name": "a", "usid": "1", "service_url": "http://h/x", "outputs": ["out"]},
                {
                    "step_name": "b",
                    "usid": "2",
                    "service_url": "http://h/x",
                    "outputs": ["x", "out"],
                },
            ],
        }
    )
    problems = validate_pipeline(run)
    assert [(p.loc, p.msg) for p in problems] == [
        (("STEPS_CONFIG", 1, "outputs", 1), "step 'b': output 'out' is also produced by step 0")
    ]


class TestSegmentClaims:
    def test_a_segment_claims_the_steps_below_its_roots(self) -> None:
        # a -> b -> c, and d below both b and x: d waits for x, which the segment cannot run.
        g = graph(step("a"), step("x"), step("b", "a"), step("c", "b"), step("d", "b", "x"))
        scheduler = Scheduler(g)
        assert scheduler.take_ready() == ["a", "x"]
        below = scheduler.claim(["a"], lambda name: True, limit=10)
        assert below == ["b", "c"]
        assert scheduler.claimed == {"b", "c"}
        # Claimed steps are not handed out when their upstream completes.
        scheduler.complete("a")
        assert scheduler.take_ready() == []
        scheduler.complete("b")
        scheduler.complete("c")
        assert scheduler.claimed == set()
        scheduler.complete("x")
        assert scheduler.take_ready() == ["d"]

    def test_a_segment_claims_ready_steps_left_for_lack_of_room(self) -> None:
        g = graph(*(step(f"s{i}") for i in range(5)))
        scheduler = Scheduler(g, max_parallel=2)
        assert scheduler.take_ready() == ["s0", "s1"]
        assert scheduler.claim(["s0", "s1"], lambda name: True, limit=10) == ["s2", "s3", "s4"]
        assert scheduler.running == {"s0", "s1"}
        assert scheduler.take_ready() == []

    def test_claims_stop_at_ineligible_steps_and_the_limit(self) -> None:
        g = graph(step("a"), step("b", "a"), step("c", "b"), step("d", "a"))
        scheduler = Scheduler(g)
        assert scheduler.take_ready() == ["a"]
        # b is not eligible: neither b nor c below it is claimed; d is.
        assert scheduler.claim(["a"], lambda name: name != "b", limit=10) == ["d"]
        other = Scheduler(g)
        other.take_ready()
        assert other.claim(["a"], lambda name: True, limit=1) == ["b"]

    def test_released_steps_are_ready_again_once_their_upstream_completed(self) -> None:
        g = graph(step("a"), step("b", "a"), step("c", "b"))
        scheduler = Scheduler(g)
        scheduler.take_ready()
        assert scheduler.claim(["a"], lambda name: True, limit=10) == ["b", "c"]
        # The segment ran a and b, and stopped before c (its checkpoint).
        scheduler.complete("a")
        scheduler.complete("b")
        scheduler.release("c")
        assert scheduler.take_ready() == ["c"]
        assert scheduler.pending == []

    def test_a_released_step_whose_upstream_did_not_complete_waits(self) -> None:
        g = graph(step("a"), step("b", "a"))
        scheduler = Scheduler(g)
        scheduler.take_ready()
        scheduler.claim(["a"], lambda name: True, limit=10)
        scheduler.cancel("a")
        scheduler.release("b")
        assert scheduler.take_ready() == []
        assert scheduler.pending == ["a", "b"]
