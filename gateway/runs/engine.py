"""What differs between the engines when a run is read back: `RunEngine`.

`RunStatusService` (`gateway.runs.service`) reads every run the same way and asks the run's
`RunEngine` only what it cannot know: how the engine's answer is shaped, what a run no worker
has picked up reports, and which state a run Temporal closed is in. One adapter per engine:
`gateway.runs.dag.DAG_RUNS` and `gateway.runs.instructions.INSTRUCTION_RUNS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus

#: A query is answered by a worker in milliseconds; waiting longer only hides a missing worker.
STATUS_QUERY_TIMEOUT = timedelta(seconds=10)
#: Started, task scheduled, task started, task completed: from then on the run can be queried.
FIRST_TASK_DONE_EVENTS = 4
FINISHED = (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.FAILED)

AnswerT = TypeVar("AnswerT", bound=BaseModel)
InputT = TypeVar("InputT", bound=BaseModel)
StateT = TypeVar("StateT", bound=str)


class StatusWorkflow(Protocol):
    """A workflow the gateway can read: started by `run`, answering `get_status` meanwhile."""

    async def run(self, run: Any) -> Any: ...

    def get_status(self) -> Any: ...


class RunEngine(ABC, Generic[AnswerT, InputT, StateT]):
    """What reading one engine's runs needs to know; `RunStatusService` does the rest."""

    #: Its type name tells the engines' runs apart; `run` and `get_status` give the typed
    #: handle and the status query.
    workflow: type[StatusWorkflow]
    #: What its runs are called, for the 409 when a run of another kind holds the id.
    kind: str
    #: The input its runs start with, read back while no worker has picked a run up.
    input_model: type[InputT]
    #: The state of a run Temporal closed other than by completing or failing it.
    closed_status: Mapping[WorkflowExecutionStatus, StateT]
    #: Whether a running run whose query no worker answers is a 503 (else: read from its input).
    needs_worker: bool = False

    @property
    def workflow_type(self) -> str:
        return self.workflow.__name__

    @abstractmethod
    def answer(self, workflow_id: str, status: Any) -> AnswerT:
        """A result, query answer or failure detail as the gateway answers it."""

    @abstractmethod
    def queued(self, workflow_id: str, run_id: str, run: InputT | None) -> BaseModel:
        """The status a run no worker has picked up would report: every step of its input
        pending (as its `get_status` query answers, so `answer` takes it)."""

    def pending(self, workflow_id: str, run_id: str, run: InputT | None) -> AnswerT:
        """A run no worker has picked up, as the gateway answers it."""
        return self.answer(workflow_id, self.queued(workflow_id, run_id, run))

    @abstractmethod
    def failed(
        self, workflow_id: str, run_id: str | None, error_type: str, message: str, cancelled: bool
    ) -> AnswerT:
        """A run whose failure carries no status: the error alone."""

    @abstractmethod
    def close(self, answer: AnswerT, state: StateT) -> None:
        """Put the state Temporal closed the run in over the status it last reported."""

    def add_live_state(self, answer: AnswerT, description: WorkflowExecutionDescription) -> None:
        """Add what only Temporal knows while the run goes on; nothing unless overridden."""
