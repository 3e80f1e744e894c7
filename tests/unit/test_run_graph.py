"""What the run page draws of a run (`gateway.runs.graph`), from the input it was started
with: a DAG's levels and dependencies, an instruction queue's jumps, each step's request."""

from __future__ import annotations

from gateway.runs.graph import RunGraph, instruction_graph, step_request
from workflows.dag.models import DagRunInput, StepConfig
from workflows.dag.plan import plan_pipeline
from workflows.instructions.models import InstructionRunInput


def test_an_instruction_graph_is_its_queue_with_the_jumps_its_conditions_may_take() -> None:
    run = InstructionRunInput.model_validate(
        {
            "context": "ctx",
            "instructions": [
                {
                    "instruction": "Is it about billing?",
                    "condition": {"expression": "result contains 'yes'", "ifTrue": [2]},
                },
                {"type": "endpoint", "apiUrl": "https://api.example.com/x?token=abc"},
                {"expression": "result is empty", "ifTrue": [1], "ifFalse": [3]},
                "Answer the customer",
            ],
        }
    )
    graph = instruction_graph(run)
    assert graph.engine == "instructions"
    assert graph.levels == [["0"], ["1"], ["2"], ["3"]]
    assert [(s.name, s.type, s.dependencies) for s in graph.steps] == [
        ("0", "llm", []),
        ("1", "endpoint", ["0"]),
        ("2", "condition", ["1"]),
        ("3", "llm", ["2"]),
    ]
    assert graph.jumps == {"0": ["2"], "2": ["1", "3"]}
    # A URL's query values are not shown (they may be tokens), as in every message we write.
    assert graph.requests == {
        "0": "Is it about billing?",
        "1": "https://api.example.com/x?token=***",
        "2": "condition",
        "3": "Answer the customer",
    }


def test_a_dag_steps_request_says_its_call_model_or_child_run() -> None:
    def step(**fields: object) -> StepConfig:
        return StepConfig.model_validate({"step_name": "s", "usid": "u", **fields})

    http = step(service_url="https://api.example.com/orders/{{id}}?key=secret", method="POST")
    assert step_request(http) == "POST https://api.example.com/orders/{{id}}?key=***"
    llm = step(type="llm", llm={"provider": "openai", "model": "gpt-5-nano", "prompt": "Hi " * 99})
    assert step_request(llm) == "openai/gpt-5-nano: " + ("Hi " * 99)[:160]
    child = step(type="instructions", instructions={"context": "c", "instructions": ["a", "b"]})
    assert step_request(child) == "instruction run of 2 instructions"
    approval = step(type="approval", approval={"message": "Publish?"})
    assert step_request(approval) == "approval: Publish?"


def test_a_dag_graph_is_the_plan_validate_answers() -> None:
    run = DagRunInput.model_validate(
        {
            "workflow_id": "w",
            "STEPS_CONFIG": [
                {"step_name": "a", "usid": "1", "service_url": "https://x.test/a"},
                {"step_name": "b", "usid": "2", "service_url": "https://x.test/b"},
                {
                    "step_name": "c",
                    "usid": "3",
                    "service_url": "https://x.test/c",
                    "dependencies": ["a", "b"],
                },
            ],
        }
    )
    graph = RunGraph(**dict(plan_pipeline(run)))
    assert graph.levels == [["a", "b"], ["c"]]
    assert {s.name: s.dependencies for s in graph.steps} == {"a": [], "b": [], "c": ["a", "b"]}
    assert graph.jumps == {}
