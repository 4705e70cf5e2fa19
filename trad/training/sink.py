"""Where a training job's progress goes: what the workflow reports, not how it is kept.

`trad.jobs.progress.JobProgress` writes it to the job's row; the workflow's tests keep it in
memory. Any report may raise `trad.errors.Cancelled` (a stop was requested): the run then ends
`stopped`. The sink also hears the job's end, and keeps the trained configuration with it.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

from trad.training.results import TrainedConfiguration


class ProgressSink(Protocol):
    """The reports of one run of a training job, in the order the workflow makes them."""

    def start(self, message: str) -> None:
        """The run began."""

    def enter_step(self, name: str, details: Mapping[str, Any] | None = None) -> None:
        """Step `name` (trad.training.steps) begins; the previous ones are finished."""

    def plan(self, processes: int, validation_work: float, save_work: float) -> None:
        """For the ETA: the processes that run episodes, and validation's and saving's work in candles."""

    def step_progress(self, percentage: float, details: Mapping[str, Any] | None = None) -> None:
        """The current step is `percentage` % done."""

    def __call__(self, iteration: int, total: int, score: float | None, metadata: Mapping[str, Any]) -> None:
        """The optimizer's job callback (trad.optimize.progress): episodes, scores, candles."""

    def candles(self, processed: int, total: int, stage: str, step_percentage: float,
                details: Mapping[str, Any] | None = None) -> None:
        """Candle progress of a backtest outside the search (a validation fold)."""

    def log(self, message: str, level: str = "INFO") -> None:
        """A line of the job's log."""

    def finish(self, status: str, *, result: Mapping[str, Any] | None = None, error: str | None = None,
               trained: TrainedConfiguration | None = None) -> None:
        """The run ended `succeeded` (with `trained`), `stopped` or `failed`; kept whatever it takes."""
