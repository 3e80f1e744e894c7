"""Properties over arbitrary input: templating, conditions and endpoint routing never fail in
an unplanned way, and always answer in time."""

from __future__ import annotations

import json
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.instructions.conditions import ConditionSyntaxError, evaluate, parse
from workflows.shared.endpoints import EndpointRoute, UnknownEndpoint, resolve_endpoint
from workflows.shared.templating import Renderer, TemplateError, placeholders, references

TEXT = st.text(alphabet=string.printable + "{}[]é", max_size=300)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)


@given(TEXT)
def test_placeholders_are_found_inside_the_text_in_order(text: str) -> None:
    found = list(placeholders(text))
    for before, after in zip(found, found[1:], strict=False):
        assert before.end <= after.start
    for placeholder in found:
        written = text[placeholder.start : placeholder.end]
        assert written.startswith("{{") and written.endswith("}}")
        assert "{" not in written[2:-2] and "}" not in written[2:-2]


@given(TEXT, st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), JSON, max_size=4))
def test_rendering_either_succeeds_or_names_a_template_error(text: str, variables: dict) -> None:
    try:
        references(text)
        Renderer(variables, max_chars=10_000).render({"value": text})
    except TemplateError:
        pass


@given(TEXT, st.text(max_size=50))
def test_keep_unresolved_never_raises_and_fills_result(text: str, result: str) -> None:
    rendered = Renderer({"result": result}, keep_unresolved=True).render(text)
    assert isinstance(rendered, str)
    if "{{" not in text:
        assert rendered == text


@given(st.text(alphabet=string.printable, max_size=200), st.text(max_size=200))
@settings(max_examples=300)
def test_a_condition_parses_and_evaluates_or_is_a_syntax_error(expression: str, subject: str):
    try:
        tree = parse(expression)
    except ConditionSyntaxError as exc:
        assert 0 <= exc.position <= len(expression)
        return
    assert evaluate(tree, subject) in (True, False)


@given(JSON, st.sampled_from(["result is json", "result.a == 'x'", "result[0] > 1", "length > 2"]))
def test_conditions_on_any_json_answer_true_or_false(value: object, expression: str) -> None:
    assert evaluate(parse(expression), json.dumps(value)) in (True, False)


WORKERS = ["endpoint-1", "endpoint-2"]


@given(st.one_of(st.none(), st.text(max_size=80), st.sampled_from(WORKERS)))
def test_routing_is_total_and_only_names_configured_workers(value: str | None) -> None:
    try:
        route = resolve_endpoint(value, WORKERS)
    except UnknownEndpoint as exc:
        assert "neither a configured endpoint worker" in str(exc)
        return
    assert isinstance(route, EndpointRoute)
    if route.kind == "worker":
        assert route.task_queue in WORKERS
    elif route.kind == "proxy":
        assert route.proxy_url is not None and route.proxy_url.startswith(("http://", "https://"))
    else:
        assert not (value or "").strip()
