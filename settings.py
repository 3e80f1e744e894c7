"""Settings for every Workflow Station process, read from the environment and `.env`, and
the one way any process connects to Temporal.

Only the composition roots (`worker.py`, the gateway's app factory and `cli.py`) read
settings; workflows and activities receive what they need as arguments.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from activities.http.outbound import DEFAULT_SENSITIVE_HEADERS, parse_allow_list
from codec import EncryptionKey, parse_keys, with_encryption

#: The payload converter of every Temporal client, test environment and replayer: the pydantic
#: models users POST are the models workflows and activities receive, so all must agree on it.
#: `data_converter(settings)` adds what the settings ask for (payload encryption).
DATA_CONVERTER = pydantic_data_converter

#: Search attributes the gateway sets on every run, so runs can be found in the Web UI and
#: with `temporal workflow list --query "WorkflowStationEngine='dag'"`.
SEARCH_ATTRIBUTES = {
    "WorkflowStationEngine": "Keyword",
    "WorkflowStationNamespace": "Keyword",
    "WorkflowStationId": "Keyword",
}

#: The dev server's default transfer poll rate (20/s) adds ~50 ms to every activity round
#: trip; this keeps a sequential step around 10 ms. Used by `make dev`, tests and compose.
LATENCY_TUNED_DYNAMIC_CONFIG = {
    "history.transferProcessorMaxPollRPS": "1000",
    "history.timerProcessorMaxPollRPS": "1000",
    "matching.numTaskqueueReadPartitions": "1",
    "matching.numTaskqueueWritePartitions": "1",
}


def _split_csv(cls: type, value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """All configuration, one environment variable per field (upper-cased name)."""

    # hide_input_in_errors: a rejected PAYLOAD_ENCRYPTION_KEY (or any setting) is named, never
    # echoed in the error.
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

    # Gateway.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    max_request_bytes: int = 1024 * 1024
    # Beyond a run's own deadline, before Temporal itself ends a run that cannot close (for
    # instance one whose workflow task fails on every retry).
    run_timeout_grace_seconds: float = 600.0
    # How long a synchronous `POST /execute` waits for the run's end before answering 202.
    sync_wait_seconds: float = 300.0

    # `make dev` only: the example's demo service, and where state and logs are kept.
    demo_port: int = 8001
    data_dir: Path = Path(".data")

    # Webhooks: each attempt is bounded, and so is the whole delivery of one event.
    webhook_attempt_timeout_seconds: float = 10.0
    webhook_delivery_timeout_seconds: float = 120.0

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
    outbound_max_response_bytes: int = 4 * 1024 * 1024
    outbound_max_redirects: int = 5
    # The largest request a step may render from its templates (URL, headers, query, body).
    step_request_max_chars: int = 1_000_000
    # `{{secrets.NAME}}`: besides SECRET_<NAME> variables, a file of secrets (JSON object or
    # NAME=value lines) the worker reads at start; values never enter workflow input.
    secrets_file: Path | None = None
    # DAG steps running at once (and the ceiling of a pipeline's max_parallel): Temporal allows
    # 2,000 pending activities per run.
    max_steps_in_flight: int = 500
    outbound_connect_timeout_seconds: float = 10.0

    # CORS for the endpoint proxy routes.
    cors_allow_origins: CsvList = ["*"]
    cors_allow_methods: CsvList = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    cors_allow_headers: CsvList = ["*"]

    @property
    def effective_temporal_address(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def encryption_keys(self) -> list[EncryptionKey]:
        """The keys of PAYLOAD_ENCRYPTION_KEY, the encrypting one first; none when unset."""
        if self.payload_encryption_key is None:
            return []
        return parse_keys(self.payload_encryption_key.get_secret_value())

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
        "cors_allow_methods",
        "cors_allow_headers",
        mode="before",
    )(_split_csv)

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
    """`DATA_CONVERTER` with what `settings` add to it: payload encryption when
    PAYLOAD_ENCRYPTION_KEY is set. Every client, worker, test environment and replayer takes
    its converter from here (through `connect_temporal` where it connects)."""
    keys = settings.encryption_keys
    return with_encryption(DATA_CONVERTER, keys) if keys else DATA_CONVERTER


async def connect_temporal(settings: Settings) -> Client:
    """Connect to the Temporal server and namespace `settings` name, with
    `data_converter(settings)`.

    The worker, the gateway and any other process connect through here, so connection options
    (TLS, API keys, profiles) are added in one place.
    """
    return await Client.connect(
        settings.effective_temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
    )
