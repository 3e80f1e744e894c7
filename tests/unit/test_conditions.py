"""The deterministic condition language: every operator, precedence and syntax errors."""

from __future__ import annotations

import json

import pytest

from workflows.instructions.conditions import (
    And,
    Atom,
    ConditionSyntaxError,
    Not,
    Or,
    Subject,
    evaluate,
    parse,
    try_parse,
)


def check(expression: str, text: str | None) -> bool:
    return evaluate(parse(expression), text)


DOC = json.dumps(
    {
        "status": "ok",
        "count": 5,
        "ratio": "2.5",
        "ok": True,
        "none": None,
        "tags": ["a", "b"],
        "items": [{"name": "xylophone"}, {"name": "drum"}],
        "meta": {},
        "blank": "",
        "nested": '{"a": 1}',
        "my-key": "dash",
    }
)


class TestTextOperators:
    def test_contains_single_and_double_quotes(self) -> None:
        assert check("result contains 'error'", "an error happened")
        assert check('result contains "error"', "an error happened")
        assert not check("result contains 'error'", "all fine")

    def test_contains_is_case_sensitive(self) -> None:
        assert not check("result contains 'Error'", "an error happened")

    def test_matches_with_flags(self) -> None:
        assert check(r"result matches /^\d{3}$/", "123")
        assert not check("result matches /ERROR/", "an error")
        assert check("result matches /ERROR/i", "an error")
        assert check("result matches /^b$/m", "a\nb\nc")
        assert check("result matches 'e+rr'", "an eerror")
        assert check(r"result matches /a\/b/", "a/b")

    def test_matches_answers_patterns_that_make_backtracking_explode(self) -> None:
        # A backtracking engine takes hours on these (the test would time out); RE2 answers
        # at once. How its time grows: bench/hostile_inputs.py.
        assert not check("result matches /(a+)+$/", "a" * 50_000 + "b")
        assert check("result matches /(x+x+)+y/s", "x" * 50_000 + "y")

    def test_patterns_re2_cannot_run_are_syntax_errors(self) -> None:
        with pytest.raises(ConditionSyntaxError, match="invalid regex"):
            parse(r"result matches /(a)\1/")
        with pytest.raises(ConditionSyntaxError, match="unknown regex flag 'x'"):
            parse("result matches /a b/x")

    def test_equality_ignores_surrounding_whitespace(self) -> None:
        assert check("result == 'yes'", "yes\n")
        assert not check("result == 'yes'", "yes please")
        assert check("result != 'yes'", "no")
        assert not check("result != 'yes'", " yes ")

    def test_result_compares_numerically_when_it_is_a_number(self) -> None:
        assert check("result > 3", "4.5")
        assert check("result == 4", " 4.0 ")
        assert not check("result > 3", "four")

    @pytest.mark.parametrize(
        ("expression", "expected"),
        [
            ("length > 4", True),
            ("length > 5", False),
            ("length >= 5", True),
            ("length < 5", False),
            ("length <= 5", True),
            ("length == 5", True),
            ("length != 5", False),
        ],
    )
    def test_length_operators(self, expression: str, expected: bool) -> None:
        assert check(expression, "  hello\n") is expected

    def test_is_empty(self) -> None:
        assert check("result is empty", "  \n")
        assert check("result is empty", None)
        assert not check("result is empty", "x")
        assert check("result is not empty", "x")

    def test_is_json(self) -> None:
        assert check("result is json", '{"a": 1}')
        assert check("result is json", "```json\n[1, 2]\n```")
        assert not check("result is json", "not json {")
        assert check("result is not json", "plain text")


class TestFieldAccess:
    def test_string_field_equality(self) -> None:
        assert check("result.status == 'ok'", DOC)
        assert not check("result.status == 'OK'", DOC)
        assert check("result.status != 'failed'", DOC)

    def test_numbers_compare_numerically(self) -> None:
        assert check("result.count > 3", DOC)
        assert check("result.count == 5", DOC)
        assert not check("result.count < 5", DOC)
        assert check("result.ratio >= 2.5", DOC)

    def test_index_and_nested_field(self) -> None:
        assert check("result.items[0].name contains 'xylo'", DOC)
        assert check("result.items[1].name == 'drum'", DOC)
        assert check("result.items[-1].name == 'drum'", DOC)
        assert check("result['my-key'] == 'dash'", DOC)

    def test_missing_field_is_false_not_an_error(self) -> None:
        assert not check("result.missing == 'x'", DOC)
        assert not check("result.missing != 'x'", DOC)
        assert not check("result.items[9].name contains 'x'", DOC)
        assert not check("result.status.deeper == 'x'", DOC)
        assert not check("result.missing is empty", DOC)
        assert not check("result.missing is not empty", DOC)
        assert check("not result.missing == 'x'", DOC)

    def test_text_that_is_not_json_makes_field_atoms_false(self) -> None:
        assert not check("result.status == 'ok'", "status: ok")

    def test_fenced_json_is_read(self) -> None:
        assert check("result.status == 'ok'", '```json\n{"status": "ok"}\n```')

    def test_contains_on_arrays_and_objects(self) -> None:
        assert check("result.tags contains 'a'", DOC)
        assert not check("result.tags contains 'c'", DOC)
        assert check("result contains 'status'", DOC)
        assert check("result.items[0] contains 'name'", DOC)

    def test_non_string_values_compare_by_json_text(self) -> None:
        assert check("result.ok == 'true'", DOC)
        assert check("result.none == 'null'", DOC)
        assert not check("result.ok == 1", DOC)

    def test_non_numbers_make_numeric_comparisons_false(self) -> None:
        assert not check("result.status > 1", DOC)
        assert not check("result.status != 1", DOC)

    def test_is_empty_and_is_json_on_fields(self) -> None:
        assert check("result.none is empty", DOC)
        assert check("result.meta is empty", DOC)
        assert check("result.blank is empty", DOC)
        assert check("result.tags is not empty", DOC)
        assert check("result.items is json", DOC)
        assert check("result.nested is json", DOC)
        assert not check("result.status is json", DOC)

    def test_field_names_keep_their_case_and_may_be_keywords(self) -> None:
        doc = '{"Status": "up", "length": 3, "and": "x"}'
        assert check("result.Status == 'up'", doc)
        assert not check("result.status == 'up'", doc)
        assert check("result.length == 3", doc)
        assert check("result.and == 'x'", doc)


