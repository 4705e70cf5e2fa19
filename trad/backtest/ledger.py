"""Cash accounting of filled trades: units, pnl and the equity curve, vectorised.

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
    """Size every trade from the equity before it and mark equity at every close."""
    spent_per_unit = fills.entry_price * (1.0 + fee_rate)
    received_per_unit = fills.exit_price * (1.0 - fee_rate)
    growth = 1.0 - size + size * received_per_unit / spent_per_unit
    before = initial_equity * np.concatenate(([1.0], np.cumprod(growth)[:-1]))
    spent = size * before
    units = spent / spent_per_unit
    pnl = units * received_per_unit - spent
    cash_left = before - spent
    equity = _equity_curve(fills, close, initial_equity, units, cash_left, before * growth)
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
