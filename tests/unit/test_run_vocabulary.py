"""Both engines report run and step states in the words of `workflows.shared.runs`, which is
the only module that defines them."""

from __future__ import annotations

import ast
from pathlib import Path

from workflows.dag import models as dag
from workflows.instructions import models as instructions
from workflows.shared import runs

ROOT = Path(__file__).resolve().parents[2]
STATE_TYPES = ("StepStatus", "RunState", "DagRunState", "InstructionRunState")


def test_both_engines_steps_report_the_one_step_status() -> None:
    assert dag.StepState.model_fields["status"].annotation is runs.StepStatus
    assert instructions.StepState.model_fields["status"].annotation is runs.StepStatus


def test_each_engines_runs_report_their_state_from_the_shared_module() -> None:
    assert dag.DagRunResult.model_fields["status"].annotation is runs.DagRunState
    assert instructions.InstructionRunStatus.model_fields["status"].annotation is (
        runs.InstructionRunState
    )


def test_state_types_are_defined_in_the_shared_module_only() -> None:
    defined = []
    for package in ("workflows", "activities", "gateway"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "workflows" / "shared" / "runs.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                targets: list[ast.expr] = []
                if isinstance(node, ast.Assign):
                    targets = node.targets
                elif isinstance(node, ast.AnnAssign):
                    targets = [node.target]
                elif isinstance(node, ast.ClassDef) and node.name in STATE_TYPES:
                    defined.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in STATE_TYPES:
                        defined.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert defined == []


def test_the_api_keeps_each_engines_words() -> None:
    # The words clients read: instruction runs keep their seed's, DAG runs their own.
    assert dag.DagRunResult(workflow_id="w", status="completed").status == "completed"
    status = instructions.InstructionRunStatus(status="complete")
    assert status.model_dump(mode="json", by_alias=True)["status"] == "complete"
