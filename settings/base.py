"""What every settings area shares: how it is read, and how a list is written in the
environment.

An area is one class of related settings (`settings.platform`, `settings.service`);
`settings.config.Settings` composes them all. Each field's `description` is its
documentation: `docs/reference/configuration.md` is generated from it (`make docs`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def split_csv(cls: type, value: object) -> object:
    """A comma-separated environment value as a list; anything else as it is."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


#: A list written as comma-separated text in the environment (`NoDecode`: not JSON).
CsvList = Annotated[list[str], NoDecode]


class SettingsArea(BaseSettings):
    """One area of the settings, read from the environment and `.env` like all of them:
    one environment variable per field, its name upper-cased; empty values count as unset."""

    # hide_input_in_errors: a bad setting is named in the error, its value (a key?) never shown.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", env_ignore_empty=True, hide_input_in_errors=True
    )
