"""The worker's secrets: what `{{secrets.NAME}}` stands for, whose they are, and how their
values are kept out of everything the engine writes.

Workflow code leaves `{{secrets.NAME}}` as written, so the call scheduled in history carries
the placeholder. `HttpActivities.call_http` asks `Secrets.for_tenant(call.tenant).resolve`
for the request to send, just before sending it, and nothing it returns or raises holds a
value: messages pass through the tenant's `redact`, and the response (body, headers, final
URL) through `ResolvedRequest.redact`, with the values that very call sent.

A secret belongs to one tenant, or is shared explicitly; a run sees its own tenant's secrets
and the shared ones, nothing else, and a name it cannot see fails its step the same way
whether or not another tenant has it (`UnknownSecret`).

Values come from the worker's own environment, never from workflow input:

* ``SECRET_<NAME>`` variables: the default tenant's (the open gateway's, or a tenant named
  ``default``), as they were before tenants had secrets of their own;
* ``SECRET_SHARED_<NAME>`` variables: shared by every tenant;
* a file the operator points at with ``SECRETS_FILE`` (`parse_secrets_file`), in sections:
  the default tenant's, ``shared``, and one per tenant. A variable wins over the file.

A tenant's own secret wins over a shared one of the same name. Names are ASCII identifiers.
An empty value counts as unset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from activities.http.models import DEFAULT_TENANT, SECRET_NAME, SECRET_PLACEHOLDER, HttpCall
from kernel.errors import ErrorType, WorkflowStationError
from kernel.redact import MASK

ENV_PREFIX = "SECRET_"
SHARED_ENV_PREFIX = "SECRET_SHARED_"
#: The line format's section headers: `[shared]`, `[tenant acme]`.
_SECTION = re.compile(r"\[\s*(shared|tenant\s+(\S+))\s*\]")


class UnknownSecret(WorkflowStationError):
    """A call names a secret its tenant cannot see: one it has no value for, or one that
    belongs to another tenant (the message is the same, so it tells nobody which)."""

    error_type = ErrorType.UNKNOWN_SECRET

    def __init__(self, names: Iterable[str], tenant: str) -> None:
        self.names = sorted(names)
        listed = ", ".join(f"{{{{secrets.{name}}}}}" for name in self.names)
        super().__init__(
            f"no value for {listed} for tenant {tenant!r} on this worker (add it to the"
            f" tenant's section of SECRETS_FILE, or share it as {SHARED_ENV_PREFIX}<NAME>)"
        )


@dataclass(frozen=True)
class SecretSets:
    """Secret values by owner: the default tenant's, the shared ones, each tenant's."""

    default: dict[str, str] = field(default_factory=dict)
    shared: dict[str, str] = field(default_factory=dict)
    tenants: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedRequest:
    """A call's URL, headers, query and body with its secrets filled in: never stored.

    Attributes:
        secret_headers: Lower-cased names of the headers whose value holds a secret, so a
            redirect to another origin drops them (`activities.http.outbound.redirects`).
        sent: The values filled in, which `redact` takes out of the response.
    """

    url: str
    headers: dict[str, str]
    query: dict[str, Any]
    body: Any
    secret_headers: frozenset[str]
    sent: Redactor = field(default_factory=lambda: Redactor(()))

    def redact(self, value: Any) -> Any:
        """`value` (a response's parsed body, its headers, any JSON) with every value this
        request sent replaced by `***`: a target that echoes a secret back (a
        request-inspection service does) must not have it recorded."""
        return self.sent.redact_json(value)


def parse_secrets_file(text: str) -> SecretSets:
    """Read a secrets file: JSON, or `NAME=value` lines in sections.

    JSON: an object of names to strings (the default tenant's), which may also hold
    ``"shared": {NAME: value}`` and ``"tenants": {tenant: {NAME: value}}``. Lines: the
    default tenant's until a ``[shared]`` or ``[tenant <name>]`` header starts a section;
    blank lines and ``#`` comments ignored.

    Raises:
        ValueError: A bad name, line or section, named by its line number, never by its value.
    """
    if text.lstrip().startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            # Its position only: the message would quote the text, values and all.
            raise ValueError(f"SECRETS_FILE is not valid JSON (line {exc.lineno})") from None
        if not isinstance(loaded, dict):
            raise ValueError("SECRETS_FILE: a JSON secrets file holds one object")
        shared = loaded.pop("shared") if isinstance(loaded.get("shared"), dict) else {}
        tenants = loaded.pop("tenants") if isinstance(loaded.get("tenants"), dict) else {}
        for tenant, values in tenants.items():
            if not isinstance(values, dict):
                raise ValueError(f"SECRETS_FILE: tenant {tenant!r} holds no object of secrets")
        return SecretSets(
            default=_json_section(loaded, "SECRETS_FILE"),
            shared=_json_section(shared, "SECRETS_FILE shared"),
            tenants={
                tenant: _json_section(values, f"SECRETS_FILE tenant {tenant!r}")
                for tenant, values in tenants.items()
            },
        )
    sets = SecretSets()
    section = sets.default
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.lstrip().startswith("["):
            header = _SECTION.fullmatch(line.strip())
            if header is None:
                raise ValueError(
                    f"SECRETS_FILE line {number}: expected [shared] or [tenant <name>]"
                )
            tenant = header[2]
            section = sets.shared if tenant is None else sets.tenants.setdefault(tenant, {})
            continue
        name, equals, value = line.partition("=")
        if not equals:
            raise ValueError(f"SECRETS_FILE line {number}: expected NAME=value")
        section[_checked_name(name.strip(), f"SECRETS_FILE line {number}")] = value
    return sets


def _json_section(values: dict[str, Any], where: str) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in values.items():
        if not isinstance(value, str):
            raise ValueError(f"{where}: the value of {name!r} is not a string")
        checked[_checked_name(name, where)] = value
    return checked


def _checked_name(name: str, where: str) -> str:
    if not SECRET_NAME.fullmatch(name):
        raise ValueError(
            f"{where}: {name!r} is not a secret name (a letter or underscore, then letters,"
            " digits and underscores)"
        )
    return name


class Redactor:
    """Replaces given values, in every spelling they take in a message (as is,
    percent-encoded in a URL, escaped in JSON), by `***`."""

    def __init__(self, values: Iterable[str]) -> None:
        spellings = {
            form
            for value in values
            if value
            for form in (value, quote(value, safe=""), quote_plus(value), *_json_forms(value))
            if form
        }
        # Longest first, so a value inside another is not half-replaced.
        ordered = sorted(spellings, key=len, reverse=True)
        self._spellings = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        if self._spellings is None or not text:
            return text
        return self._spellings.sub(MASK, text)

    def redact_json(self, value: Any) -> Any:
        """Every string in `value` (keys included) redacted, its structure kept."""
        if self._spellings is None:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact(str(key)): self.redact_json(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.redact_json(item) for item in value]
        return value


class TenantSecrets:
    """What one tenant's runs may use: its own secrets over the shared ones."""

    def __init__(self, tenant: str, values: Mapping[str, str]) -> None:
        self.tenant = tenant
        self._values = dict(values)
        self._redactor = Redactor(self._values.values())

    @property
    def names(self) -> list[str]:
        return sorted(self._values)

    def __repr__(self) -> str:
        return f"TenantSecrets({self.tenant!r}, names={self.names})"

    def resolve(self, call: HttpCall) -> ResolvedRequest:
        """`call`'s request with the secrets it names filled in.

        Only placeholders of `call.secret_names` are replaced; any other `{{secrets.…}}` is
        data (it arrived inside a response or an LLM's answer) and is sent as it is.

        Raises:
            UnknownSecret: A named secret is not this tenant's (before anything is filled in).
        """
        missing = [name for name in call.secret_names if name not in self._values]
        if missing:
            raise UnknownSecret(missing, self.tenant)
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
            sent=Redactor(self._values[name] for name in sorted(allowed)),
        )

    def redact(self, text: str) -> str:
        """`text` with every secret value this tenant can see (in any of its spellings)
        replaced by `***`."""
        return self._redactor.redact(text)


class Secrets:
    """Secret values by tenant; `repr` shows names only.

    Args:
        values: The default tenant's, name to value; empty values are dropped (unset).
        shared: Every tenant's.
        tenants: Each tenant's own.
    """

    def __init__(
        self,
        values: Mapping[str, str] | None = None,
        *,
        shared: Mapping[str, str] | None = None,
        tenants: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        own = {name: dict(secrets) for name, secrets in (tenants or {}).items()}
        own[DEFAULT_TENANT] = {**own.get(DEFAULT_TENANT, {}), **(values or {})}
        self._shared = _set(shared or {})
        self._tenants = {
            tenant: TenantSecrets(tenant, {**self._shared, **_set(secrets)})
            for tenant, secrets in own.items()
        }

    @classmethod
    def load(cls, environ: Mapping[str, str], file: Path | None = None) -> Secrets:
        """The secrets of `file`, if given, and of ``SECRET_[SHARED_]<NAME>`` variables in
        `environ`, which win.

        Raises:
            ValueError: The file cannot be parsed (see `parse_secrets_file`).
            OSError: The file cannot be read.
        """
        sets = parse_secrets_file(file.read_text()) if file is not None else SecretSets()
        for key, value in environ.items():
            if key.startswith(SHARED_ENV_PREFIX):
                name = key[len(SHARED_ENV_PREFIX) :]
                if SECRET_NAME.fullmatch(name):
                    sets.shared[name] = value
            elif key.startswith(ENV_PREFIX) and SECRET_NAME.fullmatch(key[len(ENV_PREFIX) :]):
                sets.default[key[len(ENV_PREFIX) :]] = value
        return cls(sets.default, shared=sets.shared, tenants=sets.tenants)

    def for_tenant(self, tenant: str | None) -> TenantSecrets:
        """What `tenant`'s runs may use (None: the open gateway's runs, the default tenant)."""
        name = tenant or DEFAULT_TENANT
        found = self._tenants.get(name)
        if found is None:
            # A tenant with no secrets of its own sees the shared ones.
            found = self._tenants[name] = TenantSecrets(name, self._shared)
        return found

    @property
    def names(self) -> list[str]:
        """The default tenant's names (the shared ones included)."""
        return self.for_tenant(None).names

    def __repr__(self) -> str:
        return f"Secrets(tenants={sorted(self._tenants)}, shared={sorted(self._shared)})"

    def resolve(self, call: HttpCall) -> ResolvedRequest:
        """`call`'s request, with the secrets of `call.tenant` (`TenantSecrets.resolve`)."""
        return self.for_tenant(call.tenant).resolve(call)


def _set(values: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in values.items() if value}


def _json_forms(value: str) -> tuple[str, str]:
    """`value` as it stands inside a JSON string, ASCII-escaped or not."""
    return json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]
