"""StageProgress: throttled candle progress of one stage."""

from __future__ import annotations

import pytest

from trad.errors import Cancelled
from trad.strategies.progress import StageProgress


def record(total, min_interval=0.0):
    calls = []
    progress = StageProgress(lambda d, t, s: calls.append((d, t, s)), total, "trades",
                             min_interval=min_interval)
    return progress, calls


def test_one_call_per_percent_at_most_and_always_the_first_and_last():
    progress, calls = record(10_000)
    progress.start()
    for done in range(10_000):
        progress.advance(done)
    progress.finish()
    dones = [d for d, _, _ in calls]
    assert dones[0] == 0 and dones[-1] == 10_000 and len(calls) <= 101
    assert dones == sorted(set(dones))
    assert {(t, s) for _, t, s in calls} == {(10_000, "trades")}


def test_calls_close_in_time_are_skipped_but_not_the_last():
    progress, calls = record(1_000, min_interval=60.0)
    progress.start()
    for done in range(1_000):
        progress.advance(done)
    progress.finish()
    assert calls == [(0, 1_000, "trades"), (1_000, 1_000, "trades")]


def test_small_stages_and_jumps():
    progress, calls = record(3)
    progress.start()
    progress.advance(2)
    progress.advance(1)
    progress.finish()
    assert [d for d, _, _ in calls] == [0, 2, 3]


def test_no_callback_is_fine():
    progress = StageProgress(None, 10, "signals")
    progress.start()
    progress.advance(5)
    progress.finish()


def test_whatever_the_callback_raises_propagates():
    def cancel(done, total, stage):
        raise Cancelled("stop requested")

    with pytest.raises(Cancelled):
        StageProgress(cancel, 10, "signals").start()
