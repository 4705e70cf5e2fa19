"""sma_crossover: long while the fast simple moving average is above the slow one."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd

from trad.strategies.base import Param, ParamSpace, Signals, Strategy
from trad.strategies.indicators import shift, window_mean
from trad.strategies.progress import CandleCallback, StageProgress


class SmaCrossover(Strategy):
    """Enter when SMA_fast crosses above SMA_slow, exit when it crosses back below.

    Crossings are strict on both sides: entry at t when SMA_f[t−1] < SMA_s[t−1] and
    SMA_f[t] > SMA_s[t]; touching without crossing is no signal. No stop, target or max hold.
    """

    name: ClassVar[str] = "sma_crossover"
    param_space: ClassVar[ParamSpace] = ParamSpace(
        Param("fast", "int", 5, 50, step=5, default=10),
        Param("slow", "int", 20, 200, step=10, default=50),
    )

    @classmethod
    def constraint_violation(cls, params: Mapping[str, Any]) -> str | None:
        """fast must be shorter than slow."""
        if params["fast"] >= params["slow"]:
            return f"fast must be < slow (got fast={params['fast']}, slow={params['slow']})"
        return None

    @property
    def min_history(self) -> int:
        """A crossing needs both averages at t−1: the first `slow` candles cannot signal."""
        return self.params["slow"]

    def generate_signals(self, data: pd.DataFrame,
                         progress_callback: CandleCallback | None = None) -> Signals:
        """Entry and exit signals at the crossings; reports (done, total, 'signals')."""
        progress = StageProgress(progress_callback, len(data), "signals")
        progress.start()
        close = data["close"].to_numpy(dtype=float)
        fast = window_mean(close, self.params["fast"])
        progress.advance_fraction(0.3)
        slow = window_mean(close, self.params["slow"])
        progress.advance_fraction(0.7)
        fast_before, slow_before = shift(fast), shift(slow)
        with np.errstate(invalid="ignore"):
            entries = (fast_before < slow_before) & (fast > slow)
            exits = (fast_before > slow_before) & (fast < slow)
        progress.finish()
        return Signals(entries=entries, exits=exits)
