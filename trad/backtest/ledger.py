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
    """Equity at every close from the (non-overlapping, ordered) trades."""
    n = len(close)
    equity = np.full(n, float(initial_equity))
    if not len(units):
        return equity
    latest_entry = np.cumsum(np.bincount(fills.entry_index, minlength=n)) - 1
    latest_exit = np.cumsum(np.bincount(fills.exit_index, minlength=n)) - 1
    exited = latest_exit >= 0
    equity[exited] = cash_after[latest_exit[exited]]
    trade = np.maximum(latest_entry, 0)
    holding = (latest_entry >= 0) & (np.arange(n) < fills.exit_index[trade])
    equity[holding] = cash_left[trade[holding]] + units[trade[holding]] * close[holding]
    return equity
