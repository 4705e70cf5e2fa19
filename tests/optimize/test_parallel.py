"""Parallel episodes and the job callback: same results, smooth progress, prompt cancellation."""

from __future__ import annotations

import os
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

from trad.errors import Cancelled
from trad.optimize import BayesianSearch, GridSearch, RandomSearch, build_search_space

from tests.optimize.toys import (Toy, bowl, broken, crash, paced, paced_bowl, paced_process_id,
                                 quick_then_silent, quick_then_slow)

CONSTRAINT = Toy.constraint_violation


def space(**overrides: Any):
    base = {"fast": {"low": 5, "high": 25}, "slow": {"low": 20, "high": 60},
            "ratio": {"low": 0.1, "high": 0.3}}
    return build_search_space(Toy, {**base, **overrides})


def fast_choices(*fast: int):
    return space(fast={"choices": list(fast)}, slow=40, ratio=0.2, mode="b")


class Recorder:
    """A job callback that keeps every call, and may raise Cancelled when told to."""

    def __init__(self, cancel_when=None):
        self.calls: list[tuple[int, int, float | None, dict[str, Any], float, int]] = []
        self.cancel_when = cancel_when
        self.cancelled_at: float | None = None

    def __call__(self, iteration, total, score, metadata):
        self.calls.append((iteration, total, score, metadata, time.monotonic(), os.getpid()))
        if self.cancelled_at is None and self.cancel_when and self.cancel_when(iteration, metadata):
            self.cancelled_at = time.monotonic()
            raise Cancelled("stop requested")
        if self.cancelled_at is not None:
            raise Cancelled("stop requested")

    @property
    def progress(self):
        return [call[3]["progress"] for call in self.calls]


def summary(result):
    return [(e.iteration, e.params, e.score) for e in result.evaluations]


def test_grid_over_two_processes_returns_the_same_evaluations():
    grid = GridSearch(space(), constraint=CONSTRAINT)
    one, two = grid.run(bowl, n_jobs=1), grid.run(bowl, n_jobs=2)
    assert summary(one) == summary(two)
    assert len(two.evaluations) == grid.total_episodes == 207
    assert one.best.params == two.best.params


def test_random_over_two_processes_returns_the_same_evaluations():
    search = RandomSearch(space(), n_iterations=30, seed=5, constraint=CONSTRAINT)
    assert summary(search.run(bowl, n_jobs=1)) == summary(search.run(bowl, n_jobs=3))


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_job_callback_progress_is_monotonic_and_reaches_total(n_jobs):
    grid = GridSearch(space(ratio=0.2, mode="b", slow={"low": 30, "high": 40}), constraint=CONSTRAINT)
    recorder = Recorder()
    result = grid.run(paced_bowl, n_jobs=n_jobs, callback=recorder)
    total = grid.total_episodes
    iterations = [call[0] for call in recorder.calls]
    assert iterations == sorted(iterations) and iterations[-1] == total
    assert recorder.progress == sorted(recorder.progress) and recorder.progress[-1] == 1.0
    assert {call[1] for call in recorder.calls} == {total}
    assert {call[5] for call in recorder.calls} == {os.getpid()}, "called in the parent only"
    finished = [call[3]["evaluation"] for call in recorder.calls if call[3]["evaluation"]]
    assert sorted(e.iteration for e in finished) == [e.iteration for e in result.evaluations]
    for iteration, _total, score, metadata, _at, _pid in recorder.calls:
        if metadata["evaluation"] is not None:
            assert score == metadata["evaluation"].score
        assert 0 <= metadata["candles_processed"] <= metadata["total_candles"] <= 2_000
        assert metadata["stage"] in (None, "signals", "trades")
    last = recorder.calls[-1][3]
    assert last["best_score"] == result.best.score and last["best_params"] == result.best.params
    assert last["in_flight"] == [] and last["optimizer_seconds"] >= 0


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_progress_moves_inside_an_episode(n_jobs):
    grid = GridSearch(fast_choices(5, 10, 15), constraint=CONSTRAINT)
    recorder = Recorder()
    grid.run(paced, n_jobs=n_jobs, callback=recorder)
    inside = [(i, m) for i, _t, _s, m, _a, _p in recorder.calls
              if m["evaluation"] is None and m["in_flight"]]
    assert any(m["progress"] > i / 3 for i, m in inside), "in-flight fractions count"
    assert any(0 < entry["episode_progress"] < 1 for _, m in inside for entry in m["in_flight"])
    assert any(m["stage"] == "trades" and 0 < m["episode_progress"] < 1 for _, m in inside)
    if n_jobs == 2:
        assert max(len(m["in_flight"]) for _, m in inside) >= 2


def test_candle_driven_calls_are_throttled():
    grid = GridSearch(fast_choices(5, 10), constraint=CONSTRAINT)
    recorder = Recorder()
    started = time.monotonic()
    grid.run(paced, n_jobs=1, callback=recorder)
    elapsed = time.monotonic() - started
    candle_calls = [c for c in recorder.calls if c[3]["evaluation"] is None]
    assert len(candle_calls) <= elapsed * 10 + 2


def test_n_jobs_2_runs_episodes_here_and_in_one_worker():
    grid = GridSearch(space(ratio=0.2, mode="b", slow={"low": 30, "high": 40}), constraint=CONSTRAINT)
    result = grid.run(paced_process_id, n_jobs=2)
    ran_in = {int(e.score) for e in result.evaluations}
    assert len(ran_in) == 2 and os.getpid() in ran_in
    assert len(result.evaluations) == grid.total_episodes


