"""Readers of one run share one read: `StatusReads`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from gateway.runs.instructions import InstructionRunView
from workflows.dag.models import DagRunResult

#: A run of either engine, as `GET /runs/{workflow_id}` answers it.
RunAnswer = DagRunResult | InstructionRunView


class StatusReads:
    """Reads of runs' status under way in the gateway process: readers of a run that is
    being read wait for that read and get its answer, which is no older than one of their own
    would be. A dashboard's many viewers then cost one read, not one each. Keyed by the
    Temporal workflow id, which names the tenant (`Tenant.workflow_id`): tenants never share
    a read.
    """

    def __init__(self) -> None:
        self._reading: dict[str, asyncio.Future[RunAnswer]] = {}

    async def shared(self, key: str, read: Callable[[], Awaitable[RunAnswer]]) -> RunAnswer:
        """`read()`'s answer, or that of the read of `key` already under way."""
        while (reading := self._reading.get(key)) is not None:
            try:
                return await asyncio.shield(reading)
            except asyncio.CancelledError:
                if not reading.cancelled():
                    raise  # this reader was cancelled
                # The reader it waited for was (its client went away): read anew.
        future: asyncio.Future[RunAnswer] = asyncio.get_running_loop().create_future()
        self._reading[key] = future
        try:
            answer = await read()
        except Exception as exc:
            future.set_exception(exc)
            # Retrieved here, so a read no one else waited for logs no "never retrieved".
            future.exception()
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(answer)
            return answer
        finally:
            del self._reading[key]
