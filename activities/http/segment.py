"""The DAG runner's segment activity (`workflows.dag.segment`): many steps of a `fast` run
in one local activity, each attempt made exactly as `call_http` makes it."""

from __future__ import annotations

from temporalio import activity

from activities.http.activities import HttpActivities
from workflows.dag.segment import RUN_SEGMENT, Segment, SegmentReport, run_segment


class SegmentActivities:
    """`RUN_SEGMENT` over the worker's HTTP activities (client, secrets, output writes)."""

    def __init__(self, http: HttpActivities) -> None:
        self._http = http

    @activity.defn(name=RUN_SEGMENT)
    async def run_dag_segment(self, segment: Segment) -> SegmentReport:
        """Run the segment's steps; every step's outcome is in the report, and the activity
        itself fails only on a fault of the worker."""
        return await run_segment(segment, self._http.attempt)
