"""The one interface of every search: an Optimizer proposes configurations, `run` evaluates them.

`Optimizer.run(evaluate, n_jobs=1, callback=None, already_done=())` evaluates up to
`total_episodes` configurations, each one episode, with `evaluate(params, candle_callback)`
(see `trad.optimize.evaluate.BacktestEvaluator`), `n_jobs` at a time, reporting to the job
callback as `trad.optimize.progress` describes, and returns an OptimizationResult.

- Early stop: once the best score reaches `target_score`, or after `patience` finished
  evaluations in a row without improving the best, no new episode starts; those already
  running finish and are recorded.
- Resume: `already_done` evaluations (e.g. from `training_metrics`) are never computed
  again and count as finished episodes; each optimizer explains how it skips or learns them.
  A resumed run evaluates only what is left of `total_episodes`, and its episodes take the
  numbers not recorded yet, lowest first: an episode a stop cut short (a gap left by
  `n_jobs` > 1) is numbered before new ones, so a finished job holds episodes 1…N.
- Cancellation: when the job callback (or the evaluate function) raises Cancelled, running
  episodes are stopped and `run` RETURNS normally with `cancelled=True`, `best` the best
  evaluation finished so far and every finished evaluation; the caller ends the job
  `stopped`. It does not re-raise.
- Any other error (a worker crash, an evaluation that raises) propagates after the
  workers are shut down.
"""

from __future__ import annotations

import itertools
import math
import numbers
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol

from trad.errors import Cancelled, InvalidInput
from trad.optimize.parallel import Evaluate, Finished, make_runner
from trad.optimize.progress import JobCallback, ProgressTracker
from trad.optimize.space import Constraint, Dimension, config_key, plain

MAX_ITERATIONS = 10_000


@dataclass(frozen=True)
class Evaluation:
    """One episode: a configuration, its score (None: invalid), metrics and backtest time."""

    iteration: int
    params: dict[str, Any]
    score: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0
    valid: bool = True

    def __post_init__(self) -> None:
        score = None if self.score is None else float(self.score)
        if score is not None and not math.isfinite(score):
            score = None
        object.__setattr__(self, "iteration", int(self.iteration))
        object.__setattr__(self, "params", {str(k): plain(v) for k, v in self.params.items()})
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "metrics", {str(k): plain(v) for k, v in self.metrics.items()})
        object.__setattr__(self, "duration_ms", float(self.duration_ms))
        object.__setattr__(self, "valid", score is not None)


@dataclass
class OptimizationResult:
    """What a search found; `stop_reason` is "target_score", "patience", "cancelled" or None."""

    best: Evaluation | None
    evaluations: list[Evaluation]
    stopped_early: bool = False
    cancelled: bool = False
    optimizer_seconds: float = 0.0
    total_episodes: int = 0
    stop_reason: str | None = None


class Proposer(Protocol):
    """The per-run state of an optimizer: what to evaluate next, learning from results."""

    finished_before: int

    def propose(self) -> dict[str, Any] | None:
        """The next configuration, or None when there is nothing more to evaluate."""

    def tell(self, evaluation: Evaluation) -> None:
        """Learn the result of a finished evaluation."""


class ModelFits(Protocol):
    """A proposer whose model is fitted now and then at a cost that grows (Bayesian): what it
    reports so that an ETA can foresee the fits to come."""

    fits: list[tuple[int, float]]  # (results learnt, seconds) of every fit so far

    def planned_fits(self, results: int) -> list[int]:
        """The result counts of the fits still to come before it has learnt `results`."""


class Optimizer(ABC):
    """A search over a space of configurations, with early stop and resume."""

    name: ClassVar[str]

    def __init__(self, space: Sequence[Dimension], *, constraint: Constraint | None = None,
                 target_score: float | None = None, patience: int | None = None) -> None:
        self.space = list(space)
        self.constraint = constraint
        self.target_score = _checked_target(target_score)
        self.patience = _checked_patience(patience)

    @property
    @abstractmethod
    def total_episodes(self) -> int:
        """How many episodes a full run evaluates (resumed ones included)."""

    @abstractmethod
    def proposer(self, already_done: Sequence[Evaluation]) -> Proposer:
        """Fresh per-run state that skips or learns `already_done`."""

    def run(self, evaluate: Evaluate, n_jobs: int = 1, callback: JobCallback | None = None,
            already_done: Sequence[Evaluation] = ()) -> OptimizationResult:
        """Evaluate the search's configurations, `n_jobs` at a time; see the module docstring."""
        return _Search(self, evaluate, n_jobs, callback, list(already_done)).run()