class TestLogic:
    def test_and_or_not(self) -> None:
        assert check("result contains 'a' and result contains 'b'", "ab")
        assert not check("result contains 'a' and result contains 'c'", "ab")
        assert check("result contains 'c' or result contains 'b'", "ab")
        assert check("not result contains 'c'", "ab")
        assert not check("not not result contains 'c'", "ab")

    def test_and_binds_tighter_than_or(self) -> None:
        expr = parse("result contains 'x' or result contains 'a' and result contains 'b'")
        assert isinstance(expr, Or)
        assert isinstance(expr.operands[1], And)
        assert check("result contains 'x' or result contains 'a' and result contains 'b'", "x")
        assert not check(
            "(result contains 'x' or result contains 'a') and result contains 'b'", "x"
        )

    def test_not_binds_tighter_than_and(self) -> None:
        expr = parse("not result contains 'a' and result contains 'b'")
        assert isinstance(expr, And)
        assert isinstance(expr.operands[0], Not)
        assert not check("not result contains 'a' and result contains 'b'", "ab")
        assert check("not (result contains 'a' and result contains 'c')", "ab")

    def test_keywords_are_case_insensitive(self) -> None:
        assert check("RESULT Contains 'a' AND NOT Result IS EMPTY Or LENGTH > 100", "a")

    def test_parse_returns_a_plain_tree(self) -> None:
        assert parse("result.items[0].name contains 'x'") == Atom(
            Subject("result", ("items", 0, "name")), "contains", "x"
        )

    def test_string_escapes(self) -> None:
        assert check(r"result contains 'it\'s'", "it's")
        assert check(r'result contains "say \"hi\""', 'say "hi"')
        assert check(r"result contains 'a\nb'", "a\nb")


class TestSyntaxErrors:
    @pytest.mark.parametrize(
        ("expression", "position", "fragment"),
        [
            ("", 0, "expected a condition"),
            ("result contains", 15, "expected a quoted string after 'contains'"),
            ("result contains error", 16, "expected a quoted string"),
            ("result > 'x'", 9, "expected a number after '>'"),
            ("length == 'x'", 10, "expected a number to compare 'length'"),
            ("result contains 'a' and", 23, "expected 'result', 'length', 'not' or '('"),
            ("(result is empty", 16, "expected ')'"),
            ("result is full", 10, "expected 'empty' or 'json'"),
            ("result contains 'a' result", 20, "expected 'and', 'or' or end"),
            ("result contains 'abc", 16, "unterminated string"),
            ("result matches /abc", 15, "unterminated regex"),
            ("result matches /(/", 15, "invalid regex"),
            ("result matches /a/q", 18, "unknown regex flag 'q'"),
            ("result.items[x] == 'a'", 13, "expected an index or a quoted key"),
            ("result == 'a' & length > 1", 14, "unexpected character '&'"),
            ("the result mentions an error", 0, "expected 'result', 'length'"),
            ("result", 6, "expected 'contains', 'matches'"),
        ],
    )
    def test_error_names_position(self, expression: str, position: int, fragment: str) -> None:
        with pytest.raises(ConditionSyntaxError) as caught:
            parse(expression)
        assert caught.value.position == position
        assert fragment in str(caught.value)
        assert str(caught.value).endswith(f"at position {position}")
        assert caught.value.expression == expression

    def test_is_a_value_error(self) -> None:
        with pytest.raises(ValueError):
            parse("nonsense")

    def test_try_parse(self) -> None:
        assert try_parse("result is empty") is not None
        assert try_parse("Does the text mention an error?") is None
        assert try_parse(None) is None

    def test_a_number_past_the_int_digit_limit_is_a_syntax_error(self) -> None:
        assert try_parse("length > " + "9" * 5000) is None
