"""A slow, obvious reference of STRATEGIES.md: plain per-candle Python loops.

The engine must agree with it trade for trade and metric for metric. Window sums use
numpy's sum of the window slice, like the engine, so float rounding is the same.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from trad.strategies.base import Signals

NOISE = 1e-12  # a std of returns below this is float rounding


def reference_backtest(data: pd.DataFrame, signals: Signals, fee_rate: float = 0.0005,
                       slippage: float = 0.0, initial_equity: float = 10_000.0,
                       size: float = 1.0) -> tuple[list[dict], list[float]]:
    """Trades and the equity at every close, one candle at a time."""
    o, h, l, c = (data[k].tolist() for k in ("open", "high", "low", "close"))
    n = len(c)
    entries = list(signals.entries)
    exits = list(signals.exits) if signals.exits is not None else [False] * n
    cash, trade, trades, equity = initial_equity, None, [], []
    for t in range(n):
        if trade is None and t >= 1 and entries[t - 1]:
            trade = _open(t, o[t] * (1 + slippage), signals, cash, size, fee_rate)
            if trade is not None:
                cash -= trade["spent"]
        if trade is not None:
            exit_ = _exit_at(t, trade, o, h, l, c, exits, signals.max_hold, n)
            if exit_ is not None:
                price, reason = exit_
                trade.update(exit_index=t, exit_price=price * (1 - slippage), exit_reason=reason)
                proceeds = trade["units"] * trade["exit_price"] * (1 - fee_rate)
                trade["pnl"] = proceeds - trade["spent"]
                trade["return_pct"] = trade["pnl"] / trade["spent"]
                cash += proceeds
                trades.append(trade)
                trade = None
        equity.append(cash + (trade["units"] * c[t] if trade is not None else 0.0))
    return trades, equity


def _open(t: int, price: float, signals: Signals, cash: float, size: float,
          fee_rate: float) -> dict | None:
    stop = math.nan
    if signals.stops is not None:
        stop = float(signals.stops[t - 1])
    if signals.stop_distances is not None:
        by_distance = price - float(signals.stop_distances[t - 1])
        if not math.isnan(by_distance) and (math.isnan(stop) or by_distance > stop):
            stop = by_distance
    if not math.isnan(stop) and price <= stop:
        return None
    target = math.nan
    if signals.rr_ratio is not None:
        target = price + signals.rr_ratio * (price - stop)
    spent = size * cash
    return {"entry_index": t, "entry_price": price, "stop": stop, "target": target,
            "spent": spent, "units": spent / (price * (1 + fee_rate))}


def _exit_at(t, trade, o, h, l, c, exits, max_hold, n):
    if l[t] <= trade["stop"]:
        return min(o[t], trade["stop"]), "stop"
    if h[t] >= trade["target"]:
        return max(o[t], trade["target"]), "target"
    if t - 1 >= trade["entry_index"] and exits[t - 1]:
        return o[t], "signal"
    if max_hold is not None and t - trade["entry_index"] + 1 == max_hold:
        return c[t], "max_hold"
    if t == n - 1:
        return c[t], "end"
    return None


def reference_metrics(trades: list[dict], equity: list[float], initial_equity: float,
                      periods_per_year: float) -> dict[str, float]:
    """The metrics of STRATEGIES.md, written out longhand."""
    returns = [equity[i] / equity[i - 1] - 1 for i in range(1, len(equity))]
    pnl = [t["pnl"] for t in trades]
    trade_returns = [t["return_pct"] for t in trades]
    gross_profit = sum(p for p in pnl if p > 0)
    gross_loss = -sum(p for p in pnl if p < 0)
    peak, drawdown = equity[0], 0.0
    for value in equity:
        peak = max(peak, value)
        drawdown = max(drawdown, 1 - value / peak)
    yearly = 0.0
    if len(equity) > 1:
        try:
            yearly = (equity[-1] / initial_equity) ** (periods_per_year / (len(equity) - 1)) - 1
        except OverflowError:
            yearly = math.inf
    return {
        "total_return": equity[-1] / initial_equity - 1,
        "sharpe": _ratio(_mean(returns), _std(returns)) * math.sqrt(periods_per_year),
        "sortino": _sortino(returns, periods_per_year),
        "max_drawdown": drawdown,
        "win_rate": sum(p > 0 for p in pnl) / len(pnl) if pnl else 0.0,
        "profit_factor": (0.0 if gross_profit == 0 else
                          gross_profit / gross_loss if gross_loss > 0 else math.inf),
        "n_trades": len(trades),
        "avg_trade_return": _mean(trade_returns),
        "exposure": sum(t["exit_index"] - t["entry_index"] + 1 for t in trades) / len(equity),
        "calmar": (yearly / drawdown if drawdown > 0 else math.inf if yearly > 0 else 0.0),
        "sqn": math.sqrt(len(pnl)) * _ratio(_mean(trade_returns), _std(trade_returns)),
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _ratio(mean: float, std: float) -> float:
    return mean / std if std > NOISE else 0.0


def _sortino(returns: list[float], periods_per_year: float) -> float:
    if len(returns) < 2:
        return 0.0
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    mean = _mean(returns)
    if downside <= NOISE:
        return math.inf if mean > NOISE else 0.0
    return mean / downside * math.sqrt(periods_per_year)


# ---------------------------------------------------------------- strategy signals

def reference_true_range(data: pd.DataFrame) -> np.ndarray:
    """TR per candle, TR[0] = high − low."""
    h, l, c = data["high"].to_numpy(), data["low"].to_numpy(), data["close"].to_numpy()
    tr = np.empty(len(c))
    for t in range(len(c)):
        tr[t] = h[t] - l[t] if t == 0 else max(h[t] - l[t], abs(h[t] - c[t - 1]), abs(l[t] - c[t - 1]))
    return tr


def reference_liquidity_sweep(data: pd.DataFrame, key_level_lookback: int, pierce_depth: float,
                              volume_spike_threshold: float, reversal_candles: int,
                              rr_ratio: float, max_hold_candles: int) -> Signals:
    """liquidity_sweep signals, candle by candle, with a pending-sweep state machine."""
    low, close = data["low"].to_numpy(), data["close"].to_numpy()
    volume, tr = data["volume"].to_numpy(), reference_true_range(data)
    n, first = len(close), max(key_level_lookback, 20, 14)
    entries, stops = np.zeros(n, dtype=bool), np.full(n, np.nan)
    pending = None
    for t in range(first, n):
        key_low = low[t - key_level_lookback:t].min()
        atr = tr[t - 13:t + 1].sum() / 14
        vol_mean = volume[t - 20:t].sum() / 20
        if low[t] <= key_low - pierce_depth * atr and volume[t] >= volume_spike_threshold * vol_mean:
            pending = (t, key_low)
        if pending is not None:
            sweep, level = pending
            if t > sweep + reversal_candles - 1:
                pending = None
            elif close[t] > level:
                entries[t], stops[t] = True, low[sweep:t + 1].min()
                pending = None
    return Signals(entries=entries, stops=stops, rr_ratio=rr_ratio, max_hold=max_hold_candles)


def reference_sma_crossover(data: pd.DataFrame, fast: int, slow: int) -> Signals:
    """Strict crossings of the two simple moving averages."""
    close = data["close"].to_numpy()
    n = len(close)
    entries, exits = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)

    def sma(t: int, w: int) -> float:
        return close[t - w + 1:t + 1].sum() / w

    for t in range(slow, n):
        f0, s0, f1, s1 = sma(t - 1, fast), sma(t - 1, slow), sma(t, fast), sma(t, slow)
        entries[t] = f0 < s0 and f1 > s1
        exits[t] = f0 > s0 and f1 < s1
    return Signals(entries=entries, exits=exits)


def reference_rsi(close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's RSI with the textbook recursion."""
    rsi = np.full(len(close), np.nan)
    if len(close) <= period:
        return rsi
    changes = [close[t] - close[t - 1] for t in range(1, len(close))]
    gain = sum(max(x, 0.0) for x in changes[:period]) / period
    loss = sum(max(-x, 0.0) for x in changes[:period]) / period
    for t in range(period, len(close)):
        if t > period:
            x = changes[t - 1]
            gain = (gain * (period - 1) + max(x, 0.0)) / period
            loss = (loss * (period - 1) + max(-x, 0.0)) / period
        rsi[t] = 50.0 if gain + loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss) if loss else 100.0
    return rsi


def reference_rsi_reversion(data: pd.DataFrame, period: int, oversold: float,
                            overbought: float, stop_atr: float) -> Signals:
    """RSI crossing below oversold to enter, above overbought to exit, ATR stop distance."""
    close, tr = data["close"].to_numpy(), reference_true_range(data)
    n, first = len(close), max(period + 1, 14)
    rsi = reference_rsi(close, period)
    entries, exits = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    distances = np.full(n, np.nan)
    for t in range(n):
        if t >= 13:
            distances[t] = stop_atr * (tr[t - 13:t + 1].sum() / 14)
        if t >= period:
            exits[t] = rsi[t] > overbought
        if t >= first:
            entries[t] = rsi[t - 1] >= oversold and rsi[t] < oversold
    return Signals(entries=entries, exits=exits, stop_distances=distances)
