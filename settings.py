"""Settings for every Workflow Station process, read from the environment and `.env`, and
the one way any process connects to Temporal.

Only the composition roots (`worker.py`, the gateway's app factory and `cli.py`) read
settings; workflows and activities receive what they need as arguments.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, TypeAdapter, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from redis.asyncio import Redis
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    ExternalStorage,
    JSONPlainPayloadConverter,
)
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig
from temporalio.runtime import Runtime

from activities.http.outbound.policy import parse_allow_list
from activities.http.outbound.redirects import DEFAULT_SENSITIVE_HEADERS
from activities.store.blobs import RedisBlobDriver
from kernel.codec import EncryptionKey, parse_keys, with_encryption
from workflows.shared.execution import ExecutionMode

#: Type adapters of the payload converter, shared by all its instances (at most this many).
_type_adapter = lru_cache(maxsize=1024)(TypeAdapter)


class SharedAdaptersJSONConverter(PydanticJSONPlainPayloadConverter):
    """Temporal's pydantic JSON converter, its type adapters cached once per process.

    The SDK's own caches them per converter instance, and every workflow run builds its own
    instance in its sandbox: each run rebuilt the adapter of its input model (13 % of the
    worker's Python time on one-step runs once the sandbox no longer re-imported the
    workflow modules, bench/profile.md). The types are the same objects in every
    run because the modules defining them are passed through the tests' sandbox
    (`worker.SANDBOXED_RUNNER`) and production runs no sandbox (`worker.WORKFLOW_RUNNER`); a
    type re-imported per run would take a cache entry per run.
    """

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        try:
            adapter = _type_adapter(type_hint if type_hint is not None else Any)
        except TypeError:  # an unhashable hint: the SDK's own path
            return super().from_payload(payload, type_hint)
        return adapter.validate_json(payload.data)


class PayloadConverter(CompositePayloadConverter):
    """`temporalio.contrib.pydantic.PydanticPayloadConverter`, with shared type adapters."""

    def __init__(self) -> None:
        json_converter = SharedAdaptersJSONConverter()
        super().__init__(
            *(
                json_converter if isinstance(converter, JSONPlainPayloadConverter) else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


#: The payload converter of every Temporal client, test environment and replayer: the pydantic
#: models users POST are the models workflows and activities receive, so all must agree on it.
#: `data_converter(settings)` adds what the settings ask for: external storage of large
#: payloads, and payload encryption.
DATA_CONVERTER = DataConverter(payload_converter_class=PayloadConverter)

#: A tenant's name, as `GATEWAY_API_KEYS` gives it (it prefixes run ids and Redis keys).
TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
#: Shortest API key accepted: a guessable key is no key.
MIN_API_KEY_CHARS = 16
#: A Redis command of the blob store that takes longer fails the workflow task or activity
#: (which Temporal retries) instead of holding it up.
BLOB_REDIS_TIMEOUT_SECONDS = 30.0

#: Search attributes the gateway sets on every run, so runs can be found in the Web UI and
#: with `temporal workflow list --query "WorkflowStationEngine='dag'"`.
SEARCH_ATTRIBUTES = {
    "WorkflowStationEngine": "Keyword",
    "WorkflowStationNamespace": "Keyword",
    "WorkflowStationId": "Keyword",
    "WorkflowStationTenant": "Keyword",
}

#: The dev server's default transfer poll rate (20/s) adds ~50 ms to every activity round
#: trip; this keeps a sequential step around 10 ms. Eager activity execution hands a regular
#: activity the workflow task schedules straight back to the worker that completed the task,
#: in the server's answer, when that worker polls the activity's queue and has a free slot:
#: one trip through matching and one activity poll fewer per step, while the activity stays
#: a regular one (recorded, timed out, heartbeated and retried by the server). Used by
#: `make dev`, tests and compose.
LATENCY_TUNED_DYNAMIC_CONFIG = {
    "history.transferProcessorMaxPollRPS": "1000",
    "history.timerProcessorMaxPollRPS": "1000",
    "matching.numTaskqueueReadPartitions": "1",
    "matching.numTaskqueueWritePartitions": "1",
    "system.enableActivityEagerExecution": "true",
}


def _split_csv(cls: type, value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """All configuration, one environment variable per field (upper-cased name)."""

    # hide_input_in_errors: a bad setting is named in the error, its value (a key?) never shown.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", env_ignore_empty=True, hide_input_in_errors=True
    )

    # Temporal. Unset address: `make dev` starts an embedded dev server on temporal_port.
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    #: The Web UI's origin as browsers reach it (e.g. https://temporal-ui.example.com), the one
    #: origin the codec endpoint answers CORS for; unset: http://localhost:TEMPORAL_UI_PORT and
    #: http://127.0.0.1:TEMPORAL_UI_PORT.
    temporal_ui_origin: str | None = None
    task_queue: str = "workflow-station"
    # On SIGTERM/SIGINT the worker stops polling and gives running activities this long to
    # finish before cancelling them (set the orchestrator's grace period a little longer).
    worker_drain_seconds: float = 60.0
    # Workflow tasks the main worker holds at once. A fast run's workflow task stays open while
    # its local activities run (seconds, heartbeated by the worker), so it holds a slot all
    # that time; at the SDK's 100, the 101st fast run waited seconds to start. An open task
    # waiting on its calls costs no CPU. Keep it under the SDK's cache of 1,000 runs per worker.
    worker_workflow_task_slots: int = Field(default=500, ge=2)
    # Local activities (fast steps, segments) the main worker runs at once: as many as its
    # outbound connections (100), so a call past them waits for a slot before its attempt
    # starts, not for a connection inside it, against its timeout.
    worker_local_activity_slots: int = Field(default=100, ge=1)

    # Payload encryption: `id:base64key` entries, the first encrypts, all decrypt (see
    # codec.py). Unset: payloads are stored as they are.
    payload_encryption_key: SecretStr | None = None
    # Bearer token the codec endpoint (/codec/encode, /codec/decode) requires. Unset: it
    # answers only on a gateway bound to loopback.
    codec_auth_token: SecretStr | None = None

    # Redis. Unset URL: `make dev` starts the venv's redis-server on redis_port.
    redis_url: str | None = None
    redis_port: int = 6379
    output_ttl_seconds: int = 7 * 24 * 3600
    # Payloads of this size or more (serialized) are kept in Redis by content, history holds a
    # reference; their blobs live this long after they were last stored. It must exceed the
    # longest run (run_timeout is at most 7 days) plus the namespace's retention.
    payload_inline_max_bytes: int = Field(default=256 * 1024, ge=0)
    payload_blob_ttl_seconds: int = Field(default=30 * 24 * 3600, gt=0)
    payload_blob_prefix: str = "workflow-station:blob:"
    # Step results and outputs larger than this (JSON) show in a DAG run's status, result and
    # webhook events as references to `GET /runs/{id}/outputs/{name}` and
    # `GET /runs/{id}/steps/{step}/result`.
    value_inline_max_bytes: int = Field(default=64 * 1024, ge=0)
    # How long a DAG step retries an unreachable Redis (selection reads, output writes) before
    # it fails: an outage shorter than this (a restart, a failover) only delays the run.
    store_retry_window_seconds: float = Field(default=300.0, ge=0)
    # For this long after a running run's last workflow task, `GET /runs/{id}` answers from the
    # status its worker published without describing the run, so may miss a termination from
    # outside the run (CLI or Web UI terminate, execution timeout) and a durable step's current
    # retry attempt (`activities.store.status`). The worker marks what it publishes fresh for
    # this long, and the gateway what it publishes for a run it has just started (every step
    # pending, until a worker picks the run up); 0: always describe.
    status_fresh_seconds: float = Field(default=2.0, ge=0)
    # How steps run when a pipeline (`PIPELINE_SETTINGS.execution.mode`) or an instruction
    # run (`executionMode`) names no mode: durable, fast or auto (`workflows.shared.execution`).
    execution_mode: ExecutionMode = "auto"

    # Gateway.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    # How long the gateway keeps an idle keep-alive connection open. It must outlast every
    # client's and proxy's own idle limit (httpx pools 5 s, load balancers 60 s): a server
    # that closes first races a client reusing the connection at that moment, whose request
    # then gets "Server disconnected without sending a response".
    gateway_keep_alive_seconds: int = Field(default=75, gt=0)
    # `tenant:key` pairs; unset, the gateway is open (one tenant) and serves loopback only.
    gateway_api_keys: CsvList = []
    # Host names the gateway answers to (a Host check against DNS rebinding); `*` for any.
    gateway_allowed_hosts: CsvList = ["127.0.0.1", "localhost", "::1"]
    # Fair use per tenant, across gateway replicas; 0 turns a limit off.
    tenant_requests_per_second: float = 50.0
    tenant_max_running_runs: int = 200
    max_request_bytes: int = 1024 * 1024
    # Beyond a run's own deadline, before Temporal itself ends a run that cannot close (for
    # instance one whose workflow task fails on every retry).
    run_timeout_grace_seconds: float = 600.0
    # How long a synchronous `POST /execute` waits for the run's end before answering 202.
    sync_wait_seconds: float = 300.0

    # `make dev` only: the example's demo service, and where state and logs are kept.
    demo_port: int = 8001
    data_dir: Path = Path(".data")

    # Webhooks go through a durable outbox that outlives the run (the run never waits on
    # them). Each attempt is bounded; each event is retried with backoff (1 s doubling, at
    # most the max interval apart) until the delivery window after it was emitted has passed.
    # The window's former name, WEBHOOK_DELIVERY_TIMEOUT_SECONDS, is still read.
    webhook_attempt_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_delivery_window_seconds: float = Field(
        default=6 * 3600,
        gt=0,
        validation_alias=AliasChoices(
            "webhook_delivery_window_seconds", "webhook_delivery_timeout_seconds"
        ),
    )
    webhook_retry_max_interval_seconds: float = Field(default=300.0, gt=0)
    # `whsec_…` (Standard Webhooks); several, space- or comma-separated, while rotating: each
    # delivery then carries one signature per secret. Read by the worker only.
    webhook_signing_secret: SecretStr | None = None

    # LLM providers. Keys and base URLs never travel in workflow input or history.
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    openai_api: Literal["chat", "responses"] = "chat"
    llm_step_timeout_seconds: float = 300.0
    llm_condition_timeout_seconds: float = 120.0
    instruction_step_budget: int = 100
    # Past it a run's running step is cancelled and the run errors (TimedOut).
    instruction_run_timeout_seconds: float = 3600.0
    # Temporal retries a failed LLM call this many times, waiting 1 s, 2 s, 4 s… in between.
    llm_max_retries: int = 3
    llm_retry_initial_seconds: float = 1.0
    # What one LLM call may generate when it names no max_tokens, and what one instruction run
    # may spend in all (input and output tokens) before it fails with TokenBudgetExceeded.
    llm_max_tokens: int = 4096
    llm_token_budget_per_run: int = 200_000
    # The model the bundled instruction example asks for (e.g. one a local server serves);
    # unset: the provider's default (gpt-5-nano, claude-haiku-4-5).
    example_model: str | None = None

    # Endpoint workers: each name is its own task queue.
    endpoint_workers: CsvList = ["endpoint-1", "endpoint-2", "endpoint-3"]
    #: Beyond a proxied call's own budget: how long `POST /endpoints/{name}` waits for an
    #: endpoint worker to take the call before answering 504.
    endpoint_pickup_timeout_seconds: float = 30.0

    # Outbound HTTP guard. `outbound_allow`: destinations allowed despite being private or
    # loopback; the connect timeout keeps an unreachable host from using a call's whole timeout.
    outbound_allow: CsvList = []
    # Dropped, with Authorization, Cookie and Proxy-Authorization, on a cross-origin redirect.
    outbound_sensitive_headers: CsvList = list(DEFAULT_SENSITIVE_HEADERS)
    outbound_max_response_bytes: int = 16 * 1024 * 1024
    outbound_max_redirects: int = 5
    # The largest request a step may render from its templates (URL, headers, query, body);
    # unset: as large as the largest response (a step can pass a whole response on).
    step_request_max_chars: int | None = None
    # `{{secrets.NAME}}`: besides SECRET_<NAME> variables, a file of secrets (JSON object or
    # NAME=value lines) the worker reads at start; values never enter workflow input.
    secrets_file: Path | None = None
    # DAG steps running at once (and the ceiling of a pipeline's max_parallel): Temporal allows
    # 2,000 pending activities per run, and each start costs the workflow a few ms of one task
    # (500 at once kept a task past the SDK's 2 s deadlock check on a loaded 2-core machine).
    max_steps_in_flight: int = 100
    outbound_connect_timeout_seconds: float = 10.0

    # Telemetry. Traces are exported over OTLP/HTTP (`<endpoint>/v1/traces`) when the endpoint
    # is set, and off otherwise; the service names default to workflow-station-gateway and
    # workflow-station-worker. The worker serves Prometheus text at
    # http://WORKER_METRICS_ADDRESS/metrics when set (off by default: several workers on one
    # machine would contend for one port). Logs are JSON lines unless LOG_FORMAT=text; unset,
    # text on a terminal and JSON otherwise.
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str | None = None
    worker_metrics_address: str | None = None
    log_format: Literal["json", "text"] | None = None

    # CORS for the endpoint proxy routes.
    cors_allow_origins: CsvList = []
    cors_allow_methods: CsvList = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    cors_allow_headers: CsvList = ["*"]

    @property
    def effective_temporal_address(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def effective_step_request_max_chars(self) -> int:
        if self.step_request_max_chars is not None:
            return self.step_request_max_chars
        return max(1_000_000, self.outbound_max_response_bytes)

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def webhook_signing_secrets(self) -> list[str]:
        """The configured `whsec_…` secrets, the one to sign with first."""
        if self.webhook_signing_secret is None:
            return []
        raw = self.webhook_signing_secret.get_secret_value()
        return [item for item in raw.replace(",", " ").split() if item]

    @property
    def encryption_keys(self) -> list[EncryptionKey]:
        """The keys of PAYLOAD_ENCRYPTION_KEY, the encrypting one first; none when unset."""
        if self.payload_encryption_key is None:
            return []
        return parse_keys(self.payload_encryption_key.get_secret_value())

    @property
    def publishes_status(self) -> bool:
        """Whether runs' status goes to Redis for `GET /runs/{id}` (`activities.store.status`,
        and the gateway's queued status of a run it starts): not with payload encryption on,
        where Redis would hold in clear what Temporal holds encrypted. (A set key always
        parses to at least one, or the settings fail to load.)"""
        return self.payload_encryption_key is None

    @property
    def gateway_on_loopback(self) -> bool:
        host = self.gateway_host.strip("[]")
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def codec_endpoint(self) -> str:
        """The gateway's codec endpoint as the Web UI (a browser on this machine) reaches it."""
        unspecified = self.gateway_host in ("0.0.0.0", "::", "[::]", "")
        host = "127.0.0.1" if unspecified else self.gateway_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.gateway_port}/codec"

    @property
    def temporal_ui_origins(self) -> list[str]:
        if self.temporal_ui_origin:
            return [self.temporal_ui_origin.rstrip("/")]
        port = self.temporal_ui_port
        return [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]

    _split_lists = field_validator(
        "endpoint_workers",
        "outbound_allow",
        "outbound_sensitive_headers",
        "cors_allow_origins",
        "gateway_api_keys",
        "gateway_allowed_hosts",
        "cors_allow_methods",
        "cors_allow_headers",
        mode="before",
    )(_split_csv)

    @field_validator("gateway_api_keys")
    @classmethod
    def _parse_api_keys(cls, entries: list[str]) -> list[str]:
        """`tenant:key` pairs; a message names the entry, never the key."""
        for position, entry in enumerate(entries):
            tenant, separator, key = entry.partition(":")
            where = f"GATEWAY_API_KEYS entry {position + 1}"
            if not separator or not TENANT_NAME.fullmatch(tenant):
                raise ValueError(
                    f"{where} must be tenant:key, the tenant made of lower-case letters,"
                    " digits, '-' and '_' (at most 63)"
                )
            if len(key) < MIN_API_KEY_CHARS:
                raise ValueError(
                    f"{where} (tenant {tenant!r}): the key is shorter than"
                    f" {MIN_API_KEY_CHARS} characters"
                )
        return entries

    @field_validator("payload_encryption_key")
    @classmethod
    def _parse_encryption_keys(cls, value: SecretStr | None) -> SecretStr | None:
        """A bad key stops every process at start, before it writes a payload."""
        if value is not None:
            parse_keys(value.get_secret_value())
        return value

    @field_validator("outbound_allow")
    @classmethod
    def _parse_outbound_allow(cls, value: list[str]) -> list[str]:
        """A bad entry stops every process at start, named, instead of never matching."""
        parse_allow_list(value)
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()


