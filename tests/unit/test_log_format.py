"""The JSON log line: one object per line, the run's ids as fields, nothing else a record
carries."""

from __future__ import annotations

import json
import logging
import sys

from kernel.telemetry import JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    made = logging.LogRecord(
        "temporalio.activity", logging.WARNING, __file__, 1, "step %s failed", ("b",), None
    )
    made.__dict__.update(extra)
    return made


def test_an_activity_line_names_the_run_step_and_attempt() -> None:
    activity = {
        "activity_id": "step:fetch",
        "activity_type": "call_http",
        "attempt": 2,
        "namespace": "default",
        "task_queue": "workflow-station",
        "workflow_id": "wf-1",
        "workflow_run_id": "run-1",
        "workflow_type": "DagWorkflow",
    }
    line = JsonFormatter().format(record(temporal_activity=activity))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed.pop("time").endswith("+00:00")
    assert parsed == {
        "level": "WARNING",
        "logger": "temporalio.activity",
        "message": "step b failed",
        "workflow_id": "wf-1",
        "run_id": "run-1",
        "activity": "call_http",
        "activity_id": "step:fetch",
        "step": "fetch",
        "attempt": 2,
    }


def test_a_workflow_line_names_the_run() -> None:
    workflow = {"attempt": 1, "workflow_id": "wf-1", "run_id": "run-1", "workflow_type": "Dag"}
    parsed = json.loads(JsonFormatter().format(record(temporal_workflow=workflow)))
    assert (parsed["workflow_id"], parsed["run_id"], parsed["workflow"]) == ("wf-1", "run-1", "Dag")
    assert "step" not in parsed and "attempt" not in parsed


def test_other_attributes_of_a_record_are_not_written() -> None:
    parsed = json.loads(JsonFormatter().format(record(headers={"Authorization": "Bearer k"})))
    assert "Bearer k" not in json.dumps(parsed)


def test_an_exception_is_one_field_of_the_one_line() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        failed = record()
        failed.exc_info = sys.exc_info()
    line = JsonFormatter().format(failed)
    assert len(line.splitlines()) == 1
    assert "ValueError: bad value" in json.loads(line)["exception"]
