"""rsi_reversion: buy when Wilder's RSI dips below oversold, sell when it rises above overbought."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from trad.strategies.base import Param, ParamSpace, Signals, Strategy
from trad.strategies.indicators import ATR_PERIOD, average_true_range, shift, wilder_rsi
from trad.strategies.progress import CandleCallback, StageProgress


class RsiReversion(Strategy):
    """Enter when RSI crosses below `oversold`, exit when RSI is above `overbought`.

    Crossing below: RSI[t−1] ≥ oversold and RSI[t] < oversold. The stop sits
    stop_atr · ATR_t below the entry price (ATR of the signal candle, 14 candles).
    """

    name: ClassVar[str] = "rsi_reversion"
    param_space: ClassVar[ParamSpace] = ParamSpace(
        Param("period", "int", 2, 30, step=1, default=14),
        Param("oversold", "float", 10, 40, step=5, default=30.0),
        Param("overbought", "float", 60, 90, step=5, default=70.0),
        Param("stop_atr", "float", 0.5, 5.0, step=0.5, default=2.0),
    )

    @property
    def min_history(self) -> int:
        """A crossing needs RSI at t−1 (from `period`) and the stop needs ATR (from 14)."""
        return max(self.params["period"] + 1, ATR_PERIOD)

    def generate_signals(self, data: pd.DataFrame,
                         progress_callback: CandleCallback | None = None) -> Signals:
        """Entry signals with stop distances and exit signals; reports (done, total, 'signals')."""
        progress = StageProgress(progress_callback, len(data), "signals")
        progress.start()
        close = data["close"].to_numpy(dtype=float)
        rsi = wilder_rsi(close, self.params["period"])
        progress.advance_fraction(0.5)
        atr = average_true_range(data["high"].to_numpy(dtype=float),
                                 data["low"].to_numpy(dtype=float), close)
        with np.errstate(invalid="ignore"):
            entries = (shift(rsi) >= self.params["oversold"]) & (rsi < self.params["oversold"])
            exits = rsi > self.params["overbought"]
        entries[:self.min_history] = False
        progress.finish()
        return Signals(entries=entries, exits=exits, stop_distances=self.params["stop_atr"] * atr)
