"""Settings that follow one another."""

from __future__ import annotations

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
