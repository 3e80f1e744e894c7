"""The DAG runner's segment activity: many steps of a `fast` run in one local activity
(`workflows.dag.segment`), each attempt made exactly as `call_http` makes it.

It lives beside the segment logic, not in `activities/`, because it does no I/O of its own:
the worker (the composition root) hands it the HTTP activities' `attempt`, so the activity
layer never imports workflow code. The DAG workflow schedules it by name (`RUN_SEGMENT`) and
never imports this module; it runs in the worker, outside the workflow sandbox.
"""

from __future__ import annotations

from temporalio import activity

from workflows.dag.segment import RUN_SEGMENT, Attempt, Segment, SegmentReport, run_segment


class SegmentActivities:
    """`RUN_SEGMENT` over one attempt of a call (`HttpActivities.attempt` in the worker:
    client, secrets, output writes)."""

    def __init__(self, attempt: Attempt) -> None:
        self._attempt = attempt

    @activity.defn(name=RUN_SEGMENT)
    async def run_dag_segment(self, segment: Segment) -> SegmentReport:
        """Run the segment's steps; every step's outcome is in the report, and the activity
        itself fails only on a fault of the worker."""
        return await run_segment(segment, self._attempt)
