"""The four weighted steps of a training job and the pure math of its progress and ETA.

    progress = 100 · Σ weights of finished steps + weight(current) · step_percentage

Data Collection 25 %, Optimization 50 %, Validation 20 %, Save Configuration 5 %; with
validation off the other weights are scaled to sum to 1. Optimization at 60 % → 25 + 0.5·60 = 55.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

DATA_COLLECTION = "Data Collection"
OPTIMIZATION = "Optimization"
VALIDATION = "Validation"
SAVE_CONFIGURATION = "Save Configuration"

STEP_WEIGHTS = {DATA_COLLECTION: 0.25, OPTIMIZATION: 0.50, VALIDATION: 0.20, SAVE_CONFIGURATION: 0.05}


@dataclass(frozen=True)
class Step:
    """One step of a job: its 1-based number, name and weight (share of the whole job)."""

    number: int
    name: str
    weight: float


def job_steps(validation: bool) -> tuple[Step, ...]:
    """The steps of a job, weights re-normalised to sum to 1 when validation is off."""
    names = [n for n in STEP_WEIGHTS if validation or n != VALIDATION]
    total = sum(STEP_WEIGHTS[n] for n in names)
    return tuple(Step(i, n, STEP_WEIGHTS[n] / total) for i, n in enumerate(names, start=1))


def step_named(steps: tuple[Step, ...], name: str) -> Step:
    """The step called `name`; KeyError when the job has no such step."""
    for step in steps:
        if step.name == name:
            return step
    raise KeyError(name)


def overall_progress(steps: tuple[Step, ...], current: Step, step_percentage: float) -> float:
    """Job progress 0–100 while `current` is `step_percentage` % done."""
    finished = sum(s.weight for s in steps if s.number < current.number)
    share = min(100.0, max(0.0, step_percentage)) / 100.0
    return min(100.0, 100.0 * (finished + current.weight * share))


class EtaEstimator:
    """Seconds left from the recent rate of progress (a sliding window of samples).

    None until there is enough signal: progress ≥ `min_progress` % and `min_seconds` elapsed.
    """

    def __init__(self, window_seconds: float = 60.0, min_progress: float = 1.0,
                 min_seconds: float = 2.0) -> None:
        self.window_seconds = window_seconds
        self.min_progress = min_progress
        self.min_seconds = min_seconds
        self._samples: deque[tuple[float, float]] = deque()
        self._first: tuple[float, float] | None = None

    def add(self, now: float, progress: float) -> None:
        """Record that the job was `progress` % done at monotonic time `now`."""
        if self._first is None:
            self._first = (now, progress)
        self._samples.append((now, progress))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_seconds:
            self._samples.popleft()

    def eta_seconds(self) -> float | None:
        """Estimated seconds to 100 %, or None while the signal is too weak."""
        if self._first is None:
            return None
        now, progress = self._samples[-1]
        if progress >= 100.0:
            return 0.0
        if progress < self.min_progress or now - self._first[0] < self.min_seconds:
            return None
        then, earlier = self._samples[0]
        if now - then < self.min_seconds or progress <= earlier:
            then, earlier = self._first  # fall back to the average since the first sample
        rate = (progress - earlier) / (now - then) if now > then else 0.0
        if rate <= 0 or not math.isfinite(rate):
            return None
        return (100.0 - progress) / rate
