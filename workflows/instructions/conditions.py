"""A small deterministic condition language, evaluated without an LLM and without `eval`.

Instruction conditions and thread completion checks are written in this language. The
workflow evaluates a condition deterministically when its expression parses here, and hands
it to an LLM otherwise, so a plain-English condition still works.

Grammar (keywords are case-insensitive)::

    expression := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | atom
    atom       := subject predicate
    subject    := "result" accessor* | "length"
    accessor   := "." NAME | "[" INTEGER "]" | "[" STRING "]"
    predicate  := "contains" STRING
                | "matches" (REGEX | STRING)
                | "is" ["not"] ("empty" | "json")
                | ("==" | "!=") (STRING | NUMBER)
                | (">" | "<" | ">=" | "<=") NUMBER

Strings are quoted with `'` or `"` (backslash escapes `\\'`, `\\"`, `\\\\`, `\\n`, `\\t`);
a regex is written `/pattern/flags` with flags from `i`, `m`, `s` (`\\/` for a slash). Regexes
run on RE2, in time linear in the text: no pattern can make a match backtrack, so RE2's
syntax applies (no backreferences, no lookaround).

Semantics:

- `result` is the text being tested; `length` is its length in characters. Both `length`
  and `result == '…'` look at the text with surrounding whitespace stripped, because LLM
  output routinely ends with a newline nobody meant.
- `contains` and `matches` are case-sensitive; write `matches /ok/i` to ignore case.
- `result.a.b[0]` parses the text as JSON (a single surrounding Markdown code fence is
  allowed) and walks into it. A missing key, an index out of range or text that is not
  JSON makes the whole atom false, never an error, so `not result.x == 'y'` is true
  when `x` is absent. `result.x is empty` and `result.x is not empty` are both false
  when `x` is absent; `null`, `""`, `[]` and `{}` are empty.
- Numbers compare numerically. A value that is not a number (strings holding a number
  count as numbers) makes a numeric comparison false, `!=` included.
- On a JSON value, `contains` tests substring for strings, element equality for arrays
  and key presence for objects; `== 'text'` compares with the value's JSON text for
  numbers, booleans and null (`result.ok == 'true'`).
- `is json` is true for text that parses as JSON; on a field, for an object, an array or a
  string that itself parses as JSON.

Typical use::

    expr = parse("result.status == 'ok' and not result contains 'error'")
    evaluate(expr, '{"status": "ok"}')  # True
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import re2

from kernel.answers import strip_code_fence
from kernel.errors import ErrorType, WorkflowStationError

__all__ = [
    "And",
    "Atom",
    "ConditionSyntaxError",
    "Expr",
    "Not",
    "Or",
    "Subject",
    "evaluate",
    "parse",
    "try_parse",
]

Operator: TypeAlias = Literal[
    "contains", "matches", "==", "!=", ">", "<", ">=", "<=", "is empty", "is json"
]

_KEYWORDS = frozenset(
    {"or", "and", "not", "result", "length", "contains", "matches", "is", "empty", "json"}
)
_REGEX_FLAGS = frozenset("ims")
#: Parentheses and `not`s a condition may nest: parsing and evaluating recurse this deep.
MAX_NESTING = 32
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MISSING = object()


class ConditionSyntaxError(WorkflowStationError, ValueError):
    """An expression that is not in the condition language.

    Attributes:
        expression: The text that failed to parse.
        position: 0-based character offset of the offending token.
        reason: The problem, without the position.
    """

    error_type = ErrorType.INVALID_CONDITION

    def __init__(self, reason: str, expression: str, position: int) -> None:
        super().__init__(f"{reason} at position {position}")
        self.reason = reason
        self.expression = expression
        self.position = position


@dataclass(frozen=True)
class Subject:
    """What an atom looks at: the result text, a JSON path into it, or its length."""

    kind: Literal["result", "length"]
    path: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class Atom:
    """One test, such as `result.count > 3`.

    `value` is None for `is empty`/`is json`; `negated` marks `is not …`, which, unlike
    `not (… is …)`, is still false when a JSON field is missing.
    """

    subject: Subject
    op: Operator
    value: str | float | Regex | None = None
    negated: bool = False


@dataclass(frozen=True)
class Not:
    """Negation of `operand`."""

    operand: Expr


@dataclass(frozen=True)
class And:
    """True when every operand is true (evaluated left to right, short-circuiting)."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """True when any operand is true (evaluated left to right, short-circuiting)."""

    operands: tuple[Expr, ...]


Expr: TypeAlias = Or | And | Not | Atom


# --- tokenizer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: Literal["word", "string", "number", "regex", "op", "end"]
    text: str
    position: int
    value: Any = None


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        start = i
        if ch in "'\"":
            text, i = _read_string(source, i)
            tokens.append(_Token("string", source[start:i], start, text))
        elif ch == "/" and tokens and tokens[-1].kind == "word" and tokens[-1].value == "matches":
            pattern, i = _read_regex(source, i)
            tokens.append(_Token("regex", source[start:i], start, pattern))
        elif match := _NUMBER.match(source, i):
            i = match.end()
            if i < n and (source[i].isalpha() or source[i] == "_"):
                raise ConditionSyntaxError("malformed number", source, start)
            text = match.group()
            try:
                number = float(text) if "." in text else int(text)
            except ValueError:
                # Past Python's int digit limit; `try_parse` must see a syntax error, not this.
                raise ConditionSyntaxError("number too long", source, start) from None
            tokens.append(_Token("number", text, start, number))
        elif match := _NAME.match(source, i):
            i = match.end()
            word = match.group()
            tokens.append(_Token("word", word, start, word.lower()))
        elif source.startswith(("==", "!=", ">=", "<="), i):
            tokens.append(_Token("op", source[i : i + 2], start, source[i : i + 2]))
            i += 2
        elif ch in "<>()[].":
            tokens.append(_Token("op", ch, start, ch))
            i += 1
        else:
            raise ConditionSyntaxError(f"unexpected character {ch!r}", source, start)
    tokens.append(_Token("end", "", n))
    return tokens


def _read_string(source: str, start: int) -> tuple[str, int]:
    quote = source[start]
    out: list[str] = []
    i = start + 1
    while i < len(source):
        ch = source[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\" and i + 1 < len(source):
            nxt = source[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    raise ConditionSyntaxError("unterminated string", source, start)


def _read_regex(source: str, start: int) -> tuple[Regex, int]:
    out: list[str] = []
    i = start + 1
    while i < len(source):
        ch = source[i]
        if ch == "\\" and i + 1 < len(source):
            # `\/` is a literal slash; every other escape belongs to the regex itself.
            out.append("/" if source[i + 1] == "/" else source[i : i + 2])
            i += 2
            continue
        if ch == "/":
            i += 1
            flags = ""
            while i < len(source) and source[i].isalpha():
                flag = source[i].lower()
                if flag not in _REGEX_FLAGS:
                    raise ConditionSyntaxError(
                        f"unknown regex flag {source[i]!r} (use i, m or s)", source, i
                    )
                flags += flag
                i += 1
            return _compile(source, "".join(out), flags, start), i
        out.append(ch)
        i += 1
    raise ConditionSyntaxError("unterminated regex", source, start)


@dataclass(frozen=True)
class Regex:
    """A `matches` pattern compiled by RE2: linear-time matching, whatever the input."""

    pattern: str
    flags: str = ""
    compiled: Any = field(default=None, compare=False, repr=False)

    def search(self, text: str) -> bool:
        return self.compiled.search(text) is not None


def _compile(source: str, pattern: str, flags: str, position: int) -> Regex:
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = "i" not in flags
    options.dot_nl = "s" in flags
    try:
        compiled = re2.compile(f"(?m){pattern}" if "m" in flags else pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ConditionSyntaxError(f"invalid regex: {reason}", source, position) from None
    return Regex(pattern, flags, compiled)


# --- parser ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.pos = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.pos]

    def error(self, reason: str, token: _Token | None = None) -> ConditionSyntaxError:
        token = token or self.current
        found = "end of expression" if token.kind == "end" else repr(token.text)
        return ConditionSyntaxError(f"{reason}, found {found}", self.source, token.position)

    def is_word(self, *words: str) -> bool:
        return self.current.kind == "word" and self.current.value in words

    def is_op(self, *ops: str) -> bool:
        return self.current.kind == "op" and self.current.value in ops

    def advance(self) -> _Token:
        token = self.current
        self.pos += 1
        return token

    def parse(self) -> Expr:
        if self.current.kind == "end":
            raise self.error("expected a condition")
        expr = self.or_expr()
        # A fresh name: mypy keeps `self.current.kind` narrowed across the or_expr() call.
        trailing = self.current
        if trailing.kind != "end":
            raise self.error("expected 'and', 'or' or end of expression")
        return expr

    def or_expr(self) -> Expr:
        operands = [self.and_expr()]
        while self.is_word("or"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Expr:
        operands = [self.not_expr()]
        while self.is_word("and"):
            self.advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_expr(self) -> Expr:
        if self.is_word("not") or self.is_op("("):
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.error(f"nested deeper than {MAX_NESTING} levels of 'not' and '('")
            try:
                return self.nested()
            finally:
                self.depth -= 1
        return self.atom()

    def nested(self) -> Expr:
        if self.is_word("not"):
            self.advance()
            return Not(self.not_expr())
        self.advance()
        expr = self.or_expr()
        if not self.is_op(")"):
            raise self.error("expected ')'")
        self.advance()
        return expr

    def atom(self) -> Expr:
        subject = self.subject()
        token = self.current
        if self.is_word("contains"):
            self.advance()
            return Atom(subject, "contains", self.expect_string("contains"))
        if self.is_word("matches"):
            self.advance()
            if self.current.kind == "regex":
                return Atom(subject, "matches", self.advance().value)
            if self.current.kind == "string":
                pattern = self.advance()
                return Atom(
                    subject, "matches", _compile(self.source, pattern.value, "", pattern.position)
                )
            raise self.error("expected /regex/ or a string after 'matches'")
        if self.is_word("is"):
            self.advance()
            negated = self.is_word("not")
            if negated:
                self.advance()
            if not self.is_word("empty", "json"):
                raise self.error("expected 'empty' or 'json' after 'is'")
            is_op: Operator = "is empty" if self.advance().value == "empty" else "is json"
            return Atom(subject, is_op, negated=negated)
        if self.is_op("==", "!="):
            op = self.advance().value
            if self.current.kind not in ("string", "number"):
                raise self.error(f"expected a string or a number after '{op}'")
            if subject.kind == "length" and self.current.kind != "number":
                raise self.error("expected a number to compare 'length' with")
            return Atom(subject, op, self.advance().value)
        if self.is_op(">", "<", ">=", "<="):
            op = self.advance().value
            if self.current.kind != "number":
                raise self.error(f"expected a number after '{op}'")
            return Atom(subject, op, self.advance().value)
        raise self.error(
            "expected 'contains', 'matches', 'is', '==', '!=', '>', '<', '>=' or '<='", token
        )

    def subject(self) -> Subject:
        if self.is_word("length"):
            self.advance()
            return Subject("length")
        if not self.is_word("result"):
            raise self.error("expected 'result', 'length', 'not' or '('")
        self.advance()
        path: list[str | int] = []
        while self.is_op(".", "["):
            if self.advance().value == ".":
                if self.current.kind != "word":
                    raise self.error("expected a field name after '.'")
                # Field names keep their case: JSON keys are case-sensitive.
                path.append(self.advance().text)
                continue
            if self.current.kind == "number" and isinstance(self.current.value, int):
                path.append(self.advance().value)
            elif self.current.kind == "string":
                path.append(self.advance().value)
            else:
                raise self.error("expected an index or a quoted key after '['")
            if not self.is_op("]"):
                raise self.error("expected ']'")
            self.advance()
        return Subject("result", tuple(path))

    def expect_string(self, after: str) -> str:
        if self.current.kind != "string":
            raise self.error(f"expected a quoted string after '{after}'")
        return str(self.advance().value)


def parse(expression: str) -> Expr:
    """Parse a condition expression.

    Args:
        expression: Text such as `"result contains 'error' or length < 10"`.

    Returns:
        The expression tree, ready for `evaluate`.

    Raises:
        ConditionSyntaxError: The text is not in the language; `position` locates the fault.
    """
    return _Parser(expression).parse()


def try_parse(expression: str | None) -> Expr | None:
    """Parse `expression`, or return None when it is not in the language (then use an LLM)."""
    if expression is None:
        return None
    try:
        return parse(expression)
    except ConditionSyntaxError:
        return None


# --- evaluation --------------------------------------------------------------------------


def evaluate(expr: Expr, result_text: str | None) -> bool:
    """Evaluate a parsed expression against a step's result text (None counts as empty)."""
    return _Evaluator(result_text or "").eval(expr)


