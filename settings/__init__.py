"""Settings for every Workflow Station process, and the one way any process connects to
Temporal.

- `settings.config`: `Settings`, every environment variable, composed from the areas of
  `settings.platform` (Temporal, workers, Redis, telemetry) and `settings.service` (gateway,
  runs, outbound calls, LLM providers, webhooks, endpoint workers).
- `settings.converter`: the payload converter of every client, test environment and replayer.
- `settings.temporal`: the Temporal connection (`connect_temporal`, profiles, TLS, API key).

Importers use the names re-exported here (`from settings import Settings, connect_temporal`).
"""

from settings.base import CsvList
from settings.config import AREAS, Settings, get_settings
from settings.converter import (
    BLOB_REDIS_TIMEOUT_SECONDS,
    DATA_CONVERTER,
    PayloadConverter,
    SharedAdaptersJSONConverter,
    close_data_converter,
    data_converter,
)
from settings.service import MIN_API_KEY_CHARS, TENANT_NAME
from settings.temporal import (
    ENV_FILE,
    LATENCY_TUNED_DYNAMIC_CONFIG,
    connect_temporal,
    temporal_connect_config,
    temporal_environment,
    temporal_profile,
    uses_embedded_temporal,
)

__all__ = [
    "AREAS",
    "BLOB_REDIS_TIMEOUT_SECONDS",
    "DATA_CONVERTER",
    "ENV_FILE",
    "LATENCY_TUNED_DYNAMIC_CONFIG",
    "MIN_API_KEY_CHARS",
    "TENANT_NAME",
    "CsvList",
    "PayloadConverter",
    "Settings",
    "SharedAdaptersJSONConverter",
    "close_data_converter",
    "connect_temporal",
    "data_converter",
    "get_settings",
    "temporal_connect_config",
    "temporal_environment",
    "temporal_profile",
    "uses_embedded_temporal",
]
