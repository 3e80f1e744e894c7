"""`Settings`: every setting of every Workflow Station process, composed from the areas.

Only the composition roots (`worker.py`, the gateway's app factory and `cli/`) read
settings; workflows and activities receive what they need as arguments.

The areas (`AREAS`) are the unit of documentation: each is a class whose fields carry their
description, and `docs/reference/configuration.md` is generated from them (`make docs`).
`Settings` inherits them all rather than nesting them, so every field keeps its flat name
(`settings.redis_url`) and its environment variable (`REDIS_URL`).
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from settings.base import SettingsArea
from settings.platform import (
    DevSettings,
    RedisSettings,
    TelemetrySettings,
    TemporalSettings,
    WorkerSettings,
)
from settings.service import (
    EndpointSettings,
    ExecutionSettings,
    GatewaySettings,
    LlmSettings,
    OutboundSettings,
    WebhookSettings,
)


class Settings(
    TemporalSettings,
    WorkerSettings,
    RedisSettings,
    GatewaySettings,
    ExecutionSettings,
    OutboundSettings,
    LlmSettings,
    WebhookSettings,
    EndpointSettings,
    TelemetrySettings,
    DevSettings,
):
    """All configuration, one environment variable per field (upper-cased name)."""

    model_config = SettingsConfigDict(title="Settings")


#: Every area, in the order the configuration reference lists them: `Settings`'s bases.
AREAS: tuple[type[SettingsArea], ...] = Settings.__bases__


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
