"""Cash accounting of filled trades: units, pnl and the equity curve.

Sizing: a trade spends `size · E` of the equity E before it, entry fee included, so
units = size · E / (entry_price · (1 + fee)); the exit returns units · exit_price · (1 − fee).
Equity is marked at every close: cash plus units · close while in a position (no exit
fee deducted until the exit), and the cash after the exit on the exit candle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trad.backtest.simulation import Fills


@dataclass
class Ledger:
    """Per-trade units, pnl and return (pnl / cash spent), and equity at every close."""

    units: np.ndarray
    pnl: np.ndarray
    return_pct: np.ndarray
    equity: np.ndarray


def book(fills: Fills, close: np.ndarray, initial_equity: float, size: float,
         fee_rate: float) -> Ledger:
    """Size every trade from the equity before it and mark equity at every close.

    Compounding is sequential in float arithmetic (one step per trade, not per candle),
    so the figures are exactly those of booking the trades one by one.
    """
    count = len(fills.entry_index)
    units, spent, pnl = np.empty(count), np.empty(count), np.empty(count)
    cash_left, cash_after = np.empty(count), np.empty(count)
    cash = float(initial_equity)
    for k, (entry, exit_) in enumerate(zip(fills.entry_price.tolist(), fills.exit_price.tolist())):
        spent[k] = size * cash
        units[k] = spent[k] / (entry * (1 + fee_rate))
        cash_left[k] = cash - spent[k]
        proceeds = units[k] * exit_ * (1 - fee_rate)
        pnl[k] = proceeds - spent[k]
        cash = cash_after[k] = cash_left[k] + proceeds
    equity = _equity_curve(fills, close, initial_equity, units, cash_left, cash_after)
    return Ledger(units=units, pnl=pnl, return_pct=pnl / spent, equity=equity)


def _equity_curve(fills: Fills, close: np.ndarray, initial_equity: float, units: np.ndarray,
                  cash_left: np.ndarray, cash_after: np.ndarray) -> np.ndarray:
    """Equity at every close from the (non-overlapping, ordered) trades.

    The candles split into alternating stretches — flat before entry k, holding trade k
    (entry through the candle before its exit) — each with its cash and units; equity
    is cash + units · close, which is exactly the cash where no units are held.
    """
    n = len(close)
    bounds = np.empty(2 * len(units) + 2, dtype=np.int64)
    bounds[0], bounds[-1] = 0, n
    bounds[1:-1:2], bounds[2:-1:2] = fills.entry_index, fills.exit_index
    cash = np.empty(2 * len(units) + 1)
    cash[0] = initial_equity
    cash[1::2], cash[2::2] = cash_left, cash_after
    held = np.zeros(2 * len(units) + 1)
    held[1::2] = units
    lengths = np.diff(bounds)
    return np.repeat(cash, lengths) + np.repeat(held, lengths) * close