class SequenceProposer:
    """Proposes a fixed list of configurations in order, skipping those already evaluated.

    Every recorded evaluation counts against the list's length, even one the list does not
    hold (e.g. drawn by an unseeded random search before its seed was kept): a resumed run
    evaluates only what is left, so a job never exceeds its budget.
    """

    def __init__(self, configurations: Sequence[dict[str, Any]],
                 already_done: Sequence[Evaluation]) -> None:
        done = {config_key(evaluation.params) for evaluation in already_done}
        todo = [params for params in configurations if config_key(params) not in done]
        self.finished_before = min(len(already_done), len(configurations))
        self._todo = iter(todo[:len(configurations) - self.finished_before])

    def propose(self) -> dict[str, Any] | None:
        """The next configuration not evaluated yet."""
        params = next(self._todo, None)
        return None if params is None else dict(params)

    def tell(self, evaluation: Evaluation) -> None:
        """Nothing to learn: the list is fixed."""


def checked_n_iterations(n_iterations: Any) -> int:
    """`n_iterations` as an int in 1–MAX_ITERATIONS; raises InvalidInput otherwise."""
    if isinstance(n_iterations, bool) or not isinstance(n_iterations, int) \
            or not 1 <= n_iterations <= MAX_ITERATIONS:
        raise InvalidInput.field("n_iterations", f"must be an integer from 1 to {MAX_ITERATIONS}, "
                                                 f"got {n_iterations!r}")
    return n_iterations


def _checked_target(target_score: Any) -> float | None:
    if target_score is None:
        return None
    if not isinstance(target_score, numbers.Real) or isinstance(target_score, bool) \
            or not math.isfinite(target_score):
        raise InvalidInput.field("target_score", f"must be a finite number, got {target_score!r}")
    return float(target_score)


def _checked_patience(patience: Any) -> int | None:
    if patience is None:
        return None
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise InvalidInput.field("patience", f"must be an integer >= 1, got {patience!r}")
    return patience


class SearchRecord:
    """Every finished evaluation, the best one, and whether to stop early."""

    def __init__(self, target_score: float | None, patience: int | None) -> None:
        self.target_score = target_score
        self.patience = patience
        self.evaluations: list[Evaluation] = []
        self.best: Evaluation | None = None
        self.since_improvement = 0

    def add(self, evaluation: Evaluation) -> None:
        """Record a finished evaluation (ties keep the earlier best)."""
        self.evaluations.append(evaluation)
        if evaluation.valid and (self.best is None or evaluation.score > self.best.score):
            self.best = evaluation
            self.since_improvement = 0
        else:
            self.since_improvement += 1

    @property
    def stop_reason(self) -> str | None:
        """"target_score" or "patience" once an early stop is due, else None."""
        if self.target_score is not None and self.best is not None \
                and self.best.score >= self.target_score:
            return "target_score"
        if self.patience is not None and self.since_improvement >= self.patience:
            return "patience"
        return None


