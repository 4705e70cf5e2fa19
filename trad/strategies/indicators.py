"""Vectorised indicators over candle arrays; NaN where an indicator does not exist yet.

Every value at index t uses candles up to t only. Window sums are computed window by
window (each window summed on its own), never as a difference of running cumulative
sums, which drift over long series (~1e-9 over 1M candles) and can flip a comparison.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ATR_PERIOD = 14


def window_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum of values[t−window+1 … t] at t; NaN for t < window−1.

    Each window is summed on its own, as a sum of power-of-two blocks (the binary digits of
    `window`), so the cost is O(n log window) and no error accumulates along the series.
    """
    n = len(values)
    out = np.full(n, np.nan)
    if n < window:
        return out
    count = n - window + 1
    total = out[window - 1:]
    blocks = np.asarray(values, dtype=float)
    size, offset, remaining, started = 1, 0, window, False
    while remaining:
        if remaining & 1:
            piece = blocks[offset:offset + count]
            if started:
                np.add(total, piece, out=total)
            else:
                total[:] = piece
                started = True
            offset += size
        remaining >>= 1
        if remaining:
            blocks = blocks[:-size] + blocks[size:]
            size *= 2
    return out


def window_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average over the last `window` values including t."""
    return window_sum(values, window) / window


def window_min(values: np.ndarray, window: int) -> np.ndarray:
    """Minimum of values[t−window+1 … t] at t (NaN before), in O(n) (van Herk / Gil-Werman)."""
    n = len(values)
    out = np.full(n, np.nan)
    if n < window:
        return out
    blocks = -(-n // window)
    padded = np.full(blocks * window, np.inf)
    padded[:n] = values
    grid = padded.reshape(blocks, window)
    prefix = np.minimum.accumulate(grid, axis=1).ravel()
    suffix = np.minimum.accumulate(grid[:, ::-1], axis=1)[:, ::-1].ravel()
    out[window - 1:] = np.minimum(suffix[:n - window + 1], prefix[window - 1:n])
    return out


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """TR_t = max(high−low, |high−close_{t−1}|, |low−close_{t−1}|); TR_0 = high_0 − low_0."""
    tr = high - low
    if len(tr) > 1:
        previous = close[:-1]
        tr[1:] = np.maximum(tr[1:], np.maximum(np.abs(high[1:] - previous),
                                               np.abs(low[1:] - previous)))
    return tr


def average_true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray,
                       period: int = ATR_PERIOD) -> np.ndarray:
    """Simple mean of the last `period` true ranges including t; NaN for t < period−1."""
    return window_mean(true_range(high, low, close), period)


def shift(values: np.ndarray, by: int = 1) -> np.ndarray:
    """values[t−by] at t; NaN for the first `by` entries."""
    out = np.full(len(values), np.nan)
    if by < len(values):
        out[by:] = values[:len(values) - by]
    return out


def wilder_rsi(close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's RSI: averages seeded by a simple mean of the first `period` changes.

    Defined from t = period. RSI = 100·G/(G+L) (equal to 100 − 100/(1+G/L)); 100 when
    only gains, 50 when the price did not move at all.
    """
    n = len(close)
    out = np.full(n, np.nan)
    if n <= period:
        return out
    change = np.diff(close)
    gains = np.maximum(change, 0.0)
    losses = np.maximum(-change, 0.0)
    avg_gain = _wilder_average(gains, period)
    avg_loss = _wilder_average(losses, period)
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi = np.where(total > 0, 100.0 * avg_gain / total, 50.0)
    out[period:] = rsi
    return out


def _wilder_average(changes: np.ndarray, period: int) -> np.ndarray:
    """avg_p = mean(changes[0:p]); avg_t = (avg_{t−1}·(p−1) + x_t)/p, as an exponential mean."""
    series = changes[period - 1:].copy()
    series[0] = changes[:period].mean()
    smoothed = pd.Series(series).ewm(alpha=1.0 / period, adjust=False).mean()
    return smoothed.to_numpy()
