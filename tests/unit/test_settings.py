"""Settings that follow one another."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from settings import Settings

MIB = 1024 * 1024


def test_a_step_may_send_on_as_much_as_it_may_receive() -> None:
    assert Settings(_env_file=None).effective_step_request_max_chars == 16 * MIB
    large = Settings(_env_file=None, outbound_max_response_bytes=32 * MIB)
    assert large.effective_step_request_max_chars == 32 * MIB
    small = Settings(_env_file=None, outbound_max_response_bytes=1000)
    assert small.effective_step_request_max_chars == 1_000_000
    chosen = Settings(
        _env_file=None, outbound_max_response_bytes=32 * MIB, step_request_max_chars=5
    )
    assert chosen.effective_step_request_max_chars == 5


def test_a_price_file_that_is_no_price_table_stops_the_settings(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text('{"models": {"gpt-4o": {"input": 1, "output": 2}}}')
    assert Settings(_env_file=None, llm_prices_file=prices).llm_prices_file == prices  # type: ignore[call-arg]
    prices.write_text("not json")
    with pytest.raises(ValidationError, match="prices.json: not a price table"):
        Settings(_env_file=None, llm_prices_file=prices)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="missing.json"):
        Settings(_env_file=None, llm_prices_file=tmp_path / "missing.json")  # type: ignore[call-arg]


def test_tenant_budgets_are_read_as_json_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TENANT_BUDGETS", '{"acme": 50, "beta": 2.5}')
    assert Settings(_env_file=None).tenant_budgets == {"acme": 50.0, "beta": 2.5}  # type: ignore[call-arg]