def test_bayesian_keeps_every_worker_busy():
    search = BayesianSearch(space(), n_iterations=14, seed=1, constraint=CONSTRAINT, n_initial_points=4)
    recorder = Recorder()
    result = search.run(paced_bowl, n_jobs=2, callback=recorder)
    assert len(result.evaluations) == 14
    assert len({tuple(sorted(e.params.items())) for e in result.evaluations}) == 14
    late = [c[3] for c in recorder.calls if c[0] >= 6]
    assert max(len(m["in_flight"]) for m in late) >= 2, "points are asked while others run"
    finished = [c[3] for c in recorder.calls if c[3]["evaluation"] is not None]
    assert all(m["episode_optimizer_seconds"] >= 0 for m in finished)
    assert result.optimizer_seconds == pytest.approx(recorder.calls[-1][3]["optimizer_seconds"])


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_cancel_from_the_job_callback_ends_the_run_promptly(n_jobs):
    grid = GridSearch(fast_choices(5, 10, 20, 25), constraint=CONSTRAINT)
    recorder = Recorder(cancel_when=lambda i, m: i >= 2 and any(
        e["candles_processed"] > 10 for e in m["in_flight"]))
    started = time.monotonic()
    result = grid.run(quick_then_slow, n_jobs=n_jobs, callback=recorder)
    ended = time.monotonic()
    assert result.cancelled and result.stop_reason == "cancelled" and not result.stopped_early
    assert ended - recorder.cancelled_at < 2.0
    # With n_jobs=2 the last slow episode (10 s) runs in this process: the quick ones that
    # finish in the worker meanwhile are counted at once, so the stop comes early.
    assert ended - started < 5.0
    assert [e.params["fast"] for e in result.evaluations] == [5, 10]
    assert result.best.params["fast"] == 10 and result.best.score == bowl(result.best.params)


def test_cancel_terminates_workers_that_never_report():
    # n_jobs=3: two workers, whose pipes take all four episodes, so the silent ones run there
    # (in this process nothing could interrupt a sleep that never reports).
    grid = GridSearch(fast_choices(5, 10, 20, 25), constraint=CONSTRAINT)
    started = time.monotonic()
    recorder = Recorder(cancel_when=lambda i, m: i >= 2 and time.monotonic() - started > 0.5)
    result = grid.run(quick_then_silent, n_jobs=3, callback=recorder)
    assert result.cancelled
    assert time.monotonic() - recorder.cancelled_at < 2.5
    assert time.monotonic() - started < 5.0
    assert len(result.evaluations) == 2


def test_a_stop_from_a_candle_report_keeps_the_outcomes_read_with_it():
    from trad.optimize.parallel import ProcessRunner

    finished = []

    def stop(*report):
        raise Cancelled("stop requested")

    with pytest.raises(Cancelled), ProcessRunner(quick_then_slow, 1) as runner:
        runner.submit(1, {"fast": 5, "slow": 40, "ratio": 0.2, "mode": "b"})
        runner.submit(2, {"fast": 25, "slow": 40, "ratio": 0.2, "mode": "b"})
        time.sleep(0.5)  # episode 1's outcome, then episode 2's candle reports, wait in the pipe
        runner.collect(stop, finished.append)
    assert [f.episode for f in finished] == [1] and finished[0].outcome == bowl(
        {"fast": 5, "slow": 40, "ratio": 0.2, "mode": "b"})


def test_cancel_before_any_episode():
    result = GridSearch(fast_choices(5, 10), constraint=CONSTRAINT).run(
        bowl, n_jobs=2, callback=Recorder(cancel_when=lambda i, m: True))
    assert result.cancelled and result.best is None and result.evaluations == []


def test_a_worker_crash_is_an_error():
    with pytest.raises(BrokenProcessPool):
        GridSearch(fast_choices(5, 10, 15), constraint=CONSTRAINT).run(crash, n_jobs=2)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_an_evaluation_error_propagates(n_jobs):
    with pytest.raises(ValueError, match="cannot evaluate"):
        GridSearch(fast_choices(5, 10, 15), constraint=CONSTRAINT).run(broken, n_jobs=n_jobs)


def test_an_evaluation_error_carries_the_worker_traceback():
    with pytest.raises(ValueError) as raised:
        GridSearch(fast_choices(5, 10, 15), constraint=CONSTRAINT).run(broken, n_jobs=2)
    assert "in broken" in str(raised.value.__cause__)


ORPHANING_PARENT = """
import os, sys, time
from trad.optimize.parallel import ProcessRunner
from tests.optimize.toys import bowl, silent_sleeper
runner = ProcessRunner(silent_sleeper if sys.argv[1] == "busy" else bowl, 2)
if sys.argv[1] == "busy":
    runner.submit(1, {})
print(" ".join(str(w.process.pid) for w in runner._workers), flush=True)
time.sleep(0.3)
os._exit(0)
"""


@pytest.mark.parametrize("state", ["idle", "busy"])
def test_workers_of_a_parent_that_died_exit(state):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    with subprocess.Popen([sys.executable, "-c", ORPHANING_PARENT, state], cwd=root,
                          stdout=subprocess.PIPE, text=True) as parent:
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        parent.wait(timeout=30)
    assert len(pids) == 2
    # An idle worker notices within ORPHAN_CHECK_INTERVAL; a busy one first finishes its
    # episode (here a 30 s sleep, so it is killed below).
    still_working = 1 if state == "busy" else 0
    deadline = time.monotonic() + 5
    alive = pids
    while len(alive) > still_working and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in pids if _alive(pid)]
    for pid in alive:
        os.kill(pid, 9)
    assert len(alive) == still_working


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
