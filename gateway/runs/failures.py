"""Failure messages of a described run, readable again when the failure converter encoded them.

With payload encryption on, every client's failure converter moves a failure's message and
stack trace into its encrypted attributes (`kernel.codec.with_encryption`), so history holds
`Encoded failure` in their place. Results and query answers come back through the client's
converter, decoded; the pending activities of a describe do not, so the gateway decodes
their last failures here before reading them.
"""

from __future__ import annotations

from temporalio.client import WorkflowExecutionDescription
from temporalio.converter import DataConverter
from temporalio.exceptions import FailureError


async def decode_pending_failures(
    converter: DataConverter, description: WorkflowExecutionDescription
) -> None:
    """Put each pending activity's last failure message back in `description`, in place."""
    for pending in description.raw_description.pending_activities:
        failure = pending.last_failure
        if pending.HasField("last_failure") and failure.HasField("encoded_attributes"):
            error = await converter.decode_failure(failure)
            failure.message = error.message if isinstance(error, FailureError) else str(error)
