"""Running episodes: in this process (n_jobs=1) or over a pool of worker processes.

Both runners have the same surface, so the search loop is the same for both: `submit`
episodes while `has_free_slot`, then `collect` the finished ones; candle reports reach
the search's sink (`on_candles(episode, candles_processed, total_candles, stage)`) in
the parent process either way.

Worker processes receive the evaluate function, the report queue and the cancel event
once, through the pool initializer (with the fork start method nothing is even pickled):
the candles travel once per worker, never per task. A worker's candle callback sends the
first report of each stage and the last of the episode always, others at most every
REPORT_INTERVAL; it raises Cancelled as soon as the cancel event is set, so running
backtests end at once. `cancel()` sets the event, drops queued episodes, gives running
ones CANCEL_GRACE seconds to end and terminates the stragglers. A worker that dies
(BrokenProcessPool) or an evaluation that raises is an error for the caller.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from trad.errors import Cancelled, InvalidInput

CandleCallback = Callable[[int, int, str], None]
"""(candles_processed, total_candles, stage) of one backtest, counted 0 → 2·N."""
CandleSink = Callable[[int, int, int, str], None]
"""(episode, candles_processed, total_candles, stage): candle reports in the parent."""
Evaluate = Callable[[dict[str, Any], CandleCallback], Any]
"""evaluate(params, candle_callback) -> Evaluation, or a score (float | None)."""

REPORT_INTERVAL = 0.1
POLL_INTERVAL = 0.1
CANCEL_GRACE = 1.0
QUEUED_EPISODES = 2


@dataclass(frozen=True)
class Finished:
    """One episode's outcome as the evaluate function returned it, and its wall time."""

    episode: int
    outcome: Any
    duration_ms: float


def make_runner(evaluate: Evaluate, n_jobs: int) -> InProcessRunner | ProcessRunner:
    """An in-process runner for n_jobs=1, a process pool of n_jobs workers otherwise."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise InvalidInput.field("n_jobs", f"must be an integer >= 1, got {n_jobs!r}")
    return InProcessRunner(evaluate) if n_jobs == 1 else ProcessRunner(evaluate, n_jobs)


class InProcessRunner:
    """Runs one episode at a time in this process; candle reports go straight to the sink."""

    def __init__(self, evaluate: Evaluate) -> None:
        self._evaluate = evaluate
        self._queued: list[tuple[int, dict[str, Any]]] = []

    def __enter__(self) -> InProcessRunner:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._queued.clear()

    @property
    def has_free_slot(self) -> bool:
        """Whether another episode may be submitted now."""
        return not self._queued

    @property
    def busy(self) -> bool:
        """Whether an episode is waiting to be collected."""
        return bool(self._queued)

    def submit(self, episode: int, params: dict[str, Any]) -> None:
        """Queue an episode; it runs in the next `collect`."""
        self._queued.append((episode, params))

    def collect(self, on_candles: CandleSink) -> list[Finished]:
        """Run the queued episode here and now."""
        episode, params = self._queued.pop(0)

        def report(processed: int, total: int, stage: str) -> None:
            on_candles(episode, processed, total, stage)

        started = time.perf_counter()
        outcome = self._evaluate(params, report)
        return [Finished(episode, outcome, (time.perf_counter() - started) * 1000)]

    def cancel(self) -> None:
        """Drop the queued episode."""
        self._queued.clear()


class ProcessRunner:
    """Runs episodes over `n_jobs` worker processes, QUEUED_EPISODES more queued so that none waits
    while the parent is busy (a Bayesian model fit takes several backtests' time)."""

    def __init__(self, evaluate: Evaluate, n_jobs: int) -> None:
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        context = multiprocessing.get_context(method)
        self._cancel_event = context.Event()
        self._reports = context.SimpleQueue()
        self._pool = ProcessPoolExecutor(max_workers=n_jobs, mp_context=context,
                                         initializer=_start_worker,
                                         initargs=(evaluate, self._reports, self._cancel_event))
        self._futures: dict[Future, int] = {}
        self._slots = n_jobs + QUEUED_EPISODES

    def __enter__(self) -> ProcessRunner:
        return self

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        if exc_type is None and not self._futures:
            self._pool.shutdown(wait=True)
        else:
            self.cancel()

    @property
    def has_free_slot(self) -> bool:
        """Whether another episode may be submitted now."""
        return len(self._futures) < self._slots

    @property
    def busy(self) -> bool:
        """Whether episodes are running or queued."""
        return bool(self._futures)

    def submit(self, episode: int, params: dict[str, Any]) -> None:
        """Hand an episode to the pool."""
        self._futures[self._pool.submit(_run_episode, episode, params)] = episode

    def collect(self, on_candles: CandleSink) -> list[Finished]:
        """Wait up to POLL_INTERVAL, pass on candle reports, return episodes that finished."""
        done, _ = wait(self._futures, timeout=POLL_INTERVAL, return_when=FIRST_COMPLETED)
        self._drain(on_candles)
        finished = []
        for future in sorted(done, key=self._futures.__getitem__):
            outcome, duration_ms = future.result()
            finished.append(Finished(self._futures.pop(future), outcome, duration_ms))
        return finished

    def cancel(self) -> None:
        """Stop everything: signal workers, drop queued episodes, terminate stragglers."""
        self._cancel_event.set()
        for future in self._futures:
            future.cancel()
        wait([f for f in self._futures if not f.done()], timeout=CANCEL_GRACE)
        self._futures.clear()
        self._drain(None)
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=CANCEL_GRACE)
        self._pool.shutdown(wait=True)

    def _drain(self, on_candles: CandleSink | None) -> None:
        while not self._reports.empty():
            report = self._reports.get()
            if on_candles is not None:
                on_candles(*report)


_worker: dict[str, Any] = {}


def _start_worker(evaluate: Evaluate, reports: Any, cancel_event: Any) -> None:
    """Pool initializer: keep what every episode of this worker needs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _worker.update(evaluate=evaluate, reports=reports, cancel_event=cancel_event)


def _run_episode(episode: int, params: dict[str, Any]) -> tuple[Any, float]:
    """One episode in a worker: its outcome and wall time in ms."""
    cancel_event = _worker["cancel_event"]
    if cancel_event.is_set():
        raise Cancelled("stop requested")
    reporter = _CandleReporter(episode, _worker["reports"], cancel_event)
    started = time.perf_counter()
    outcome = _worker["evaluate"](params, reporter)
    return outcome, (time.perf_counter() - started) * 1000


class _CandleReporter:
    """A worker's candle callback: throttled reports to the parent, Cancelled once stopped."""

    def __init__(self, episode: int, reports: Any, cancel_event: Any) -> None:
        self._episode = episode
        self._reports = reports
        self._cancel_event = cancel_event
        self._stage: str | None = None
        self._last_sent = float("-inf")

    def __call__(self, processed: int, total: int, stage: str) -> None:
        if self._cancel_event.is_set():
            raise Cancelled("stop requested")
        now = time.monotonic()
        if stage != self._stage or processed >= total or now - self._last_sent >= REPORT_INTERVAL:
            self._stage, self._last_sent = stage, now
            self._reports.put((self._episode, processed, total, stage))
