"""Which pollers count as a live worker (`gateway/workers.is_live`): the readiness rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.taskqueue.v1 import PollerInfo

from gateway.workers import POLLER_STALE_SECONDS, is_live

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def poller(identity: str, seconds_ago: float) -> PollerInfo:
    at = Timestamp()
    at.FromDatetime(NOW - timedelta(seconds=seconds_ago))
    return PollerInfo(identity=identity, last_access_time=at)


def test_a_worker_that_polled_lately_is_live() -> None:
    # An idle worker's long poll lasts about a minute before it polls again.
    assert is_live(poller("1@worker-a", 60), {}, NOW)


def test_a_worker_silent_past_the_stale_limit_is_gone() -> None:
    # A worker killed outright reports nothing: only its silence tells.
    assert not is_live(poller("1@worker-a", POLLER_STALE_SECONDS + 1), {}, NOW)


def test_a_worker_that_reported_stopping_after_its_last_poll_is_gone() -> None:
    stopped = {"1@worker-a": NOW - timedelta(seconds=1)}
    assert not is_live(poller("1@worker-a", 2), stopped, NOW)
    assert is_live(poller("1@worker-b", 2), stopped, NOW)  # another worker is not


def test_a_worker_started_again_under_the_same_identity_is_live() -> None:
    # A container restarted in place keeps its host name and pid 1: same identity.
    stopped = {"1@worker-a": NOW - timedelta(seconds=30)}
    assert is_live(poller("1@worker-a", 5), stopped, NOW)