def data_converter(settings: Settings) -> DataConverter:
    """`DATA_CONVERTER` with what `settings` add to it: large payloads stored outside history
    in the settings' Redis, and payload encryption when PAYLOAD_ENCRYPTION_KEY is set.

    Every client, test environment and replayer uses one: any of them may meet a reference to
    a stored payload (in a result, a query answer, a failure's details) and must read it.
    Payloads below `PAYLOAD_INLINE_MAX_BYTES` stay inline and unencrypted payloads pass
    through, so histories recorded before either decode as they always did.
    """
    redis = Redis.from_url(
        settings.effective_redis_url,
        socket_timeout=BLOB_REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=BLOB_REDIS_TIMEOUT_SECONDS,
    )
    driver = RedisBlobDriver(
        redis, ttl_seconds=settings.payload_blob_ttl_seconds, prefix=settings.payload_blob_prefix
    )
    converter = dataclasses.replace(
        DATA_CONVERTER,
        external_storage=ExternalStorage(
            drivers=[driver], payload_size_threshold=settings.payload_inline_max_bytes
        ),
    )
    keys = settings.encryption_keys
    return with_encryption(converter, keys) if keys else converter


async def close_data_converter(converter: DataConverter) -> None:
    """Close the Redis connections of a converter `data_converter` built."""
    storage = converter.external_storage
    for driver in storage.drivers if storage is not None else []:
        if isinstance(driver, RedisBlobDriver):
            await driver.aclose()


