"""How a failed call is described in a run's status (`workflows.shared.failures`)."""

from temporalio.exceptions import ApplicationError

from workflows.shared.failures import activity_failure


def test_a_local_activity_failure_names_its_step_once():
    """A local activity's failure reaches the workflow without an ActivityError around it:
    the step's label is added when the message lacks it, never twice (a mapped step's item
    errors read `step 'each': step 'each': ...` before)."""
    labelled = ApplicationError("step 'each': POST http://x answered 503", type="HttpUnavailable")
    bare = ApplicationError("connection reset by Redis", type="StoreUnavailable")

    assert activity_failure(labelled, 1, "step 'each'").message == (
        "step 'each': POST http://x answered 503"
    )
    assert activity_failure(bare, 1, "step 'each'").message == (
        "step 'each': connection reset by Redis"
    )
