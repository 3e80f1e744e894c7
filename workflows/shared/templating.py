"""`{{variable.path[0]}}` templates: parsing, static reference listing and rendering.

The one template engine: DAG steps (`{{fetch_result.items[0]}}`) and endpoint instructions
(`{{result}}`, `{{context}}`) both render through it.

`{{secrets.NAME}}` is never resolved here: every renderer leaves it as written, and
`secret_names` lists the ones a call's templates name, for the HTTP activity to fill in just
before sending (`activities.http.secrets`), so a secret's value never enters history. The
activity fills in every placeholder of those names in the call, so a renderer told the names
refuses a value that would smuggle one in (a response or an LLM's answer holding
`{{secrets.NAME}}` text must not choose where that secret is sent).

A string that is exactly one placeholder takes the referenced value with its type (object,
number, list). Inside longer text, strings are inserted as they are and every other value is
rendered as JSON. Rendering is pure and deterministic, so the workflow does it itself.

Placeholders are found by a linear scan, not a regex, so no input can make the search
backtrack: a placeholder is `{{`, then text with no brace, then `}}`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from activities.http.models import SECRET_PLACEHOLDER, SECRETS_ROOT, secret_name
from kernel.errors import ErrorType, WorkflowStationError

_SEGMENT = re.compile(r"\.?([A-Za-z_$][\w$-]*)|\[\s*(-?\d+)\s*\]|\[\s*['\"]([^'\"]*)['\"]\s*\]")


class TemplateError(WorkflowStationError, ValueError):
    """A placeholder that cannot be parsed or resolved."""

    error_type = ErrorType.TEMPLATE_ERROR


@dataclass(frozen=True)
class Placeholder:
    """Where one `{{…}}` stands in a text, and the expression inside (whitespace stripped)."""

    start: int
    end: int
    expression: str


def placeholders(text: str) -> Iterator[Placeholder]:
    """Every placeholder in `text`, left to right, in time linear in `len(text)`."""
    position = text.find("{{")
    while position != -1:
        inner = position + 2
        close = inner
        while close < len(text) and text[close] not in "{}":
            close += 1
        if text.startswith("}}", close):
            yield Placeholder(position, close + 2, text[inner:close].strip())
            position = text.find("{{", close + 2)
        else:
            # No placeholder starts here; the scan resumes at the next brace pair, which is
            # never before `close - 1`, so each character is looked at a bounded number of times.
            position = text.find("{{", max(position + 1, close - 1))


@dataclass(frozen=True)
class Reference:
    """One parsed placeholder: `root` is the variable, `path` the keys and indices below it."""

    text: str
    root: str
    path: tuple[str | int, ...]


def parse_reference(expression: str) -> Reference:
    expression = expression.strip()
    if not expression:
        raise TemplateError("empty placeholder {{}}")
    path: list[str | int] = []
    pos = 0
    while pos < len(expression):
        match = _SEGMENT.match(expression, pos)
        if match is None or (pos == 0 and match.group(0).startswith((".", "["))):
            raise TemplateError(f"cannot parse {{{{{expression}}}}} at position {pos}")
        name, index, quoted = match.groups()
        if name is not None:
            path.append(name)
        elif index is not None:
            path.append(int(index))
        else:
            path.append(quoted)
        pos = match.end()
    root = path[0]
    if not isinstance(root, str):
        raise TemplateError(f"{{{{{expression}}}}} must start with a variable name")
    return Reference(text=expression, root=root, path=tuple(path[1:]))


def iter_strings(value: Any, location: str = "") -> Iterator[tuple[str, str]]:
    """Yield `(location, string)` for every string inside a JSON-like value, keys excluded."""
    if isinstance(value, str):
        yield location, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from iter_strings(item, f"{location}.{key}" if location else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from iter_strings(item, f"{location}[{index}]")


def references(value: Any, location: str = "") -> list[tuple[str, Reference]]:
    """Every placeholder inside a JSON-like value, with where it stands."""
    found = []
    for where, text in iter_strings(value, location):
        for placeholder in placeholders(text):
            found.append((where, parse_reference(placeholder.expression)))
    return found


def secret_names(*templates: Any) -> list[str]:
    """The secrets `{{secrets.NAME}}` placeholders in these JSON-like templates name, sorted.

    Only templates are scanned, never rendered values: a placeholder that arrives inside data
    (a response, an LLM's answer) is not the author's, and is not filled in.
    """
    found = {
        name
        for template in templates
        for _, text in iter_strings(template)
        for placeholder in placeholders(text)
        if (name := secret_name(placeholder.expression)) is not None
    }
    return sorted(found)


def resolve(reference: Reference, variables: Mapping[str, Any]) -> Any:
    if reference.root not in variables:
        raise TemplateError(f"{{{{{reference.text}}}}}: no variable named {reference.root!r}")
    value = variables[reference.root]
    walked = reference.root
    for key in reference.path:
        if isinstance(value, str) and key not in ("length",):
            # A JSON text in a variable (e.g. an LLM's answer) can be indexed into.
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                pass
        if isinstance(key, int):
            if not isinstance(value, list) or not -len(value) <= key < len(value):
                raise TemplateError(
                    f"{{{{{reference.text}}}}}: {walked} has no index [{key}]"
                    f" (it is {_describe(value)})"
                )
            value = value[key]
            walked += f"[{key}]"
        else:
            if isinstance(value, Mapping) and key in value:
                value = value[key]
            elif key == "length" and isinstance(value, list | str):
                value = len(value)
            else:
                raise TemplateError(
                    f"{{{{{reference.text}}}}}: {walked} has no field {key!r}"
                    f" (it is {_describe(value)})"
                )
            walked += f".{key}"
    return value


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        keys = ", ".join(sorted(str(k) for k in value)[:8])
        return f"an object with keys [{keys}]"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if value is None:
        return "null"
    return f"of type {type(value).__name__}"


class Renderer:
    """Renders templates against one set of variables, within a size budget.

    A 100 KB value referenced a thousand times would render a 100 MB request: `max_chars`
    bounds everything one renderer produces (literal text, inserted values, typed values as
    JSON), and rendering stops with a `TemplateError` as soon as the budget is passed.

    Args:
        variables: What placeholders resolve against.
        keep_unresolved: Leave a placeholder that cannot be parsed or resolved as written
            instead of raising `TemplateError`.
        max_chars: The budget; None for no bound.
        secret_names: The secrets the request uses (`secret_names` of its templates): a value
            inserted or charged that holds a placeholder of one of them raises
            `TemplateError`, since the HTTP activity would fill it in.
        kept_roots: Variables left as written, for another renderer to fill in later (a DAG
            `instructions` step leaves `{{result}}` and `{{context}}` to its child run).
    """

    def __init__(
        self,
        variables: Mapping[str, Any],
        *,
        keep_unresolved: bool = False,
        max_chars: int | None = None,
        secret_names: Iterable[str] = (),
        kept_roots: Iterable[str] = (),
    ) -> None:
        self._variables = variables
        self._kept_roots = frozenset((SECRETS_ROOT, *kept_roots))
        self._keep_unresolved = keep_unresolved
        self._max_chars = max_chars
        self._spent = 0
        self._secret_names = frozenset(secret_names)

    def render(self, value: Any) -> Any:
        """Render every string template inside a JSON-like value; keys are left as they are."""
        if isinstance(value, str):
            return self.render_text(value)
        if isinstance(value, Mapping):
            return {key: self.render(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.render(item) for item in value]
        return value

    def charge(self, value: Any) -> None:
        """Count a value sent as it is (not rendered) against the budget, as JSON."""
        self._spend(value if isinstance(value, str) else _as_json(value))
        self._refuse_secrets_in(value)

    def render_text(self, text: str) -> Any:
        found = list(placeholders(text))
        if len(found) == 1 and found[0].start == 0 and found[0].end == len(text):
            value = self._value_of(found[0].expression, text)
            self._spend(value if isinstance(value, str) else _as_json(value))
            if secret_name(found[0].expression) is None:
                self._refuse_secrets_in(value)
            return value
        parts: list[str] = []
        position = 0
        for placeholder in found:
            parts.append(self._spend(text[position : placeholder.start]))
            value = self._value_of(
                placeholder.expression, text[placeholder.start : placeholder.end]
            )
            parts.append(self._spend(value if isinstance(value, str) else _as_json(value)))
            position = placeholder.end
        parts.append(self._spend(text[position:]))
        rendered = "".join(parts)
        if self._secret_names and "secrets" in rendered:
            # Values can hold a placeholder, or two can form one side by side: what the text
            # holds beyond what its template wrote was inserted.
            written = Counter(secret_name(placeholder.expression) for placeholder in found)
            for name, count in Counter(SECRET_PLACEHOLDER.findall(rendered)).items():
                if name in self._secret_names and count > written[name]:
                    raise _smuggled(name)
        return rendered

    def _value_of(self, expression: str, written: str) -> Any:
        try:
            reference = parse_reference(expression)
            if reference.root in self._kept_roots:
                # Secrets: filled in by the HTTP activity, never in workflow code.
                return written
            return resolve(reference, self._variables)
        except TemplateError:
            if self._keep_unresolved:
                return written
            raise

    def _refuse_secrets_in(self, value: Any) -> None:
        """Raise `TemplateError` if `value` holds a placeholder of a secret this request uses."""
        if not self._secret_names:
            return
        for _, text in iter_strings(value):
            for name in SECRET_PLACEHOLDER.findall(text):
                if name in self._secret_names:
                    raise _smuggled(name)

    def _spend(self, text: str) -> str:
        self._spent += len(text)
        if self._max_chars is not None and self._spent > self._max_chars:
            raise TemplateError(
                f"the rendered request would be larger than {self._max_chars} characters"
                " (a large value referenced many times?)"
            )
        return text


def _smuggled(name: str) -> TemplateError:
    return TemplateError(
        f"a value inserted into the request holds {{{{secrets.{name}}}}}, which the request"
        " uses: refused, since the secret would be filled in there too"
    )


def _as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def render(value: Any, variables: Mapping[str, Any], *, keep_unresolved: bool = False) -> Any:
    """Render every string template inside a JSON-like value, with no size budget."""
    return Renderer(variables, keep_unresolved=keep_unresolved).render(value)
