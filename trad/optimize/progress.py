"""Optimization progress as the job callback sees it, computed in the parent process only.

The job callback is `callback(iteration, total, score, metadata)`:
    iteration   episodes finished so far (resumed ones included)
    total       episodes planned (Optimizer.total_episodes)
    score       score of the latest finished episode (None: invalid, or none finished yet)
    metadata    {
        "progress":            (finished + Σ fraction of episodes in flight) / total, 0–1,
                               never decreasing — the Optimization step's percentage / 100
        "episode":             the episode the candle fields below describe (None before any)
        "candles_processed":   candles of that episode's backtest done, counted 0 → 2·N
        "total_candles":       2·N: N candles of signal generation, then N of trade simulation
        "stage":               "signals" or "trades" (None before any candle report)
        "episode_progress":    candles_processed / total_candles of that episode, 0–1
        "in_flight":           [{"episode", "episode_progress", "candles_processed",
                                 "total_candles", "stage"}] for every running episode
        "best_score", "best_params":  best valid evaluation so far (None before one)
        "evaluation":          the Evaluation that just finished, else None (record it)
        "optimizer_seconds":   the optimizer's own time so far (proposing and learning)
        "episode_optimizer_seconds":  its time spent on the episode that just finished
        "model_fits":          [(results, seconds)] of every model fit so far (Bayesian; else [])
        "planned_fits":        the result counts of the model fits still to come (Bayesian; else [])
    }
Calls driven by candle reports are throttled to one per CALL_INTERVAL; every finished
episode makes a call; while waiting, a call is made at least every HEARTBEAT_INTERVAL so
a callback that checks for a stop request gets the chance to raise Cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

JobCallback = Callable[[int, int, "float | None", dict[str, Any]], None]

CALL_INTERVAL = 0.1
HEARTBEAT_INTERVAL = 0.5


@dataclass
class EpisodeProgress:
    """How far one running episode's backtest has got, in candles (0 → 2·N)."""

    episode: int
    candles_processed: int = 0
    total_candles: int = 0
    stage: str | None = None

    @property
    def fraction(self) -> float:
        """Share of the episode's candle work done, 0–1."""
        if self.total_candles <= 0:
            return 0.0
        return min(1.0, max(0.0, self.candles_processed / self.total_candles))

    def as_dict(self) -> dict[str, Any]:
        """The in-flight entry of the metadata."""
        return {"episode": self.episode, "episode_progress": self.fraction,
                "candles_processed": self.candles_processed,
                "total_candles": self.total_candles, "stage": self.stage}


class ProgressTracker:
    """Counts finished and in-flight episodes and calls the job callback, throttled."""

    def __init__(self, callback: JobCallback | None, total: int, finished: int,
                 status: Callable[[], dict[str, Any]]) -> None:
        self.callback = callback
        self.total = total
        self.finished = finished
        self.status = status
        self.score: float | None = None
        self.in_flight: dict[int, EpisodeProgress] = {}
        self.current = EpisodeProgress(episode=0)
        self._progress = 0.0
        self._last_call = float("-inf")

    def start(self) -> None:
        """The first call: totals are known before any episode runs."""
        self._call()

    def episode_started(self, episode: int) -> None:
        """An episode was handed to a worker."""
        self.in_flight[episode] = EpisodeProgress(episode)

    def candles(self, episode: int, processed: int, total: int, stage: str) -> None:
        """A candle report of a running episode; reports of finished episodes are dropped."""
        progress = self.in_flight.get(episode)
        if progress is None or processed < progress.candles_processed:
            return
        progress.candles_processed, progress.total_candles, progress.stage = processed, total, stage
        self.current = progress
        if time.monotonic() - self._last_call >= CALL_INTERVAL:
            self._call()

    def episode_finished(self, evaluation: Any, optimizer_seconds: float) -> None:
        """An episode finished: always reported, with its Evaluation."""
        progress = self.in_flight.pop(evaluation.iteration, None) or EpisodeProgress(evaluation.iteration)
        if progress.total_candles:
            progress.candles_processed = progress.total_candles
        self.current = progress
        self.finished = min(self.total, self.finished + 1)
        self.score = evaluation.score
        self._call(evaluation=evaluation, episode_optimizer_seconds=optimizer_seconds)

    def heartbeat(self) -> None:
        """Call the callback if it has not been called for HEARTBEAT_INTERVAL."""
        if time.monotonic() - self._last_call >= HEARTBEAT_INTERVAL:
            self._call()

    def progress(self) -> float:
        """(finished + Σ in-flight fractions) / total, clamped to never decrease."""
        if self.total <= 0:
            return 1.0
        running = sum(p.fraction for p in self.in_flight.values())
        self._progress = max(self._progress, min(1.0, (self.finished + running) / self.total))
        return self._progress

    def _call(self, evaluation: Any = None, episode_optimizer_seconds: float | None = None) -> None:
        self._last_call = time.monotonic()
        if self.callback is None:
            return
        current = self.current
        metadata = {
            "progress": self.progress(),
            "episode": current.episode or None,
            "candles_processed": current.candles_processed,
            "total_candles": current.total_candles,
            "stage": current.stage,
            "episode_progress": 1.0 if evaluation is not None else current.fraction,
            "in_flight": [self.in_flight[e].as_dict() for e in sorted(self.in_flight)],
            "evaluation": evaluation,
            "episode_optimizer_seconds": episode_optimizer_seconds,
            **self.status(),
        }
        self.callback(self.finished, self.total, self.score, metadata)
