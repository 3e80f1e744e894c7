"""A typed Python client of the gateway's HTTP API, blocking (`WorkflowStationClient`) or
asyncio (`AsyncWorkflowStationClient`), over httpx. The CLI is built on it.

    from gateway.client import WorkflowStationClient

    with WorkflowStationClient() as client:          # GATEWAY_URL, WORKFLOW_STATION_API_KEY
        result = client.run(json.load(open("hello.json")))      # a DagRunResult, at the end
        for event in client.events("hello-digest"):             # RunEvent, until `end`
            ...

Both clients make the same calls (`_Calls` says what each sends and how its answer is read),
and differ only in how they wait. The base URL, API key and timeout come from the arguments,
else from the environment the CLI reads (`GATEWAY_URL`, `WORKFLOW_STATION_API_KEY`,
`WORKFLOW_STATION_TIMEOUT`).

An answer of 400 or more is raised as a `ProblemResponse` subclass carrying the gateway's
`detail` (a message, or for a 422 the list of `{loc, msg, type}` problems); a gateway that
cannot be reached is `GatewayUnreachable`:

    ClientError
    ├── GatewayUnreachable ....... no answer (connection refused, timed out, stream lost)
    └── ProblemResponse .......... the gateway answered 4xx or 5xx
        ├── NotAuthenticated ..... 401
        ├── Forbidden ............ 403
        ├── NotFound ............. 404
        ├── Conflict ............. 409
        ├── InvalidPayload ....... 422  (`problems`: every problem at once)
        ├── RateLimited .......... 429  (`retry_after`, seconds)
        └── Unavailable .......... 5xx

`events` follows a run's Server-Sent Events and, when the connection drops before the run's
`end`, reconnects with `Last-Event-ID` so no event is missed or repeated.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from gateway.runs.instructions import InstructionRunView
from gateway.runs.listing import RunSummary
from gateway.schedule_models import (
    BackfillRequest,
    Overlap,
    ScheduleCreate,
    ScheduleNote,
    ScheduleSummary,
    ScheduleView,
)
from workflows.dag.models import DagRunResult, PipelineRequest, RerunAccepted, RerunRequest
from workflows.instructions.models import InstructionRunRequest
from workflows.shared.approvals import ApprovalDecision, Decision
from workflows.shared.plans import Engine, Plan

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
#: Reads wait for runs (a synchronous `POST /execute` up to SYNC_WAIT_SECONDS); a stream may
#: stay quiet between events (pinged every 15 s).
DEFAULT_TIMEOUT_SECONDS = 60.0
#: Reconnections of an event stream in a row without an event, before giving up.
STREAM_RECONNECTS = 5
#: The first wait before reconnecting a dropped stream; each next one doubles.
RECONNECT_DELAY_SECONDS = 0.2

Run = DagRunResult | InstructionRunView
RunList = list[RunSummary]
ScheduleList = list[ScheduleSummary]
T = TypeVar("T")


class ClientError(Exception):
    """Base of the client's errors."""


class GatewayUnreachable(ClientError):
    """No answer from the gateway: it is down, too slow, or the connection was lost."""


class ProblemResponse(ClientError):
    """The gateway answered an error: `status_code`, and `detail` as it sent it.

    `detail` is the gateway's message (`{"detail": "..."}`), or for a 422 the list of
    problems, each `{loc, msg, type}`.
    """

    def __init__(self, status_code: int, detail: Any, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers)
        super().__init__(f"HTTP {status_code}: {describe(detail)}")


class NotAuthenticated(ProblemResponse):
    pass


class Forbidden(ProblemResponse):
    pass


class NotFound(ProblemResponse):
    pass


class Conflict(ProblemResponse):
    pass


class InvalidPayload(ProblemResponse):
    """422: the payload (or a parameter) is not valid; `problems` lists each one."""

    @property
    def problems(self) -> list[dict[str, Any]]:
        return self.detail if isinstance(self.detail, list) else [{"msg": str(self.detail)}]


class RateLimited(ProblemResponse):
    """429: the tenant's request rate or running runs; `retry_after` says when to try again."""

    @property
    def retry_after(self) -> float | None:
        value = self.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


class Unavailable(ProblemResponse):
    pass


_BY_STATUS: dict[int, type[ProblemResponse]] = {
    401: NotAuthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidPayload,
    429: RateLimited,
}


