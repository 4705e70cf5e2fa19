"""Backtest metrics: pure functions over numpy arrays.

Every metric is a plain Python float (n_trades an int), finite or ±inf, never NaN:
a metric that is undefined (no trades, zero variance, fewer than two candles) is 0.0.
Returns are fractions (0.05 = 5 %). Annualisation uses a 365-day year. A standard
deviation of returns below NOISE is float rounding (e.g. units · price ≠ cash by one
ulp on a flat market), far below any price tick, and counts as zero.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from trad.data.frames import timeframe_seconds

SECONDS_PER_YEAR = 365 * 86_400
NOISE = 1e-12


def candles_per_year(timeframe: str | None = None, timestamps: Any = None) -> float:
    """Candles in a 365-day year, from a timeframe ('5m' → 105,120) or the median candle spacing.

    With neither a timeframe nor two timestamps there is nothing to annualise: 1.0.
    """
    if timeframe is not None:
        return SECONDS_PER_YEAR / timeframe_seconds(timeframe)
    if timestamps is None or len(timestamps) < 2:
        return 1.0
    index = pd.DatetimeIndex(timestamps[:1001])
    ticks_per_second = float(np.timedelta64(1, "s") / np.timedelta64(1, index.unit))
    spacing = float(np.median(np.diff(index.asi8))) / ticks_per_second  # on integers: ~50 µs, not ~300
    return SECONDS_PER_YEAR / spacing if spacing > 0 else 1.0


def candle_returns(equity: np.ndarray) -> np.ndarray:
    """Per-candle returns of an equity curve: equity[t] / equity[t−1] − 1 (len − 1 values).

    A return from zero equity is 0.0 (nothing left to gain or lose).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = equity[1:] / equity[:-1] - 1.0
    returns[~np.isfinite(returns)] = 0.0
    return returns


def total_return(equity: np.ndarray, initial_equity: float) -> float:
    """Final equity over initial, minus 1."""
    if not len(equity):
        return 0.0
    return float(equity[-1] / initial_equity - 1.0)


def sharpe(returns: np.ndarray, periods_per_year: float) -> float:
    """mean / std (sample, ddof=1) of per-candle returns × √periods_per_year; 0.0 if std is 0."""
    if len(returns) < 2:
        return 0.0
    std = float(np.std(returns, ddof=1))
    if std <= NOISE or not math.isfinite(std):
        return 0.0
    return float(np.mean(returns)) / std * math.sqrt(periods_per_year)


def sortino(returns: np.ndarray, periods_per_year: float) -> float:
    """mean / downside deviation (root mean square of the negative returns, over all candles).

    inf when the mean is positive and no return is negative; 0.0 when undefined.
    """
    if len(returns) < 2:
        return 0.0
    mean = float(np.mean(returns))
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside <= NOISE:
        return math.inf if mean > NOISE else 0.0
    return mean / downside * math.sqrt(periods_per_year)


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a fraction of that peak (≥ 0)."""
    if not len(equity):
        return 0.0
    peaks = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        worst = float(np.nanmax(1.0 - equity / peaks))
    return max(0.0, worst) if math.isfinite(worst) else 0.0


def annualised_return(equity: np.ndarray, initial_equity: float, periods_per_year: float) -> float:
    """Compound yearly return over the len(equity) − 1 candle periods; inf on overflow."""
    periods = len(equity) - 1
    if periods < 1:
        return 0.0
    growth = float(equity[-1] / initial_equity)
    if growth <= 0:
        return -1.0
    try:
        return growth ** (periods_per_year / periods) - 1.0
    except OverflowError:
        return math.inf


def calmar(yearly_return: float, drawdown: float) -> float:
    """Annualised return / max drawdown; inf with a gain and no drawdown, 0.0 with neither."""
    if drawdown == 0.0:
        return math.inf if yearly_return > 0 else 0.0
    return yearly_return / drawdown


def win_rate(pnl: np.ndarray) -> float:
    """Fraction of trades with a positive pnl; 0.0 with no trades."""
    return float(np.mean(pnl > 0)) if len(pnl) else 0.0


def profit_factor(pnl: np.ndarray) -> float:
    """Gross profit / gross loss; inf with profit and no loss, 0.0 with no profit."""
    profit = float(pnl[pnl > 0].sum())
    loss = -float(pnl[pnl < 0].sum())
    if profit == 0.0:
        return 0.0
    return profit / loss if loss > 0 else math.inf


def average_trade_return(trade_returns: np.ndarray) -> float:
    """Mean return of the trades; 0.0 with no trades."""
    return float(np.mean(trade_returns)) if len(trade_returns) else 0.0


def sqn(trade_returns: np.ndarray) -> float:
    """System quality number: √n · mean / std (ddof=1) of trade returns; 0.0 below 2 trades."""
    if len(trade_returns) < 2:
        return 0.0
    std = float(np.std(trade_returns, ddof=1))
    if std <= NOISE or not math.isfinite(std):
        return 0.0
    return math.sqrt(len(trade_returns)) * float(np.mean(trade_returns)) / std


def exposure(entry_index: np.ndarray, exit_index: np.ndarray, n_candles: int) -> float:
    """Fraction of candles a position was held during (entry through exit candle, inclusive)."""
    if not n_candles:
        return 0.0
    return float(np.sum(exit_index - entry_index + 1)) / n_candles


def backtest_metrics(equity: np.ndarray, initial_equity: float, pnl: np.ndarray,
                     trade_returns: np.ndarray, entry_index: np.ndarray, exit_index: np.ndarray,
                     periods_per_year: float) -> dict[str, float]:
    """Every metric of a backtest, keyed by name."""
    returns = candle_returns(equity)
    drawdown = max_drawdown(equity)
    return {
        "total_return": total_return(equity, initial_equity),
        "sharpe": sharpe(returns, periods_per_year),
        "sortino": sortino(returns, periods_per_year),
        "max_drawdown": drawdown,
        "win_rate": win_rate(pnl),
        "profit_factor": profit_factor(pnl),
        "n_trades": int(len(pnl)),
        "avg_trade_return": average_trade_return(trade_returns),
        "exposure": exposure(entry_index, exit_index, len(equity)),
        "calmar": calmar(annualised_return(equity, initial_equity, periods_per_year), drawdown),
        "sqn": sqn(trade_returns),
    }
