"""Does a worker poll each task queue the gateway starts runs on? The readiness check.

Temporal lists a queue's pollers (`DescribeTaskQueue`) with the time each last asked for a
task, but a worker that stops is not taken off that list: its entry stays for minutes,
ageing from its last poll. Measured on the dev server (Server 1.32, SDK 1.35): a live, idle
worker's entry is refreshed about every 60 s (a long poll's length), and a worker shut down
gracefully stays listed just the same. What tells a stopped worker within seconds is its own
word: on shutdown the SDK sends Temporal the worker's last heartbeat, status
`SHUTTING_DOWN`, which `ListWorkers` returns at once. So a queue's task type is served when
one of its pollers

- asked for a task within `POLLER_STALE_SECONDS` (a live worker asks at least every ~60 s),
- and has not reported stopping since.

A worker killed outright (SIGKILL, out of memory) reports nothing: its queue shows as
unserved `POLLER_STALE_SECONDS` after its last poll. A server without `ListWorkers` (or a
namespace that does not allow it) leaves the pollers' age alone to decide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType, WorkerStatus
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, ListWorkersRequest
from temporalio.client import Client
from temporalio.service import RPCError

#: A poller that has not asked for a task for this long is gone. A live worker's long poll
#: lasts up to a minute before it asks again; the rest is slack for a loaded server.
POLLER_STALE_SECONDS = 90.0
#: The task types every queue the gateway starts runs on needs a worker for: the main queue
#: runs workflows and their activities, an endpoint queue its call workflow and the call.
TASK_TYPES = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}
#: What a worker reports when it shuts down.
STOPPING = frozenset(
    {WorkerStatus.WORKER_STATUS_SHUTTING_DOWN, WorkerStatus.WORKER_STATUS_SHUTDOWN}
)
#: Pages of `ListWorkers` read per queue at most: enough for every worker a queue has had
#: lately, bounded so one probe stays cheap.
MAX_WORKER_PAGES = 5


async def unserved_task_types(client: Client, queue: str) -> list[str]:
    """The task types of `queue` (`workflow`, `activity`) that no live worker polls."""
    requests = [
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=kind,
        )
        for kind in TASK_TYPES.values()
    ]
    described = await asyncio.gather(
        *(client.workflow_service.describe_task_queue(request) for request in requests)
    )
    # After the pollers: a worker that stops between the two answers is then seen stopping.
    stopped = await stopped_workers(client, queue)
    now = datetime.now(UTC)
    return [
        name
        for name, answer in zip(TASK_TYPES, described, strict=True)
        if not any(is_live(poller, stopped, now) for poller in answer.pollers)
    ]


def is_live(poller: PollerInfo, stopped: dict[str, datetime], now: datetime) -> bool:
    """Whether `poller` still polls: it polled lately and its worker has not said it stopped
    since (a worker started again under the same identity polls after its old self stopped)."""
    last_poll = poller.last_access_time.ToDatetime(tzinfo=UTC)
    if now - last_poll > timedelta(seconds=POLLER_STALE_SECONDS):
        return False
    stopped_at = stopped.get(poller.identity)
    return stopped_at is None or last_poll > stopped_at


async def stopped_workers(client: Client, queue: str) -> dict[str, datetime]:
    """When each worker identity on `queue` last reported stopping; empty where the server
    does not answer `ListWorkers`."""
    stopped: dict[str, datetime] = {}
    token = b""
    for _ in range(MAX_WORKER_PAGES):
        try:
            page = await client.workflow_service.list_workers(
                ListWorkersRequest(
                    namespace=client.namespace,
                    query=f"TaskQueue = '{queue}'",
                    next_page_token=token,
                )
            )
        except RPCError:
            return stopped
        for info in page.workers_info:
            beat = info.worker_heartbeat
            if beat.status in STOPPING:
                at = beat.heartbeat_time.ToDatetime(tzinfo=UTC)
                stopped[beat.worker_identity] = max(at, stopped.get(beat.worker_identity, at))
        token = page.next_page_token
        if not token:
            break
    return stopped


async def unserved_queues(client: Client, queues: Sequence[str]) -> dict[str, list[str]]:
    """Each of `queues` with the task types no live worker polls (an empty list: served)."""
    answers = await asyncio.gather(*(unserved_task_types(client, queue) for queue in queues))
    return dict(zip(queues, answers, strict=True))
