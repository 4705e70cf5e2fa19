"""Candle progress of one backtest stage, throttled so reporting stays cheap.

A stage ('signals' or 'trades') reports `(done, total, stage)` with `total` the number
of candles. The first call (done=0) and the last (done=total) always happen; in between
a call is made only when `done` crosses the next 1 % boundary *and* at least
`min_interval` seconds have passed since the previous call. So a stage makes at most
~100 calls however slow it is, and only two when it is fast. Whatever the callback
raises (e.g. trad.errors.Cancelled) propagates to the caller at once.
"""

from __future__ import annotations

import time
from typing import Callable

CandleCallback = Callable[[int, int, str], None]
"""(candles processed, total candles, stage) of a backtest: of one stage here, of a whole
backtest (counted 0 → 2·N) in trad.optimize."""

MIN_INTERVAL = 0.05
STEPS_PER_STAGE = 100


class StageProgress:
    """Reports one stage's candle progress to an optional callback."""

    __slots__ = ("callback", "total", "stage", "min_interval", "every", "next_mark", "last_done",
                 "last_call")

    def __init__(self, callback: CandleCallback | None, total: int, stage: str,
                 min_interval: float | None = None) -> None:
        self.callback = callback
        self.total = int(total)
        self.stage = stage
        self.min_interval = MIN_INTERVAL if min_interval is None else min_interval
        self.every = max(1, self.total // STEPS_PER_STAGE)
        self.next_mark = self.every if callback is not None else self.total + 1
        self.last_done = -1
        self.last_call = 0.0

    def start(self) -> None:
        """The first call of the stage: (0, total)."""
        self._call(0)

    def advance(self, done: int) -> None:
        """`done` candles are processed; report it if a boundary was crossed and time passed.

        Hot loops may skip the call while done < next_mark (it would do nothing).
        """
        if self.callback is None or done < self.next_mark or done >= self.total:
            return
        self.next_mark = (done // self.every + 1) * self.every
        if time.perf_counter() - self.last_call >= self.min_interval:
            self._call(done)

    def advance_fraction(self, fraction: float) -> None:
        """Report progress as a fraction of the stage (for whole-array passes)."""
        self.advance(int(self.total * fraction))

    def finish(self) -> None:
        """The last call of the stage: (total, total)."""
        self._call(self.total)

    def _call(self, done: int) -> None:
        if self.callback is None or done <= self.last_done:
            return
        self.last_done = done
        self.last_call = time.perf_counter()
        self.callback(done, self.total, self.stage)
