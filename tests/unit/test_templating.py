"""`{{…}}` templates: reference parsing, typed substitution, nested bodies and error messages."""

from __future__ import annotations

import pytest

from workflows.shared.templating import (
    Reference,
    Renderer,
    TemplateError,
    parse_reference,
    references,
    render,
)

VARIABLES = {
    "original_input": "hello world",
    "input_data": {"topic": "bees", "limit": 3},
    "topic": "bees",
    "limit": 3,
    "ratio": 0.5,
    "nothing": None,
    "flag": True,
    "summary": "Bees dance.",
    "tags": ["a", "b", "c"],
    "llm_result": {
        "id": "msg_1",
        "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}],
    },
    "doc": {"quoted key": {"x": 1}, "my-key": "dash", "items": [{"name": "n0"}, {"name": "n1"}]},
    "answer": '{"names": ["ada", "grace"], "score": 7}',
    "json_list": "[10, 20, 30]",
}


class TestParseReference:
    def test_root_alone(self) -> None:
        assert parse_reference("summary") == Reference("summary", "summary", ())

    def test_surrounding_whitespace_is_ignored(self) -> None:
        assert parse_reference("  summary ") == Reference("summary", "summary", ())

    def test_dotted_fields(self) -> None:
        assert parse_reference("a.b.c") == Reference("a.b.c", "a", ("b", "c"))

    def test_index(self) -> None:
        assert parse_reference("a[0]") == Reference("a[0]", "a", (0,))

    def test_negative_index(self) -> None:
        assert parse_reference("a[-1]").path == (-1,)

    def test_fields_and_indices_mixed(self) -> None:
        ref = parse_reference("step_result.content[0].text")
        assert ref.root == "step_result"
        assert ref.path == ("content", 0, "text")

    def test_quoted_keys_single_and_double(self) -> None:
        assert parse_reference("a['quoted key']").path == ("quoted key",)
        assert parse_reference('a["x.y z"]').path == ("x.y z",)

    def test_dash_and_dollar_in_names(self) -> None:
        assert parse_reference("my-var.$ref").path == ("$ref",)
        assert parse_reference("my-var.$ref").root == "my-var"

    @pytest.mark.parametrize(
        ("expression", "position"),
        [
            (".a", 0),
            ("[0]", 0),
            ("0abc", 0),
            ("a..b", 1),
            ("a.0", 1),
            ("a[", 1),
            ("a[0", 1),
            ("a[x]", 1),
            ("a['x]", 1),
            ("a b", 1),
            ("a.b c", 3),
        ],
    )
    def test_bad_syntax_names_the_position(self, expression: str, position: int) -> None:
        with pytest.raises(TemplateError) as info:
            parse_reference(expression)
        assert str(info.value) == f"cannot parse {{{{{expression}}}}} at position {position}"

    @pytest.mark.parametrize("expression", ["", "   "])
    def test_empty_placeholder(self, expression: str) -> None:
        with pytest.raises(TemplateError, match=r"^empty placeholder \{\{\}\}$"):
            parse_reference(expression)


class TestWholePlaceholderKeepsType:
    def test_object(self) -> None:
        assert render("{{input_data}}", VARIABLES) == {"topic": "bees", "limit": 3}

    def test_list(self) -> None:
        assert render("{{tags}}", VARIABLES) == ["a", "b", "c"]

    def test_integer_and_float(self) -> None:
        assert render("{{limit}}", VARIABLES) == 3
        assert render("{{ratio}}", VARIABLES) == 0.5

    def test_none_and_bool(self) -> None:
        assert render("{{nothing}}", VARIABLES) is None
        assert render("{{flag}}", VARIABLES) is True

    def test_spaces_inside_braces(self) -> None:
        assert render("{{  input_data.limit  }}", VARIABLES) == 3

    def test_nested_path(self) -> None:
        assert render("{{llm_result.content[1].text}}", VARIABLES) == "second"
        assert render("{{doc.items[-1].name}}", VARIABLES) == "n1"
        assert render("{{doc['quoted key']}}", VARIABLES) == {"x": 1}
        assert render("{{doc.my-key}}", VARIABLES) == "dash"

    def test_surrounding_whitespace_makes_it_text(self) -> None:
        assert render(" {{limit}}", VARIABLES) == " 3"
        assert render("{{tags}}\n", VARIABLES) == '["a", "b", "c"]\n'

    def test_two_adjacent_placeholders_are_text(self) -> None:
        assert render("{{limit}}{{limit}}", VARIABLES) == "33"