class _Evaluator:
    def __init__(self, text: str) -> None:
        self.text = text
        self._json: Any = _MISSING
        self._json_parsed = False

    def document(self) -> Any:
        if not self._json_parsed:
            self._json_parsed = True
            self._json = _load_json(self.text)
        return self._json

    def eval(self, expr: Expr) -> bool:
        if isinstance(expr, Or):
            return any(self.eval(operand) for operand in expr.operands)
        if isinstance(expr, And):
            return all(self.eval(operand) for operand in expr.operands)
        if isinstance(expr, Not):
            return not self.eval(expr.operand)
        return self.atom(expr)

    def atom(self, atom: Atom) -> bool:
        subject = atom.subject
        if subject.kind == "length":
            return _compare_number(len(self.text.strip()), atom.op, atom.value)
        if not subject.path:
            outcome = _test_text(self.text, atom)
        else:
            value = _walk(self.document(), subject.path)
            if value is _MISSING:
                return False
            outcome = _test_value(value, atom)
        return outcome != atom.negated


def _load_json(text: str) -> Any:
    try:
        return json.loads(strip_code_fence(text))
    except (ValueError, RecursionError):
        # RecursionError: absurdly deep nesting; it is still just "not JSON" to a condition.
        return _MISSING


def _walk(value: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        if isinstance(value, dict) and isinstance(key, str):
            value = value.get(key, _MISSING)
        elif isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value):
            value = value[key]
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _test_text(text: str, atom: Atom) -> bool:
    op, expected = atom.op, atom.value
    if op == "contains":
        return isinstance(expected, str) and expected in text
    if op == "matches":
        return isinstance(expected, Regex) and expected.search(text)
    if op == "is empty":
        return not text.strip()
    if op == "is json":
        return _load_json(text) is not _MISSING
    if isinstance(expected, str):
        if op == "==":
            return text.strip() == expected
        if op == "!=":
            return text.strip() != expected
        return False
    return _compare_number(_as_number(text), op, expected)


def _test_value(value: Any, atom: Atom) -> bool:
    op, expected = atom.op, atom.value
    if op == "contains":
        if isinstance(value, list):
            return expected in value
        if isinstance(value, dict):
            return expected in value
        return isinstance(expected, str) and expected in _text_of(value)
    if op == "matches":
        return isinstance(expected, Regex) and expected.search(_text_of(value))
    if op == "is empty":
        return value is None or value == "" or value == [] or value == {}
    if op == "is json":
        if isinstance(value, dict | list):
            return True
        return isinstance(value, str) and _load_json(value) is not _MISSING
    if isinstance(expected, str):
        if op == "==":
            return _text_of(value) == expected
        if op == "!=":
            return _text_of(value) != expected
        return False
    return _compare_number(_as_number(value), op, expected)


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _compare_number(actual: float | None, op: str, expected: object) -> bool:
    if actual is None or not isinstance(expected, int | float) or isinstance(expected, bool):
        return False
    if op == "==":
        return actual == expected
    if op == "!=":
        return actual != expected
    if op == ">":
        return actual > expected
    if op == "<":
        return actual < expected
    if op == ">=":
        return actual >= expected
    if op == "<=":
        return actual <= expected
    return False
