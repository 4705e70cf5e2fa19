"""Running episodes: in this process (n_jobs=1), or in this process and n_jobs − 1 workers.

Both runners have the same surface, so the search loop is the same for both: `submit`
episodes while `has_free_slot`, then `collect`, which hands each finished episode to the
search's `on_finished` and candle reports to its `on_candles(episode, candles_processed,
total_candles, stage)`, in the parent process either way.

Each worker process gets the evaluate function and the cancel event once, at start (with
the fork start method nothing is even pickled): the candles travel once per worker, never
per episode. Episodes, candle reports and outcomes travel over one pipe per worker, with no
helper threads, so the parent's work per episode is one send and one receive. A worker's
candle callback raises Cancelled as soon as the cancel event is set, so running backtests
end at once. `cancel()` sets the event, drops queued episodes, gives running ones
CANCEL_GRACE seconds to end and terminates the stragglers. A worker that dies
(BrokenProcessPool) or an evaluation that raises is an error for the caller.

With n_jobs=2 one worker is forked, not two: the parent runs an episode itself whenever the
workers' pipes are full, instead of sleeping in `wait` while they work. This saves a fork
per run and keeps every core busy without a third process competing for them; the gain is
largest for the Bayesian search, whose parent has model work of its own (at 10k candles its
n_jobs=2 run went from 0.85× to 0.94–1.00× of n_jobs=1, and grid from 1.47–1.50× to
1.54–1.61×). A local episode is cancelled like one at n_jobs=1: by its candle callback.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from trad.errors import Cancelled, InvalidInput
from trad.strategies.progress import CandleCallback

CandleSink = Callable[[int, int, int, str], None]
"""(episode, candles_processed, total_candles, stage): candle reports in the parent."""
FinishedSink = Callable[["Finished"], None]
"""Receives each finished episode in the parent."""
Evaluate = Callable[[dict[str, Any], CandleCallback], Any]
"""evaluate(params, candle_callback) -> Evaluation, or a score (float | None)."""

REPORT_INTERVAL = 0.1
DRAIN_INTERVAL = 0.05
POLL_INTERVAL = 0.1
CANCEL_GRACE = 1.0
QUEUED_EPISODES = 2
ORPHAN_CHECK_INTERVAL = 1.0


@dataclass(frozen=True)
class Finished:
    """One episode's outcome as the evaluate function returned it, and its wall time."""

    episode: int
    outcome: Any
    duration_ms: float