class TestEmbeddedPlaceholders:
    def test_strings_are_inserted_raw(self) -> None:
        assert render("Topic: {{topic}}!", VARIABLES) == "Topic: bees!"
        # No JSON quoting of strings inside text.
        assert render("say {{original_input}}", VARIABLES) == "say hello world"

    def test_objects_and_lists_render_as_json(self) -> None:
        assert render("data={{input_data}}", VARIABLES) == 'data={"topic": "bees", "limit": 3}'
        assert render("tags: {{tags}}", VARIABLES) == 'tags: ["a", "b", "c"]'

    def test_scalars_render_as_json(self) -> None:
        assert render("{{nothing}} {{flag}} {{limit}} {{ratio}}", VARIABLES) == "null true 3 0.5"

    def test_non_ascii_is_kept(self) -> None:
        assert render("x {{v}}", {"v": {"name": "café"}}) == 'x {"name": "café"}'

    def test_several_placeholders(self) -> None:
        text = "{{topic}} x{{limit}} ({{llm_result.content[0].text}})"
        assert render(text, VARIABLES) == "bees x3 (first)"

    def test_text_without_placeholders_is_unchanged(self) -> None:
        assert render("plain {text} }}{{", VARIABLES) == "plain {text} }}{{"


class TestNestedStructures:
    def test_dict_body_keeps_types_per_value(self) -> None:
        body = {
            "prompt": "Write about {{topic}}",
            "max": "{{limit}}",
            "context": "{{llm_result}}",
            "meta": {"tags": "{{tags}}", "first": "{{tags[0]}}"},
        }
        assert render(body, VARIABLES) == {
            "prompt": "Write about bees",
            "max": 3,
            "context": VARIABLES["llm_result"],
            "meta": {"tags": ["a", "b", "c"], "first": "a"},
        }

    def test_list_body(self) -> None:
        body = ["{{limit}}", {"t": "{{topic}}"}, ["{{nothing}}"], "n={{limit}}"]
        assert render(body, VARIABLES) == [3, {"t": "bees"}, [None], "n=3"]

    def test_non_string_leaves_are_unchanged(self) -> None:
        body = {"n": 1, "f": 1.5, "b": False, "z": None}
        assert render(body, VARIABLES) == body

    def test_keys_are_not_rendered(self) -> None:
        assert render({"{{topic}}": "{{topic}}"}, VARIABLES) == {"{{topic}}": "bees"}

    def test_tuple_renders_as_list(self) -> None:
        assert render(("{{limit}}",), VARIABLES) == [3]

    def test_input_is_not_mutated(self) -> None:
        body = {"a": ["{{limit}}"]}
        render(body, VARIABLES)
        assert body == {"a": ["{{limit}}"]}


class TestErrors:
    def test_missing_variable(self) -> None:
        with pytest.raises(TemplateError) as info:
            render({"body": {"x": "see {{missing.field}}"}}, VARIABLES)
        assert str(info.value) == "{{missing.field}}: no variable named 'missing'"

    def test_missing_field_lists_the_keys_there(self) -> None:
        with pytest.raises(TemplateError) as info:
            render("{{input_data.nope}}", VARIABLES)
        assert str(info.value) == (
            "{{input_data.nope}}: input_data has no field 'nope'"
            " (it is an object with keys [limit, topic])"
        )

    def test_missing_field_deep_names_the_walked_path(self) -> None:
        with pytest.raises(TemplateError) as info:
            render("{{llm_result.content[0].txt}}", VARIABLES)
        assert str(info.value) == (
            "{{llm_result.content[0].txt}}: llm_result.content[0] has no field 'txt'"
            " (it is an object with keys [text, type])"
        )

    def test_index_out_of_range_gives_the_list_length(self) -> None:
        with pytest.raises(TemplateError) as info:
            render("{{llm_result.content[2].text}}", VARIABLES)
        assert str(info.value) == (
            "{{llm_result.content[2].text}}: llm_result.content has no index [2]"
            " (it is a list of 2)"
        )

    def test_negative_index_out_of_range(self) -> None:
        with pytest.raises(TemplateError, match=r"tags has no index \[-4\] \(it is a list of 3\)"):
            render("{{tags[-4]}}", VARIABLES)

    def test_index_into_object(self) -> None:
        with pytest.raises(TemplateError) as info:
            render("{{input_data[0]}}", VARIABLES)
        assert "input_data has no index [0] (it is an object with keys [limit, topic])" in str(
            info.value
        )

    def test_field_of_a_scalar_names_its_type(self) -> None:
        with pytest.raises(TemplateError) as info:
            render("{{limit.value}}", VARIABLES)
        assert str(info.value).startswith("{{limit.value}}: limit has no field 'value'")
        assert "int" in str(info.value)

    def test_field_of_null(self) -> None:
        with pytest.raises(TemplateError) as info:
            render("{{nothing.x}}", VARIABLES)
        assert str(info.value).startswith("{{nothing.x}}: nothing has no field 'x'")
        assert "null" in str(info.value)

    def test_index_into_plain_text(self) -> None:
        with pytest.raises(
            TemplateError, match=r"summary has no index \[0\] \(it is of type str\)"
        ):
            render("{{summary[0]}}", VARIABLES)

    def test_length_of_an_object_is_an_error(self) -> None:
        with pytest.raises(TemplateError, match=r"input_data has no field 'length'"):
            render("{{input_data.length}}", VARIABLES)

    def test_error_in_embedded_placeholder(self) -> None:
        with pytest.raises(TemplateError, match=r"^\{\{tags\[9\]\}\}: tags has no index \[9\]"):
            render("first tag: {{tags[9]}}", VARIABLES)

    def test_bad_syntax_while_rendering(self) -> None:
        with pytest.raises(TemplateError, match=r"cannot parse \{\{a\.\.b\}\}"):
            render({"x": ["{{a..b}}"]}, VARIABLES)

    def test_empty_placeholder_while_rendering(self) -> None:
        with pytest.raises(TemplateError, match="empty placeholder"):
            render("x {{ }} y", VARIABLES)

    def test_template_error_is_a_value_error(self) -> None:
        assert issubclass(TemplateError, ValueError)