class _Search:
    """One run of an optimizer: the loop that proposes, evaluates, learns and reports."""

    def __init__(self, optimizer: Optimizer, evaluate: Evaluate, n_jobs: int,
                 callback: JobCallback | None, already_done: list[Evaluation]) -> None:
        self.optimizer = optimizer
        self.evaluate = evaluate
        self.n_jobs = n_jobs
        self.record = SearchRecord(optimizer.target_score, optimizer.patience)
        for evaluation in sorted(already_done, key=lambda e: e.iteration):
            self.record.add(evaluation)
        self.optimizer_seconds = 0.0
        self.proposer = self._timed(optimizer.proposer, already_done)
        self.tracker = ProgressTracker(callback, optimizer.total_episodes,
                                       self.proposer.finished_before, self._status)
        self.episodes = free_episodes({e.iteration for e in already_done})
        self.params: dict[int, dict[str, Any]] = {}
        self.episode_seconds: dict[int, float] = {}
        self.stop: Cancelled | None = None
        self.model_fits: list[tuple[int, float]] = getattr(self.proposer, "fits", [])
        self._planned: tuple[int, list[int]] = (-1, [])

    def run(self) -> OptimizationResult:
        remaining = max(1, self.optimizer.total_episodes - self.proposer.finished_before)
        cancelled = False
        with make_runner(self.evaluate, min(self.n_jobs, remaining)) as runner:
            try:
                self.tracker.start()
                self._loop(runner)
            except Cancelled:
                cancelled = True
                runner.cancel()
        return self._result(cancelled)

    def _loop(self, runner: Any) -> None:
        exhausted = False
        while True:
            while not exhausted and self.record.stop_reason is None and runner.has_free_slot:
                started = time.perf_counter()
                params = self.proposer.propose()
                seconds = time.perf_counter() - started
                self.optimizer_seconds += seconds
                if params is None:
                    exhausted = True
                    break
                self._submit(runner, params, seconds)
            if not runner.busy:
                return
            runner.collect(self.tracker.candles, self._finish)
            if self.stop is not None:
                raise self.stop
            self.tracker.heartbeat()

    def _submit(self, runner: Any, params: dict[str, Any], seconds: float) -> None:
        episode = next(self.episodes)
        self.params[episode] = params
        self.episode_seconds[episode] = seconds
        self.tracker.episode_started(episode)
        runner.submit(episode, params)

    def _finish(self, finished: Finished) -> None:
        """Record and learn a finished episode and report it. A stop raised by the job callback is
        kept for the loop to raise, so every episode that finished with it is still recorded."""
        evaluation = _as_evaluation(finished, self.params.pop(finished.episode))
        self.record.add(evaluation)
        started = time.perf_counter()
        self.proposer.tell(evaluation)
        told = time.perf_counter() - started
        self.optimizer_seconds += told
        seconds = self.episode_seconds.pop(finished.episode) + told
        try:
            self.tracker.episode_finished(evaluation, seconds)
        except Cancelled as stop:
            self.stop = self.stop or stop

    def _timed(self, function: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args)
        finally:
            self.optimizer_seconds += time.perf_counter() - started

    def _status(self) -> dict[str, Any]:
        best = self.record.best
        return {"best_score": best.score if best else None,
                "best_params": dict(best.params) if best else None,
                "optimizer_seconds": self.optimizer_seconds,
                "model_fits": self.model_fits, "planned_fits": self._planned_fits()}

    def _planned_fits(self) -> list[int]:
        """The model fits still to come (see ModelFits), worked out again only after a fit."""
        if self._planned[0] != len(self.model_fits) and hasattr(self.proposer, "planned_fits"):
            self._planned = (len(self.model_fits), self.proposer.planned_fits(self.optimizer.total_episodes))
        return self._planned[1]

    def _result(self, cancelled: bool) -> OptimizationResult:
        total = self.optimizer.total_episodes
        reason = self.record.stop_reason if self.tracker.finished < total else None
        if cancelled:
            reason = "cancelled"
        return OptimizationResult(
            best=self.record.best,
            evaluations=sorted(self.record.evaluations, key=lambda e: e.iteration),
            stopped_early=reason in ("target_score", "patience"), cancelled=cancelled,
            optimizer_seconds=self.optimizer_seconds, total_episodes=total, stop_reason=reason)


def free_episodes(recorded: set[int]) -> Iterator[int]:
    """Episode numbers not in `recorded`, lowest first: the gaps, then those after the last."""
    last = max(recorded, default=0)
    yield from (episode for episode in range(1, last + 1) if episode not in recorded)
    yield from itertools.count(last + 1)


def _as_evaluation(finished: Finished, params: dict[str, Any]) -> Evaluation:
    """The evaluate function's outcome as the Evaluation of its episode."""
    outcome = finished.outcome
    if isinstance(outcome, Evaluation):
        duration = outcome.duration_ms or finished.duration_ms
        return replace(outcome, iteration=finished.episode, params=params, duration_ms=duration)
    if outcome is None or isinstance(outcome, numbers.Real):
        return Evaluation(finished.episode, params, outcome, {}, finished.duration_ms)
    raise TypeError(f"evaluate must return an Evaluation or a score, got {type(outcome).__name__}")
