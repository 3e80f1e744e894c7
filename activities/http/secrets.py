"""The worker's secrets: what `{{secrets.NAME}}` stands for, and how their values are kept out
of everything the engine writes.

Workflow code leaves `{{secrets.NAME}}` as written, so the call scheduled in history carries
the placeholder. `HttpActivities.call_http` asks `Secrets.resolve` for the request to send,
just before sending it, and nothing it returns or raises holds a value: messages pass through
`Secrets.redact`.

Values come from the worker's own environment, never from workflow input:

* ``SECRET_<NAME>`` variables (``SECRET_API_TOKEN=…`` is ``{{secrets.API_TOKEN}}``);
* a file the operator points at with ``SECRETS_FILE``: a JSON object of names to strings, or
  ``NAME=value`` lines (blank lines and ``#`` comments ignored). A variable wins over the file.

Names are ASCII identifiers. An empty value counts as unset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from activities.http.models import SECRET_NAME, SECRET_PLACEHOLDER, HttpCall
from kernel.errors import ErrorType, WorkflowStationError
from kernel.redact import MASK

ENV_PREFIX = "SECRET_"


class UnknownSecret(WorkflowStationError):
    """A call names a secret the worker has no value for."""

    error_type = ErrorType.UNKNOWN_SECRET

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(names)
        listed = ", ".join(f"{{{{secrets.{name}}}}}" for name in self.names)
        variables = ", ".join(f"{ENV_PREFIX}{name}" for name in self.names)
        super().__init__(
            f"no value for {listed} on this worker (set {variables} or add it to SECRETS_FILE)"
        )


@dataclass(frozen=True)
class ResolvedRequest:
    """A call's URL, headers, query and body with its secrets filled in: never stored.

    Attributes:
        secret_headers: Lower-cased names of the headers whose value holds a secret, so a
            redirect to another origin drops them (`activities.http.outbound.redirects`).
    """

    url: str
    headers: dict[str, str]
    query: dict[str, Any]
    body: Any
    secret_headers: frozenset[str]


def parse_secrets_file(text: str) -> dict[str, str]:
    """Read a secrets file: a JSON object of names to strings, or `NAME=value` lines.

    Raises:
        ValueError: A bad name or line, named by its line number, never by its value.
    """
    if text.lstrip().startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            # Its position only: the message would quote the text, values and all.
            raise ValueError(f"SECRETS_FILE is not valid JSON (line {exc.lineno})") from None
        if not isinstance(loaded, dict):
            raise ValueError("SECRETS_FILE: a JSON secrets file holds one object")
        values: dict[str, str] = {}
        for name, value in loaded.items():
            if not isinstance(value, str):
                raise ValueError(f"SECRETS_FILE: the value of {name!r} is not a string")
            values[_checked_name(name, "SECRETS_FILE")] = value
        return values
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if not equals:
            raise ValueError(f"SECRETS_FILE line {number}: expected NAME=value")
        values[_checked_name(name.strip(), f"SECRETS_FILE line {number}")] = value
    return values


def _checked_name(name: str, where: str) -> str:
    if not SECRET_NAME.fullmatch(name):
        raise ValueError(
            f"{where}: {name!r} is not a secret name (a letter or underscore, then letters,"
            " digits and underscores)"
        )
    return name


class Secrets:
    """Secret values by name; `repr` shows names only.

    Args:
        values: Name to value; empty values are dropped (unset).
    """

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = {name: value for name, value in (values or {}).items() if value}
        # Every spelling a value can take in a message (as is, percent-encoded in a URL,
        # escaped in JSON), longest first so a value inside another is not half-replaced.
        spellings = {
            form
            for value in self._values.values()
            for form in (value, quote(value, safe=""), quote_plus(value), *_json_forms(value))
            if form
        }
        ordered = sorted(spellings, key=len, reverse=True)
        self._spellings = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @classmethod
    def load(cls, environ: Mapping[str, str], file: Path | None = None) -> Secrets:
        """The secrets of ``SECRET_<NAME>`` variables in `environ` and of `file`, if given.

        Raises:
            ValueError: The file cannot be parsed (see `parse_secrets_file`).
            OSError: The file cannot be read.
        """
        values = parse_secrets_file(file.read_text()) if file is not None else {}
        for key, value in environ.items():
            if key.startswith(ENV_PREFIX) and SECRET_NAME.fullmatch(key[len(ENV_PREFIX) :]):
                values[key[len(ENV_PREFIX) :]] = value
        return cls(values)

    @property
    def names(self) -> list[str]:
        return sorted(self._values)

    def __repr__(self) -> str:
        return f"Secrets(names={self.names})"

    def resolve(self, call: HttpCall) -> ResolvedRequest:
        """`call`'s request with the secrets it names filled in.

        Only placeholders of `call.secret_names` are replaced; any other `{{secrets.…}}` is
        data (it arrived inside a response or an LLM's answer) and is sent as it is.

        Raises:
            UnknownSecret: A named secret has no value here (before anything is filled in).
        """
        missing = [name for name in call.secret_names if name not in self._values]
        if missing:
            raise UnknownSecret(missing)
        allowed = frozenset(call.secret_names)
        if not allowed:
            return ResolvedRequest(call.url, call.headers, call.query, call.body, frozenset())

        def fill(text: str) -> str:
            return SECRET_PLACEHOLDER.sub(
                lambda m: self._values[m[1]] if m[1] in allowed else m[0], text
            )

        def fill_all(value: Any) -> Any:
            if isinstance(value, str):
                return fill(value)
            if isinstance(value, dict):
                return {key: fill_all(item) for key, item in value.items()}
            if isinstance(value, list):
                return [fill_all(item) for item in value]
            return value

        headers: dict[str, str] = {}
        secret_headers: set[str] = set()
        for name, value in call.headers.items():
            headers[name] = fill(value)
            if headers[name] != value:
                secret_headers.add(name.lower())
        return ResolvedRequest(
            url=fill(call.url),
            headers=headers,
            query=fill_all(call.query),
            body=fill_all(call.body),
            secret_headers=frozenset(secret_headers),
        )

    def redact(self, text: str) -> str:
        """`text` with every secret value (in any of its spellings) replaced by `***`."""
        if self._spellings is None or not text:
            return text
        return self._spellings.sub(MASK, text)


def _json_forms(value: str) -> tuple[str, str]:
    """`value` as it stands inside a JSON string, ASCII-escaped or not."""
    return json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]
