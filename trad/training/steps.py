"""The four weighted steps of a training job and the pure math of its progress.

    progress = 100 · Σ weights of finished steps + weight(current) · step_percentage

Data Collection 25 %, Optimization 50 %, Validation 20 %, Save Configuration 5 %; with
validation off the other weights are scaled to sum to 1. Optimization at 60 % → 25 + 0.5·60 = 55.
The weights are not shares of time: the ETA is a forecast of its own (`trad.training.forecast`).
"""

from __future__ import annotations

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