class TestLength:
    def test_length_of_a_list(self) -> None:
        assert render("{{tags.length}}", VARIABLES) == 3
        assert render("{{llm_result.content.length}}", VARIABLES) == 2

    def test_length_of_a_string(self) -> None:
        assert render("{{summary.length}}", VARIABLES) == len("Bees dance.")

    def test_length_in_text(self) -> None:
        assert render("{{tags.length}} tags", VARIABLES) == "3 tags"

    def test_a_field_named_length_wins(self) -> None:
        assert render("{{v.length}}", {"v": {"length": "long"}}) == "long"


class TestJsonStringVariables:
    def test_field_of_a_json_text(self) -> None:
        assert render("{{answer.score}}", VARIABLES) == 7
        assert render("{{answer.names}}", VARIABLES) == ["ada", "grace"]

    def test_index_inside_a_json_text(self) -> None:
        assert render("{{answer.names[1]}}", VARIABLES) == "grace"
        assert render("{{json_list[0]}}", VARIABLES) == 10

    def test_length_of_a_list_inside_a_json_text(self) -> None:
        assert render("{{answer.names.length}}", VARIABLES) == 2

    def test_the_whole_json_text_stays_text(self) -> None:
        assert render("{{answer}}", VARIABLES) == VARIABLES["answer"]

    def test_json_text_nested_in_an_object(self) -> None:
        variables = {"r": {"message": {"content": '{"city": "Oslo"}'}}}
        assert render("{{r.message.content.city}}", variables) == "Oslo"

    def test_field_of_non_json_text_is_an_error(self) -> None:
        with pytest.raises(TemplateError, match=r"summary has no field 'x' \(it is of type str\)"):
            render("{{summary.x}}", VARIABLES)


class TestReferences:
    def test_lists_every_placeholder_with_its_location(self) -> None:
        body = {"a": ["{{x.y}}", "z {{w[0]}} {{v}}"], "{{k}}": "plain", "n": 5}
        found = [(where, ref.text) for where, ref in references(body)]
        assert found == [("a[0]", "x.y"), ("a[1]", "w[0]"), ("a[1]", "v")]

    def test_top_level_string_and_list(self) -> None:
        assert [(w, r.root) for w, r in references("{{a}}")] == [("", "a")]
        assert [(w, r.root) for w, r in references(["x", "{{b}}"])] == [("[1]", "b")]

    def test_bad_syntax_raises(self) -> None:
        with pytest.raises(TemplateError):
            references({"a": "{{.bad}}"})


class TestScanner:
    @pytest.mark.parametrize(
        "text",
        ["{{" + " " * 100_000, ("{{ a" + " " * 50) * 2_000, "{" * 100_000, "{{}" * 30_000],
    )
    def test_hostile_text_holds_no_reference(self, text: str) -> None:
        # How the scan's time grows with such text: bench/hostile_inputs.py.
        assert references({"header": text}) == []

    def test_braces_inside_are_no_placeholder(self) -> None:
        assert render("{{a}b}} {{{{x}}", {"x": 1}) == "{{a}b}} {{1"

    def test_unresolved_placeholders_can_be_kept_as_written(self) -> None:
        rendered = render(
            {"q": "{{ result }} and {{other}} and {{bad[}}"},
            {"result": "R"},
            keep_unresolved=True,
        )
        assert rendered == {"q": "R and {{other}} and {{bad[}}"}


class TestBudget:
    def test_a_large_value_referenced_many_times_stops_at_the_budget(self) -> None:
        big = "x" * 100_000
        template = {"body": ["{{big}}"] * 1_000}
        renderer = Renderer({"big": big}, max_chars=1_000_000)
        with pytest.raises(TemplateError, match="larger than 1000000 characters"):
            renderer.render(template)

    def test_typed_values_literal_text_and_charged_values_all_count(self) -> None:
        renderer = Renderer({"doc": {"k": "v" * 10}}, max_chars=40)
        assert renderer.render("{{doc}}") == {"k": "v" * 10}  # 19 characters as JSON
        renderer.charge("12345678901234567890")  # 39
        with pytest.raises(TemplateError):
            renderer.render("ab")

    def test_within_the_budget_renders_as_without_one(self) -> None:
        variables = {"a": [1, 2], "b": "text"}
        template = {"x": "{{a}}", "y": "{{b}} and {{a}}"}
        assert Renderer(variables, max_chars=100).render(template) == render(template, variables)
