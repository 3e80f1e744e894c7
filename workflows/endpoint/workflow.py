"""`EndpointCallWorkflow`: one proxied HTTP call, run on an endpoint worker's task queue.

The gateway's `POST /endpoints/{name}` starts it, so every call made through the proxy API
shows in the Web UI with its attempts. It uses the same `call_http` activity as DAG steps and
endpoint instructions.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.http.models import CALL_HTTP, HttpResult
    from kernel.redact import redact_url
    from workflows.endpoint.models import EndpointCallInput
    from workflows.shared.endpoints import EndpointResponse, http_call
    from workflows.shared.failures import UNHEALABLE, activity_failure, step_retry_policy


@workflow.defn(failure_exception_types=UNHEALABLE)
class EndpointCallWorkflow:
    @workflow.run
    async def run(self, call: EndpointCallInput) -> EndpointResponse:
        request = call.request
        label = f"endpoint {call.endpoint}"
        started = workflow.now()
        try:
            result = await workflow.execute_activity(
                CALL_HTTP,
                # 4xx answers come back as results, not failures, as the seed workers did.
                http_call(
                    request.method,
                    request.url,
                    request.headers,
                    request.body,
                    request.timeout,
                    label=label,
                    fail_on_client_error=False,
                ),
                result_type=HttpResult,
                start_to_close_timeout=timedelta(milliseconds=request.timeout),
                retry_policy=step_retry_policy(request.retries, request.retry_delay / 1000),
                summary=f"{request.method} {redact_url(request.url)}",
            )
        except ActivityError as exc:
            failure = activity_failure(exc, request.retries + 1, label)
            return EndpointResponse(
                success=False,
                status=failure.http_status,
                error=f"{failure.type}: {failure.message}",
                attempts=failure.attempts,
                duration=self._elapsed_ms(started),
                endpoint=call.endpoint,
            )
        return EndpointResponse(
            success=200 <= result.status < 400,
            status=result.status,
            statusText=result.reason,
            headers=result.headers,
            body=result.body,
            attempts=result.attempt,
            duration=self._elapsed_ms(started),
            endpoint=call.endpoint,
        )

    @staticmethod
    def _elapsed_ms(started: datetime) -> int:
        return int((workflow.now() - started).total_seconds() * 1000)
