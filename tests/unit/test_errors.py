"""The failure taxonomy: which HTTP failures Temporal retries, and how Retry-After is honoured."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationErrorCategory

from kernel.errors import (
    MAX_RETRY_AFTER,
    NON_RETRYABLE_TYPES,
    ErrorType,
    error_type_of,
    http_status_error,
    is_retryable_status,
    llm_retry_after,
    llm_status_error,
    llm_unavailable,
    non_retryable,
    retry_after,
    status_error_type,
    transport_error,
)


def http_date(moment: datetime) -> str:
    return email.utils.format_datetime(moment, usegmt=True)


class TestRetryableStatus:
    @pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 529, 599])
    def test_retryable(self, status: int) -> None:
        assert is_retryable_status(status)

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 413, 422, 451, 499])
    def test_not_retryable(self, status: int) -> None:
        assert not is_retryable_status(status)

    @pytest.mark.parametrize(
        ("status", "error_type"),
        [
            (408, "HttpTimeoutStatus"),
            (429, "HttpRateLimited"),
            (503, "HttpUnavailable"),
            (500, "HttpServerError"),
            (502, "HttpServerError"),
            (504, "HttpServerError"),
            (400, "HttpClientError"),
            (404, "HttpClientError"),
            (422, "HttpClientError"),
        ],
    )
    def test_error_type_names(self, status: int, error_type: str) -> None:
        assert status_error_type(status) == error_type


class TestRetryAfter:
    def test_seconds(self) -> None:
        assert retry_after({"Retry-After": "7"}) == timedelta(seconds=7)

    @pytest.mark.parametrize("value", ["99999999", "9" * 5000])
    def test_a_huge_wait_is_capped(self, value: str) -> None:
        assert retry_after({"Retry-After": value}) == MAX_RETRY_AFTER
        assert llm_retry_after({"retry-after-ms": "1e300"}) == MAX_RETRY_AFTER

    def test_the_steps_budget_caps_the_wait(self) -> None:
        ceiling = timedelta(seconds=4)
        assert retry_after({"Retry-After": "30"}, ceiling) == ceiling
        assert retry_after({"Retry-After": "2"}, ceiling) == timedelta(seconds=2)
        later = http_date(datetime.now(UTC) + timedelta(days=400))
        assert retry_after({"Retry-After": later}, ceiling) == ceiling

    def test_header_name_is_case_insensitive_and_value_trimmed(self) -> None:
        assert retry_after({"retry-after": " 12 "}) == timedelta(seconds=12)
        assert retry_after({"RETRY-AFTER": "0"}) == timedelta(0)

    def test_http_date_in_the_future(self) -> None:
        moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=120)
        delay = retry_after({"Retry-After": http_date(moment)})
        assert delay is not None
        assert timedelta(seconds=115) <= delay <= timedelta(seconds=120)

    def test_http_date_in_the_past_means_now(self) -> None:
        assert retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == timedelta(0)

    @pytest.mark.parametrize("value", ["soon", "1.5", "-3", ""])
    def test_unparseable_values_are_ignored(self, value: str) -> None:
        assert retry_after({"Retry-After": value}) is None

    @pytest.mark.parametrize("headers", [None, {}, {"Content-Type": "application/json"}])
    def test_absent(self, headers: dict[str, str] | None) -> None:
        assert retry_after(headers) is None


class TestHttpStatusError:
    def test_429_is_retryable_with_retry_after_as_next_delay(self) -> None:
        error = http_status_error(
            429, "rate limited", headers={"Retry-After": "5"}, details={"url": "http://x/"}
        )
        assert error.message == "rate limited"
        assert error.type == "HttpRateLimited"
        assert error.non_retryable is False
        assert error.next_retry_delay == timedelta(seconds=5)
        assert error.details == ({"status": 429, "url": "http://x/"},)

    def test_503_honours_an_http_date(self) -> None:
        moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=60)
        error = http_status_error(503, "down", headers={"Retry-After": http_date(moment)})
        assert error.type == "HttpUnavailable"
        assert error.non_retryable is False
        assert error.next_retry_delay is not None
        assert timedelta(seconds=55) <= error.next_retry_delay <= timedelta(seconds=60)

    def test_429_without_retry_after_leaves_backoff_to_the_policy(self) -> None:
        assert http_status_error(429, "slow").next_retry_delay is None

    @pytest.mark.parametrize("status", [408, 500, 502, 504])
    def test_other_retryable_statuses_ignore_retry_after(self, status: int) -> None:
        error = http_status_error(status, "try again", headers={"Retry-After": "30"})
        assert error.non_retryable is False
        assert error.next_retry_delay is None

    @pytest.mark.parametrize("status", [400, 401, 404, 422])
    def test_other_4xx_are_non_retryable(self, status: int) -> None:
        error = http_status_error(status, "rejected", headers={"Retry-After": "30"})
        assert error.type == "HttpClientError"
        assert error.non_retryable is True
        assert error.next_retry_delay is None
        assert error.details == ({"status": status},)


class TestOtherErrors:
    def test_transport_error_is_retryable(self) -> None:
        error = transport_error("connection refused", {"url": "http://127.0.0.1:1/"})
        assert error.type == "TransportError"
        assert error.non_retryable is False
        assert error.details == ({"url": "http://127.0.0.1:1/"},)

    def test_non_retryable_sets_the_flag_and_type(self) -> None:
        error = non_retryable(ErrorType.INVALID_REQUEST, "bad URL 'ftp://x'")
        assert error.type == "InvalidRequest"
        assert error.message == "bad URL 'ftp://x'"
        assert error.non_retryable is True
        assert error.details == ({},)

    def test_http_client_error_is_listed_as_non_retryable(self) -> None:
        # The retry policy's non_retryable_error_types come from this list.
        assert "HttpClientError" in NON_RETRYABLE_TYPES
        assert "InvalidRequest" in NON_RETRYABLE_TYPES
        for retryable in (
            "HttpServerError",
            "HttpRateLimited",
            "HttpUnavailable",
            "TransportError",
        ):
            assert retryable not in NON_RETRYABLE_TYPES

    def test_non_retryable_refuses_a_retryable_type(self) -> None:
        with pytest.raises(ValueError, match="TransportError"):
            non_retryable(ErrorType.TRANSPORT_ERROR, "oops")

    def test_the_callers_mistakes_are_benign(self) -> None:
        # 4xx and bad requests are the caller's doing: logged quietly, not counted as errors.
        assert http_status_error(404, "x").category == ApplicationErrorCategory.BENIGN
        assert (
            non_retryable(ErrorType.INVALID_REQUEST, "x").category
            == ApplicationErrorCategory.BENIGN
        )
        assert http_status_error(500, "x").category == ApplicationErrorCategory.UNSPECIFIED
        assert transport_error("x").category == ApplicationErrorCategory.UNSPECIFIED

    def test_every_type_is_retryable_or_listed_as_non_retryable(self) -> None:
        retryable = {"HttpServerError", "HttpTimeoutStatus", "HttpRateLimited", "HttpUnavailable"}
        retryable |= {"TransportError", "LlmProviderError", "LlmUnparseableAnswer"}
        assert set(NON_RETRYABLE_TYPES) == {str(kind) for kind in ErrorType} - retryable

    def test_error_type_of_names_failures_without_a_type_of_ours(self) -> None:
        assert error_type_of(http_status_error(404, "x")) == "HttpClientError"
        assert error_type_of(TimeoutError("slow")) == "TimeoutError"
        assert error_type_of(None) == "Unknown"


class TestLlmErrors:
    @pytest.mark.parametrize("status", [408, 429, 500, 503, 529])
    def test_retryable_statuses_are_provider_errors(self, status: int) -> None:
        error = llm_status_error(status, "busy", details={"provider": "openai"})
        assert (error.type, error.non_retryable) == ("LlmProviderError", False)
        assert error.details[0] == {"provider": "openai"}

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
    def test_other_4xx_are_rejected_for_good(self, status: int) -> None:
        error = llm_status_error(status, "bad key")
        assert (error.type, error.non_retryable) == ("LlmRequestRejected", True)
        assert "LlmRequestRejected" in NON_RETRYABLE_TYPES

    def test_retry_after_ms_wins_over_retry_after(self) -> None:
        headers = {"Retry-After-Ms": "1500", "Retry-After": "9"}
        assert llm_retry_after(headers) == timedelta(milliseconds=1500)
        error = llm_status_error(429, "slow down", headers=headers)
        assert error.next_retry_delay == timedelta(milliseconds=1500)

    def test_retry_after_alone_and_garbage(self) -> None:
        assert llm_retry_after({"retry-after": "4"}) == timedelta(seconds=4)
        assert llm_retry_after({"retry-after-ms": "soon", "retry-after": "2"}) == timedelta(
            seconds=2
        )
        assert llm_retry_after(None) is None

    def test_unavailable_is_retryable(self) -> None:
        error = llm_unavailable("unreachable")
        assert (error.type, error.non_retryable) == ("LlmProviderError", False)


def test_retry_after_http_date_with_unknown_zone_is_utc() -> None:
    moment = datetime.now(UTC) + timedelta(seconds=120)
    value = moment.strftime("%a, %d %b %Y %H:%M:%S -0000")
    delay = retry_after({"Retry-After": value})
    assert delay is not None
    assert 110 <= delay.total_seconds() <= 121
