"""liquidity_sweep: buy the reversal after price sweeps below a key low on a volume spike."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from trad.strategies.base import Param, ParamSpace, Signals, Strategy
from trad.strategies.indicators import ATR_PERIOD, average_true_range, shift, window_mean, window_min
from trad.strategies.progress import CandleCallback, StageProgress

VOLUME_LOOKBACK = 20


class LiquiditySweep(Strategy):
    """Long after a sweep of the key low (lowest low of the lookback) that closes back above it.

    Sweep at s: low_s ≤ key_low_s − pierce_depth·ATR_s and volume_s ≥ threshold·vol_mean_s.
    The first candle j in [s, s + reversal_candles − 1] closing above key_low_s signals;
    a newer sweep replaces a pending one. Stop = lowest low of s…j; target at rr_ratio.
    """

    name: ClassVar[str] = "liquidity_sweep"
    param_space: ClassVar[ParamSpace] = ParamSpace(
        Param("key_level_lookback", "int", 10, 200, step=10, default=50),
        Param("pierce_depth", "float", 0.05, 1.0, step=0.05, default=0.15),
        Param("volume_spike_threshold", "float", 1.0, 4.0, step=0.5, default=2.5),
        Param("reversal_candles", "int", 1, 10, step=1, default=3),
        Param("rr_ratio", "float", 1.0, 4.0, step=0.5, default=2.0),
        Param("max_hold_candles", "int", 6, 288, step=6, default=48),
    )

    @property
    def min_history(self) -> int:
        """The first max(lookback, 20, 14) candles cannot signal."""
        return max(self.params["key_level_lookback"], VOLUME_LOOKBACK, ATR_PERIOD)

    def generate_signals(self, data: pd.DataFrame,
                         progress_callback: CandleCallback | None = None) -> Signals:
        """Entry signals with their stops; reports (done, total, 'signals')."""
        progress = StageProgress(progress_callback, len(data), "signals")
        progress.start()
        low = data["low"].to_numpy(dtype=float)
        sweeps, key_low = self._sweeps(data, low, progress)
        swept, signal_at = self._reversals(sweeps, key_low, data["close"].to_numpy(dtype=float))
        progress.advance_fraction(0.9)
        entries = np.zeros(len(data), dtype=bool)
        entries[signal_at] = True
        stops = np.full(len(data), np.nan)
        stops[signal_at] = _lowest_low_since(low, swept, signal_at, self.params["reversal_candles"])
        progress.finish()
        return Signals(entries=entries, stops=stops, rr_ratio=self.params["rr_ratio"],
                       max_hold=self.params["max_hold_candles"])

    def _sweeps(self, data: pd.DataFrame, low: np.ndarray,
                progress: StageProgress) -> tuple[np.ndarray, np.ndarray]:
        """Sweep candles and the key low at every candle."""
        high = data["high"].to_numpy(dtype=float)
        close = data["close"].to_numpy(dtype=float)
        volume = data["volume"].to_numpy(dtype=float)
        key_low = shift(window_min(low, self.params["key_level_lookback"]))
        progress.advance_fraction(0.3)
        atr = average_true_range(high, low, close)
        vol_mean = shift(window_mean(volume, VOLUME_LOOKBACK))
        progress.advance_fraction(0.6)
        with np.errstate(invalid="ignore"):
            sweeps = ((low <= key_low - self.params["pierce_depth"] * atr)
                      & (volume >= self.params["volume_spike_threshold"] * vol_mean))
        sweeps[:self.min_history] = False
        return sweeps, key_low

    def _reversals(self, sweeps: np.ndarray, key_low: np.ndarray,
                   close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sweep, signal) candle pairs: the first close above the swept level in the window.

        A sweep's window is cut short by the next sweep, which replaces it.
        """
        n = len(close)
        swept = np.flatnonzero(sweeps)
        level = key_low[swept]
        window_end = np.minimum(swept + self.params["reversal_candles"], np.append(swept[1:], n))
        signal = np.full(len(swept), -1)
        for offset in range(self.params["reversal_candles"]):
            candle = swept + offset
            waiting = (signal < 0) & (candle < window_end)
            reverses = waiting & (close[np.minimum(candle, n - 1)] > level)
            signal[reverses] = candle[reverses]
        found = signal >= 0
        return swept[found], signal[found]


def _lowest_low_since(low: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                      max_span: int) -> np.ndarray:
    """min(low[start … end]) for each pair, where end − start < max_span."""
    lowest = low[ends].copy()
    for back in range(1, max_span):
        inside = ends - back >= starts
        lowest[inside] = np.minimum(lowest[inside], low[ends[inside] - back])
    return lowest
