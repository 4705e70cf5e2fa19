"""A ProgressSink that keeps a run's reports in memory, and a candle loader over a frame."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping

import pandas as pd

from trad.errors import Cancelled
from trad.optimize import Evaluation
from trad.training.results import TrainedConfiguration


class MemorySink:
    """What the workflow reported: steps, evaluations, log lines and the end.

    With `stop_after`, every report once that many evaluations finished raises Cancelled,
    as JobProgress does when a stop was requested.
    """

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.steps: list[tuple[str, dict[str, Any]]] = []
        self.percentages: list[float] = []
        self.evaluations: list[Evaluation] = []
        self.logs: list[tuple[str, str]] = []
        self.planned: tuple[int, float] | None = None
        self.status = "queued"
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.trained: TrainedConfiguration | None = None

    def start(self, message: str) -> None:
        self.status = "running"
        self.log(message)

    def enter_step(self, name: str, details: Mapping[str, Any] | None = None) -> None:
        self.steps.append((name, dict(details or {})))
        self._check_stop()

    def plan(self, processes: int, validation_work: float, save_work: float) -> None:
        self.planned = (processes, validation_work, save_work)

    def step_progress(self, percentage: float, details: Mapping[str, Any] | None = None) -> None:
        self.percentages.append(percentage)
        self._check_stop()

    def __call__(self, iteration: int, total: int, score: float | None, metadata: Mapping[str, Any]) -> None:
        if metadata.get("evaluation") is not None:
            self.evaluations.append(metadata["evaluation"])
        self.step_progress(100.0 * float(metadata.get("progress", 0.0)))

    def candles(self, processed: int, total: int, stage: str, step_percentage: float,
                details: Mapping[str, Any] | None = None) -> None:
        self.step_progress(step_percentage, details)

    def log(self, message: str, level: str = "INFO") -> None:
        self.logs.append((level.upper(), message))

    def finish(self, status: str, *, result: Mapping[str, Any] | None = None, error: str | None = None,
               trained: TrainedConfiguration | None = None) -> None:
        self.status, self.error, self.trained = status, error, trained
        self.result = dict(result) if result is not None else None

    @property
    def step_names(self) -> list[str]:
        return [name for name, _ in self.steps]

    def lines(self, level: str) -> list[str]:
        return [message for line_level, message in self.logs if line_level == level]

    def _check_stop(self) -> None:
        if self.stop_after is not None and len(self.evaluations) >= self.stop_after:
            raise Cancelled("stop requested")


def candles_from(frame: pd.DataFrame) -> Callable[..., pd.DataFrame]:
    """A candle loader over `frame`: the rows from start to end (both included), in two chunks."""

    def load(symbol: str, timeframe: str, start: datetime | None, end: datetime | None,
             loaded: Callable[[int, int], None]) -> pd.DataFrame:
        rows = frame
        if start is not None:
            rows = rows[rows["timestamp"] >= pd.Timestamp(start)]
        if end is not None:
            rows = rows[rows["timestamp"] <= pd.Timestamp(end)]
        rows = rows.reset_index(drop=True)
        loaded(len(rows) // 2, len(rows))
        loaded(len(rows), len(rows))
        return rows

    return load