def describe(detail: Any) -> str:
    """A problem detail on one line: the message, or each problem's `msg`, `; `-joined, led
    by where it is (`workflow_id: Field required`) when the message does not say."""
    if isinstance(detail, list):
        return "; ".join(_problem(item) for item in detail)
    return str(detail)


def _problem(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    message = str(item.get("msg", item))
    loc = [str(part) for part in item.get("loc", []) if part != "body"]
    # Our own messages name the field already (`STEPS_CONFIG[0].service_ur: unknown field`).
    return f"{'.'.join(loc)}: {message}" if loc and loc[-1] not in message else message


def problem(response: httpx.Response) -> ProblemResponse:
    """The exception a 4xx or 5xx answer stands for (its body already read)."""
    try:
        body = response.json()
        detail = body.get("detail", body) if isinstance(body, dict) else body
    except ValueError:
        detail = response.text
    kind = _BY_STATUS.get(response.status_code)
    if kind is None:
        kind = Unavailable if response.status_code >= 500 else ProblemResponse
    return kind(response.status_code, detail, response.headers)


class RunEvent(BaseModel):
    """One Server-Sent Event of a run: `event` is its name (`step.completed`, `step.delta`,
    `gap`, `end`, ...), `id` its sequence number (None for `gap` and `end`), `data` what it
    carries."""

    event: str
    id: int | None = None
    data: Any = None
    #: The SSE id as sent (`<sequence>` or `<sequence>:<live stream id>`): where to resume.
    cursor: str | None = None


@dataclass
class SseParser:
    """Server-Sent Events, fed one line at a time; comments (the gateway's pings) skipped."""

    event: str = "message"
    id: int | None = None
    cursor: str | None = None
    data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> RunEvent | None:
        """The event this line completes (a blank line ends one), else None."""
        if not line:
            complete = None
            if self.data:
                data = json.loads("\n".join(self.data))
                complete = RunEvent(event=self.event, id=self.id, data=data, cursor=self.cursor)
            self.event, self.id, self.cursor, self.data = "message", None, None, []
            return complete
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id" and value.partition(":")[0].isdigit():
            self.id, self.cursor = int(value.partition(":")[0]), value
        return None


def run_path(run_id: str) -> str:
    return f"/runs/{quote(run_id, safe='')}"


def schedule_path(schedule_id: str) -> str:
    return f"/schedules/{quote(schedule_id, safe='')}"


def as_body(payload: BaseModel | Mapping[str, Any]) -> Any:
    """A payload as JSON to send: a model as its user would write it, a mapping as it is."""
    if isinstance(payload, BaseModel):
        return payload.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return dict(payload)


_RUN = TypeAdapter(Run)
_RUN_LIST = TypeAdapter(RunList)
_SCHEDULE_LIST = TypeAdapter(ScheduleList)


def read_run(data: Any) -> Run:
    """A run of either engine: a DAG run's steps are a mapping, an instruction run's a list."""
    if isinstance(data, dict) and isinstance(data.get("steps"), dict):
        return DagRunResult.model_validate(data)
    return _RUN.validate_python(data)


def rerun_request(
    from_step: str | None,
    steps: Mapping[str, Mapping[str, Any]] | None,
    input_data: Mapping[str, Any] | None,
    workflow_id: str | None,
    *,
    from_instruction: int | None = None,
    instructions: Mapping[int, Mapping[str, Any]] | None = None,
    context: str | None = None,
) -> RerunRequest:
    """The rerun body with only the fields given: the gateway decides every default. An
    instruction run takes `from_instruction`, `instructions` (by index) and `context`."""
    edits = {str(index): dict(fields) for index, fields in (instructions or {}).items()}
    given: dict[str, Any] = {
        "from_step": from_step,
        "steps": {name: dict(fields) for name, fields in (steps or {}).items()} or None,
        "input_data": dict(input_data) if input_data is not None else None,
        "workflow_id": workflow_id,
        "from_instruction": from_instruction,
        "instructions": edits or None,
        "context": context,
    }
    return RerunRequest.model_validate({k: v for k, v in given.items() if v is not None})


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how its answer is read."""

    method: str
    path: str
    read: Callable[[Any], T]
    params: dict[str, Any] | None = None
    json: Any = None


class _Calls:
    """What each API call sends, and how its answer is read; no I/O."""

    @staticmethod
    def start(pipeline: PipelineRequest | Mapping[str, Any]) -> Call[DagRunResult]:
        return Call(
            "POST",
            "/execute",
            DagRunResult.model_validate,
            params={"wait": "false"},
            json=as_body(pipeline),
        )

    @staticmethod
    def start_instructions(
        request: InstructionRunRequest | Mapping[str, Any],
    ) -> Call[InstructionRunView]:
        def read(data: Any) -> InstructionRunView:
            return InstructionRunView.model_validate(
                {**data["status"], "instanceId": data["instanceId"]}
            )

        return Call("POST", "/", read, json=as_body(request))

    @staticmethod
    def get(run_id: str) -> Call[Run]:
        return Call("GET", run_path(run_id), read_run)

    @staticmethod
    def get_dag(run_id: str) -> Call[DagRunResult]:
        return Call("GET", run_path(run_id), DagRunResult.model_validate)

    @staticmethod
    def cancel(run_id: str) -> Call[Run]:
        return Call("POST", f"{run_path(run_id)}/cancel", read_run)

    @staticmethod
    def rerun(run_id: str, request: RerunRequest) -> Call[RerunAccepted]:
        return Call(
            "POST",
            f"{run_path(run_id)}/rerun",
            RerunAccepted.model_validate,
            json=as_body(request),
        )

    @staticmethod
    def approve(
        run_id: str, step: str, decision: Decision, comment: str | None, data: Any
    ) -> Call[dict[str, Any]]:
        body = ApprovalDecision(decision=decision, comment=comment, data=data)
        return Call(
            "POST",
            f"{run_path(run_id)}/steps/{quote(step, safe='')}/approve",
            dict,
            json=body.model_dump(exclude_none=True),
        )

    @staticmethod
    def pause(run_id: str, paused: bool) -> Call[Run]:
        verb = "pause" if paused else "resume"
        return Call("POST", f"{run_path(run_id)}/{verb}", read_run)

    @staticmethod
    def validate(payload: Any, engine: Engine | None) -> Call[Plan]:
        params = {"engine": engine} if engine else None
        return Call("POST", "/validate", Plan.model_validate, params=params, json=as_body(payload))

    @staticmethod
    def list_runs(status: str | None, limit: int) -> Call[RunList]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        return Call("GET", "/runs", _RUN_LIST.validate_python, params=params)

    @staticmethod
    def create_schedule(request: ScheduleCreate | Mapping[str, Any]) -> Call[ScheduleView]:
        return Call("POST", "/schedules", ScheduleView.model_validate, json=as_body(request))

    @staticmethod
    def list_schedules(limit: int) -> Call[ScheduleList]:
        return Call("GET", "/schedules", _SCHEDULE_LIST.validate_python, params={"limit": limit})

    @staticmethod
    def get_schedule(schedule_id: str) -> Call[ScheduleView]:
        return Call("GET", schedule_path(schedule_id), ScheduleView.model_validate)

    @staticmethod
    def schedule_action(
        schedule_id: str, verb: str, body: BaseModel | None = None
    ) -> Call[ScheduleView]:
        """`pause`, `unpause`, `trigger` or `backfill`, each answered with the schedule."""
        return Call(
            "POST",
            f"{schedule_path(schedule_id)}/{verb}",
            ScheduleView.model_validate,
            json=as_body(body) if body is not None else None,
        )

    @staticmethod
    def pause_schedule(schedule_id: str, paused: bool, note: str | None) -> Call[ScheduleView]:
        verb = "pause" if paused else "unpause"
        return _Calls.schedule_action(schedule_id, verb, ScheduleNote(note=note))

    @staticmethod
    def delete_schedule(schedule_id: str) -> Call[None]:
        return Call("DELETE", schedule_path(schedule_id), lambda _: None)


def _settings(
    base_url: str | None, api_key: str | None, timeout: float | None
) -> tuple[str, dict[str, str], httpx.Timeout]:
    base_url = base_url or os.environ.get("GATEWAY_URL") or DEFAULT_BASE_URL
    api_key = api_key or os.environ.get("WORKFLOW_STATION_API_KEY") or None
    if timeout is None:
        timeout = float(os.environ.get("WORKFLOW_STATION_TIMEOUT") or DEFAULT_TIMEOUT_SECONDS)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return base_url, headers, httpx.Timeout(timeout)


def _events_headers(after: int | str | None) -> dict[str, str]:
    return {"Last-Event-ID": str(after)} if after else {}


class WorkflowStationClient:
    """The gateway's API, blocking.

    Args:
        base_url: the gateway; unset: `GATEWAY_URL`, else http://127.0.0.1:8000.
        api_key: the tenant's key; unset: `WORKFLOW_STATION_API_KEY`, else none.
        timeout: seconds a request may take; unset: `WORKFLOW_STATION_TIMEOUT`, else 60.
        transport: an httpx transport to use instead of the network (tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, headers, limits = _settings(base_url, api_key, timeout)
        self.http = httpx.Client(base_url=url, headers=headers, timeout=limits, transport=transport)

    def __enter__(self) -> WorkflowStationClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _call(self, call: Call[T]) -> T:
        try:
            response = self.http.request(call.method, call.path, params=call.params, json=call.json)
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(f"no answer from {self.http.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise problem(response)
        return call.read(response.json() if response.content else None)

    def start(self, pipeline: PipelineRequest | Mapping[str, Any]) -> DagRunResult:
        """Start a DAG pipeline (`POST /execute?wait=false`); its first state."""
        return self._call(_Calls.start(pipeline))

    def run(self, pipeline: PipelineRequest | Mapping[str, Any]) -> DagRunResult:
        """Start a DAG pipeline and wait for its end; its final state."""
        started = self.start(pipeline)
        for event in self.events(started.workflow_id):
            if event.event == "end":
                break
        return self._call(_Calls.get_dag(started.workflow_id))

    def start_instructions(
        self, request: InstructionRunRequest | Mapping[str, Any]
    ) -> InstructionRunView:
        """Start an instruction run (`POST /`); its first state, with its `instance_id`."""
        return self._call(_Calls.start_instructions(request))

    def get(self, run_id: str) -> Run:
        """A run of either engine (`GET /runs/{id}`)."""
        return self._call(_Calls.get(run_id))

    def cancel(self, run_id: str) -> Run:
        """Cancel a running run (`POST /runs/{id}/cancel`)."""
        return self._call(_Calls.cancel(run_id))

    def rerun(
        self,
        run_id: str,
        from_step: str | None = None,
        steps: Mapping[str, Mapping[str, Any]] | None = None,
        input_data: Mapping[str, Any] | None = None,
        workflow_id: str | None = None,
        *,
        from_instruction: int | None = None,
        instructions: Mapping[int, Mapping[str, Any]] | None = None,
        context: str | None = None,
    ) -> RerunAccepted:
        """Start a new run of a finished run, reusing the steps that need not run again
        (`POST /runs/{id}/rerun`); follow it by the `workflow_id` answered. A DAG run takes
        `from_step`, `steps`, `input_data`; an instruction run `from_instruction`,
        `instructions` (fields by index) and `context`."""
        request = rerun_request(
            from_step,
            steps,
            input_data,
            workflow_id,
            from_instruction=from_instruction,
            instructions=instructions,
            context=context,
        )
        return self._call(_Calls.rerun(run_id, request))

    def approve(
        self,
        run_id: str,
        step: str,
        *,
        decision: Decision = "approve",
        comment: str | None = None,
        data: Any = None,
    ) -> dict[str, Any]:
        """Decide a waiting approval step (`POST /runs/{id}/steps/{step}/approve`); answers
        `{decision, comment, data, by, at}`. `Conflict` when the step is not waiting,
        `InvalidPayload` when `data` breaks its schema."""
        return self._call(_Calls.approve(run_id, step, decision, comment, data))

    def pause(self, run_id: str) -> Run:
        """Pause a run: it starts no new step (`POST /runs/{id}/pause`)."""
        return self._call(_Calls.pause(run_id, paused=True))

    def resume(self, run_id: str) -> Run:
        """Resume a paused run (`POST /runs/{id}/resume`)."""
        return self._call(_Calls.pause(run_id, paused=False))

    def validate(self, payload: Any, engine: Engine | None = None) -> Plan:
        """Check a payload without running it (`POST /validate`); `InvalidPayload` lists every
        problem."""
        return self._call(_Calls.validate(payload, engine))

    def list(self, status: str | None = None, limit: int = 50) -> RunList:
        """Runs, newest first (`GET /runs`)."""
        return self._call(_Calls.list_runs(status, limit))

    def create_schedule(self, request: ScheduleCreate | Mapping[str, Any]) -> ScheduleView:
        """Create a schedule of a DAG pipeline (`POST /schedules`); `Conflict` if the id is
        taken, `InvalidPayload` listing every problem."""
        return self._call(_Calls.create_schedule(request))

    def list_schedules(self, limit: int = 100) -> ScheduleList:
        """Your schedules (`GET /schedules`)."""
        return self._call(_Calls.list_schedules(limit))

    def get_schedule(self, schedule_id: str) -> ScheduleView:
        """A schedule, its next times and latest runs (`GET /schedules/{id}`)."""
        return self._call(_Calls.get_schedule(schedule_id))

    def pause_schedule(self, schedule_id: str, note: str | None = None) -> ScheduleView:
        """Start no run of the schedule until unpaused; `note` says why."""
        return self._call(_Calls.pause_schedule(schedule_id, True, note))

    def unpause_schedule(self, schedule_id: str, note: str | None = None) -> ScheduleView:
        return self._call(_Calls.pause_schedule(schedule_id, False, note))

    def trigger_schedule(self, schedule_id: str) -> ScheduleView:
        """Start one run of the schedule now."""
        return self._call(_Calls.schedule_action(schedule_id, "trigger"))

    def backfill_schedule(
        self, schedule_id: str, start: datetime, end: datetime, overlap: Overlap | None = None
    ) -> ScheduleView:
        """Start the runs that were due between `start` and `end`."""
        body = BackfillRequest(start=start, end=end, overlap=overlap)
        return self._call(_Calls.schedule_action(schedule_id, "backfill", body))

    def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule; the runs it started are kept."""
        self._call(_Calls.delete_schedule(schedule_id))

    def events(self, run_id: str, after: int | None = None) -> Iterator[RunEvent]:
        """The run's events after sequence `after`, until its `end`, across dropped streams."""
        resume: int | str | None = after
        lost = 0
        while True:
            try:
                with self.http.stream(
                    "GET", f"{run_path(run_id)}/events", headers=_events_headers(resume)
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise problem(response)
                    parser = SseParser()
                    for line in response.iter_lines():
                        event = parser.feed(line)
                        if event is None:
                            continue
                        lost = 0
                        resume = event.cursor or resume
                        yield event
                        if event.event == "end":
                            return
            except httpx.HTTPError as exc:
                failure: Exception = exc
            else:
                failure = GatewayUnreachable("the stream closed before the run's end")
            lost += 1
            if lost > STREAM_RECONNECTS:
                raise GatewayUnreachable(f"event stream of {run_id} lost: {failure}") from failure
            time.sleep(RECONNECT_DELAY_SECONDS * 2 ** (lost - 1))


class AsyncWorkflowStationClient:
    """The gateway's API, for asyncio; the same calls as `WorkflowStationClient`."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url, headers, limits = _settings(base_url, api_key, timeout)
        self.http = httpx.AsyncClient(
            base_url=url, headers=headers, timeout=limits, transport=transport
        )

    async def __aenter__(self) -> AsyncWorkflowStationClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(self, call: Call[T]) -> T:
        try:
            response = await self.http.request(
                call.method, call.path, params=call.params, json=call.json
            )
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(f"no answer from {self.http.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise problem(response)
        return call.read(response.json() if response.content else None)

    async def start(self, pipeline: PipelineRequest | Mapping[str, Any]) -> DagRunResult:
        """Start a DAG pipeline (`POST /execute?wait=false`); its first state."""
        return await self._call(_Calls.start(pipeline))

    async def run(self, pipeline: PipelineRequest | Mapping[str, Any]) -> DagRunResult:
        """Start a DAG pipeline and wait for its end; its final state."""
        started = await self.start(pipeline)
        async for event in self.events(started.workflow_id):
            if event.event == "end":
                break
        return await self._call(_Calls.get_dag(started.workflow_id))

    async def start_instructions(
        self, request: InstructionRunRequest | Mapping[str, Any]
    ) -> InstructionRunView:
        """Start an instruction run (`POST /`); its first state, with its `instance_id`."""
        return await self._call(_Calls.start_instructions(request))

    async def get(self, run_id: str) -> Run:
        """A run of either engine (`GET /runs/{id}`)."""
        return await self._call(_Calls.get(run_id))

    async def cancel(self, run_id: str) -> Run:
        """Cancel a running run (`POST /runs/{id}/cancel`)."""
        return await self._call(_Calls.cancel(run_id))

    async def rerun(
        self,
        run_id: str,
        from_step: str | None = None,
        steps: Mapping[str, Mapping[str, Any]] | None = None,
        input_data: Mapping[str, Any] | None = None,
        workflow_id: str | None = None,
        *,
        from_instruction: int | None = None,
        instructions: Mapping[int, Mapping[str, Any]] | None = None,
        context: str | None = None,
    ) -> RerunAccepted:
        """Start a new run of a finished run, reusing the steps that need not run again
        (`POST /runs/{id}/rerun`); the fields as `WorkflowStationClient.rerun`'s."""
        request = rerun_request(
            from_step,
            steps,
            input_data,
            workflow_id,
            from_instruction=from_instruction,
            instructions=instructions,
            context=context,
        )
        return await self._call(_Calls.rerun(run_id, request))

    async def approve(
        self,
        run_id: str,
        step: str,
        *,
        decision: Decision = "approve",
        comment: str | None = None,
        data: Any = None,
    ) -> dict[str, Any]:
        """Decide a waiting approval step (`POST /runs/{id}/steps/{step}/approve`)."""
        return await self._call(_Calls.approve(run_id, step, decision, comment, data))

    async def pause(self, run_id: str) -> Run:
        """Pause a run: it starts no new step (`POST /runs/{id}/pause`)."""
        return await self._call(_Calls.pause(run_id, paused=True))

    async def resume(self, run_id: str) -> Run:
        """Resume a paused run (`POST /runs/{id}/resume`)."""
        return await self._call(_Calls.pause(run_id, paused=False))

    async def validate(self, payload: Any, engine: Engine | None = None) -> Plan:
        """Check a payload without running it (`POST /validate`)."""
        return await self._call(_Calls.validate(payload, engine))

    async def list(self, status: str | None = None, limit: int = 50) -> RunList:
        """Runs, newest first (`GET /runs`)."""
        return await self._call(_Calls.list_runs(status, limit))

    async def create_schedule(self, request: ScheduleCreate | Mapping[str, Any]) -> ScheduleView:
        """Create a schedule of a DAG pipeline (`POST /schedules`); `Conflict` if the id is
        taken, `InvalidPayload` listing every problem."""
        return await self._call(_Calls.create_schedule(request))

    async def list_schedules(self, limit: int = 100) -> ScheduleList:
        """Your schedules (`GET /schedules`)."""
        return await self._call(_Calls.list_schedules(limit))

    async def get_schedule(self, schedule_id: str) -> ScheduleView:
        """A schedule, its next times and latest runs (`GET /schedules/{id}`)."""
        return await self._call(_Calls.get_schedule(schedule_id))

    async def pause_schedule(self, schedule_id: str, note: str | None = None) -> ScheduleView:
        """Start no run of the schedule until unpaused; `note` says why."""
        return await self._call(_Calls.pause_schedule(schedule_id, True, note))

    async def unpause_schedule(self, schedule_id: str, note: str | None = None) -> ScheduleView:
        return await self._call(_Calls.pause_schedule(schedule_id, False, note))

    async def trigger_schedule(self, schedule_id: str) -> ScheduleView:
        """Start one run of the schedule now."""
        return await self._call(_Calls.schedule_action(schedule_id, "trigger"))

    async def backfill_schedule(
        self, schedule_id: str, start: datetime, end: datetime, overlap: Overlap | None = None
    ) -> ScheduleView:
        """Start the runs that were due between `start` and `end`."""
        body = BackfillRequest(start=start, end=end, overlap=overlap)
        return await self._call(_Calls.schedule_action(schedule_id, "backfill", body))

    async def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule; the runs it started are kept."""
        await self._call(_Calls.delete_schedule(schedule_id))

    async def events(self, run_id: str, after: int | None = None) -> AsyncIterator[RunEvent]:
        """The run's events after sequence `after`, until its `end`, across dropped streams."""
        resume: int | str | None = after
        lost = 0
        while True:
            try:
                async with self.http.stream(
                    "GET", f"{run_path(run_id)}/events", headers=_events_headers(resume)
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise problem(response)
                    parser = SseParser()
                    async for line in response.aiter_lines():
                        event = parser.feed(line)
                        if event is None:
                            continue
                        lost = 0
                        resume = event.cursor or resume
                        yield event
                        if event.event == "end":
                            return
            except httpx.HTTPError as exc:
                failure: Exception = exc
            else:
                failure = GatewayUnreachable("the stream closed before the run's end")
            lost += 1
            if lost > STREAM_RECONNECTS:
                raise GatewayUnreachable(f"event stream of {run_id} lost: {failure}") from failure
            await asyncio.sleep(RECONNECT_DELAY_SECONDS * 2 ** (lost - 1))