# --- Temporal connection: Temporal's environment configuration (issue #11) -----------------

#: Where `temporal_connect_config` looks for TEMPORAL_* variables besides the environment,
#: as Settings does (the environment wins over the file).
ENV_FILE = Path(".env")
#: Truthy spellings of a boolean TEMPORAL_* variable.
_TRUE = frozenset({"1", "true", "yes", "on"})


def temporal_environment(env_file: Path | None = ENV_FILE) -> dict[str, str]:
    """The environment Temporal's configuration is read from: the process environment over
    the TEMPORAL_* entries of `env_file` (`.env`, which Settings reads but
    `temporalio.envconfig` does not). Empty values count as unset, as in Settings."""
    from_file: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        from_file = {
            name: value
            for name, value in dotenv_values(env_file).items()
            if name.startswith("TEMPORAL_") and value
        }
    return from_file | {name: value for name, value in os.environ.items() if value}


def temporal_profile(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> ClientConnectConfig:
    """What is configured for the Temporal connection, without defaults.

    Precedence, as Temporal's own tools have it: environment > profile file > defaults.

    - Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS,
      TEMPORAL_TLS_* (client cert and key, server CA, server name; `*_PATH` or `*_DATA`) and
      TEMPORAL_GRPC_META_*, from the process environment or `.env`. Settings' own
      `temporal_address` and `temporal_namespace`, when given (in code too), are this level.
    - Profile: TEMPORAL_PROFILE (default `default`) in the TOML file TEMPORAL_CONFIG_FILE
      names, else Temporal's standard one (`~/.config/temporalio/temporal.toml`).
    - Defaults (`temporal_connect_config`): 127.0.0.1:TEMPORAL_PORT, namespace `default`.

    An API key turns TLS on (Temporal Cloud); `TEMPORAL_TLS=false` turns it off.
    """
    env = dict(temporal_environment() if environ is None else environ)
    given = settings.model_fields_set
    if "temporal_address" in given and settings.temporal_address:
        env["TEMPORAL_ADDRESS"] = settings.temporal_address
    if "temporal_namespace" in given:
        env["TEMPORAL_NAMESPACE"] = settings.temporal_namespace
    if env.get("TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", "").strip().lower() in _TRUE:
        # The Python SDK cannot turn verification off; connecting would fail on the name.
        raise ValueError(
            "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported by the Python SDK: set"
            " TEMPORAL_TLS_SERVER_NAME to a name the server's certificate carries instead"
        )
    # Strict: a misspelt key in the profile (say `server_ca_cert` for `server_ca_cert_path`)
    # stops the process naming it, instead of connecting without what it meant.
    profile = ClientConfigProfile.load(override_env_vars=env, config_file_strict=True)
    return profile.to_client_connect_config()


def temporal_connect_config(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> ClientConnectConfig:
    """`Client.connect` arguments: `temporal_profile` with the defaults filled in (the
    embedded dev server `make dev` starts on TEMPORAL_PORT, namespace `default`)."""
    config = temporal_profile(settings, environ)
    config.setdefault("target_host", f"127.0.0.1:{settings.temporal_port}")
    config.setdefault("namespace", "default")
    return config


def uses_embedded_temporal(settings: Settings, environ: Mapping[str, str] | None = None) -> bool:
    """No Temporal address is configured anywhere: `make dev` starts its own dev server."""
    return "target_host" not in temporal_profile(settings, environ)


async def connect_temporal(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    *,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
) -> Client:
    """Connect to Temporal as `temporal_connect_config` says, with `data_converter(settings)`.

    The worker, the gateway, the CLI, the benchmarks and the tests connect through here, so
    connection options (address, namespace, TLS, API key, profiles) and payload storage are
    set up in one place. `interceptors` (tracing, the worker's metrics) and `runtime` (the
    worker's metrics endpoint) are the process's telemetry, from `kernel.telemetry`.
    """
    return await Client.connect(
        **temporal_connect_config(settings, environ),
        data_converter=data_converter(settings),
        interceptors=interceptors,
        runtime=runtime,
    )


# --- end of Temporal connection ----------------------------------------------------------