def make_runner(evaluate: Evaluate, n_jobs: int) -> InProcessRunner | ProcessRunner:
    """An in-process runner for n_jobs=1; otherwise n_jobs − 1 worker processes, with this process
    running episodes too."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise InvalidInput.field("n_jobs", f"must be an integer >= 1, got {n_jobs!r}")
    return InProcessRunner(evaluate) if n_jobs == 1 else ProcessRunner(evaluate, n_jobs - 1, local=True)


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

    def collect(self, on_candles: CandleSink, on_finished: FinishedSink) -> None:
        """Run the queued episode here and now."""
        episode, params = self._queued.pop(0)

        def report(processed: int, total: int, stage: str) -> None:
            on_candles(episode, processed, total, stage)

        started = time.perf_counter()
        outcome = self._evaluate(params, report)
        on_finished(Finished(episode, outcome, (time.perf_counter() - started) * 1000))

    def cancel(self) -> None:
        """Drop the queued episode."""
        self._queued.clear()


class ProcessRunner:
    """Runs episodes over `n_workers` worker processes, each fed through its own pipe, and in
    this process too when `local` (one episode at a time, once the workers' pipes are full).

    Up to QUEUED_EPISODES episodes wait beyond the running ones, in the pipes of the least
    busy workers, so that a worker starts its next episode without a round trip to the
    parent and none waits while the parent is busy (a Bayesian model fit takes several
    backtests' time, and so does a local episode). The parent wakes once per finished
    episode, plus once per candle report of an episode longer than REPORT_INTERVAL.

    While a local episode runs, its candle callback also passes on the workers' candle
    reports and finished episodes, every DRAIN_INTERVAL: the bar keeps moving, finished
    episodes are counted and recorded at once, and a stop can be seen and raised meanwhile.
    New episodes are proposed only between local ones, so a local episode far longer than the
    workers' queued ones (rare among backtests of one strategy on one series) idles them.
    """

    def __init__(self, evaluate: Evaluate, n_workers: int, local: bool = False) -> None:
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        context = multiprocessing.get_context(method)
        self._evaluate = evaluate
        self._cancel_event = context.Event()
        self._workers = [_WorkerProcess(context, evaluate, self._cancel_event) for _ in range(n_workers)]
        self._slots = n_workers + QUEUED_EPISODES
        self._local = local
        self._local_episode: tuple[int, dict[str, Any]] | None = None
        self._closed = False

    def __enter__(self) -> ProcessRunner:
        return self

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        if exc_type is None and not self.busy:
            self._shut_down()
        else:
            self.cancel()

    @property
    def _workers_full(self) -> bool:
        return sum(len(worker.episodes) for worker in self._workers) >= self._slots

    @property
    def has_free_slot(self) -> bool:
        """Whether another episode may be submitted now."""
        return not self._workers_full or (self._local and self._local_episode is None)

    @property
    def busy(self) -> bool:
        """Whether episodes are running or queued."""
        return self._local_episode is not None \
            or any(worker.episodes for worker in self._workers)

    def submit(self, episode: int, params: dict[str, Any]) -> None:
        """Queue an episode in the pipe of the worker with the fewest episodes; in this process
        once the workers' pipes are full."""
        if self._workers_full and self._local:
            self._local_episode = (episode, params)
            return
        worker = min(self._workers, key=lambda w: len(w.episodes))
        worker.send(episode, params)

    def collect(self, on_candles: CandleSink, on_finished: FinishedSink) -> None:
        """Run this process's episode if it has one, else wait up to POLL_INTERVAL for the workers;
        pass on their candle reports and finished episodes."""
        if self._local_episode is None:
            self._receive_ready(on_candles, on_finished, timeout=POLL_INTERVAL)
            return
        (episode, params), self._local_episode = self._local_episode, None
        next_drain = time.monotonic() + DRAIN_INTERVAL

        def report(processed: int, total: int, stage: str) -> None:
            nonlocal next_drain
            on_candles(episode, processed, total, stage)
            if time.monotonic() >= next_drain:
                self._receive_ready(on_candles, on_finished, timeout=0)
                next_drain = time.monotonic() + DRAIN_INTERVAL

        started = time.perf_counter()
        outcome = self._evaluate(params, report)
        on_finished(Finished(episode, outcome, (time.perf_counter() - started) * 1000))
        self._receive_ready(on_candles, on_finished, timeout=0)

    def _receive_ready(self, on_candles: CandleSink, on_finished: FinishedSink, timeout: float) -> None:
        busy = {worker.connection: worker for worker in self._workers if worker.episodes}
        if not busy:
            return
        finished: list[Finished] = []
        stops = []
        for connection in multiprocessing.connection.wait(list(busy), timeout=timeout):
            outcomes, stop = busy[connection].receive(on_candles)
            finished.extend(outcomes)
            stops.append(stop)
        for one in sorted(finished, key=lambda f: f.episode):
            on_finished(one)
        for stop in stops:
            if stop is not None:
                raise stop

    def cancel(self) -> None:
        """Stop everything: signal workers, drop queued episodes, terminate stragglers."""
        self._local_episode = None
        self._cancel_event.set()
        self._shut_down()

    def _shut_down(self) -> None:
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            worker.stop()
        deadline = time.monotonic() + CANCEL_GRACE
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(CANCEL_GRACE)
            worker.connection.close()
            worker.episodes.clear()


class _WorkerProcess:
    """The parent's end of one worker: its process, pipe and the episodes sent to it."""

    def __init__(self, context: Any, evaluate: Evaluate, cancel_event: Any) -> None:
        self.connection, child_end = context.Pipe(duplex=True)
        self.process = context.Process(target=_work, daemon=True,
                                       args=(child_end, evaluate, cancel_event, os.getpid()))
        self.process.start()
        child_end.close()
        self.episodes: list[int] = []

    def send(self, episode: int, params: dict[str, Any]) -> None:
        try:
            self.connection.send((episode, params))
        except OSError as exc:
            raise self._died(episode) from exc
        self.episodes.append(episode)

    def receive(self, on_candles: CandleSink) -> tuple[list[Finished], Cancelled | None]:
        """Every message waiting in the pipe: candle reports go to the sink, outcomes are returned.
        A stop raised by the sink is returned too, after the outcomes, so none is dropped."""
        finished: list[Finished] = []
        stop: Cancelled | None = None

        def report(episode: int, *candles: Any) -> None:
            nonlocal stop
            if stop is None:
                try:
                    on_candles(episode, *candles)
                except Cancelled as cancelled:
                    stop = cancelled

        try:
            while self.episodes and self.connection.poll():
                kind, episode, *body = self.connection.recv()
                if kind == "candles":
                    report(episode, *body)
                    continue
                self.episodes.remove(episode)
                if kind == "error":
                    error, remote_traceback = body
                    raise error from RemoteTraceback(remote_traceback)
                outcome, duration_ms, last_report = body
                if last_report is not None:
                    report(episode, *last_report)
                finished.append(Finished(episode, outcome, duration_ms))
        except (EOFError, OSError) as exc:
            raise self._died(self.episodes[0] if self.episodes else None) from exc
        return finished, stop

    def stop(self) -> None:
        """Ask the worker to exit once it is idle."""
        try:
            self.connection.send(None)
        except OSError:
            pass

    def _died(self, episode: int | None) -> BrokenProcessPool:
        self.process.join(CANCEL_GRACE)
        return BrokenProcessPool(f"a worker process ended (exit code {self.process.exitcode}) "
                                 f"while evaluating episode {episode}")


class RemoteTraceback(Exception):
    """The traceback of an error raised in a worker process, attached as its cause."""

    def __str__(self) -> str:
        return f'\n"""\n{self.args[0]}"""'


def _work(connection: Any, evaluate: Evaluate, cancel_event: Any, parent_pid: int) -> None:
    """A worker's loop: evaluate the episodes its pipe brings until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        while True:
            while not connection.poll(ORPHAN_CHECK_INTERVAL):
                if os.getppid() != parent_pid:
                    return
            task = connection.recv()
            if task is None:
                return
            message = _run_episode(connection, evaluate, cancel_event, *task)
            try:
                connection.send(message)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                error = RuntimeError(f"the outcome of episode {task[0]} can't be sent back: {exc}")
                connection.send(("error", task[0], error, traceback.format_exc()))
    except (EOFError, OSError):
        return


def _run_episode(connection: Any, evaluate: Evaluate, cancel_event: Any,
                 episode: int, params: dict[str, Any]) -> tuple[Any, ...]:
    """One episode in a worker: the message that reports its outcome or error."""
    reporter = _CandleReporter(episode, connection, cancel_event)
    started = time.perf_counter()
    try:
        if cancel_event.is_set():
            raise Cancelled("stop requested")
        outcome = evaluate(params, reporter)
        duration_ms = (time.perf_counter() - started) * 1000
        return "done", episode, outcome, duration_ms, reporter.last_report
    except Exception as exc:  # noqa: BLE001 — every error goes back to the parent
        return "error", episode, _picklable(exc), traceback.format_exc()


def _picklable(error: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 — an error that can't cross processes is described instead
        return RuntimeError(f"{type(error).__name__}: {error}")


class _CandleReporter:
    """A worker's candle callback: throttled reports to the parent, Cancelled once stopped.

    An episode reports nothing during its first REPORT_INTERVAL, then on every change of
    stage and at most every REPORT_INTERVAL; its last report travels with its outcome. So a
    short backtest costs the parent one wake-up, and a long one moves the bar ~10 times a second.
    """

    def __init__(self, episode: int, connection: Any, cancel_event: Any) -> None:
        self._episode = episode
        self._connection = connection
        self._cancel_event = cancel_event
        self._started = self._last_sent = time.monotonic()
        self._sent_stage: str | None = None
        self.last_report: tuple[int, int, str] | None = None

    def __call__(self, processed: int, total: int, stage: str) -> None:
        if self._cancel_event.is_set():
            raise Cancelled("stop requested")
        self.last_report = (processed, total, stage)
        now = time.monotonic()
        if now - self._started < REPORT_INTERVAL:
            return
        if stage != self._sent_stage or now - self._last_sent >= REPORT_INTERVAL:
            self._sent_stage, self._last_sent = stage, now
            self._connection.send(("candles", self._episode, processed, total, stage))
