"""BacktestEngine: turns a strategy's signals on candles into trades, equity and metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from trad.backtest.ledger import Ledger, book
from trad.backtest.metrics import backtest_metrics, candles_per_year
from trad.backtest.simulation import EXIT_REASONS, Candles, Fills, simulate_trades
from trad.data.frames import CANDLE_COLUMNS
from trad.errors import InvalidInput
from trad.strategies.base import Signals, Strategy
from trad.strategies.progress import CandleCallback, StageProgress

TRADE_COLUMNS = ("entry_time", "exit_time", "entry_price", "exit_price", "units", "pnl",
                 "return_pct", "exit_reason", "entry_index", "exit_index")


@dataclass
class BacktestResult:
    """Equity at every close, metrics, and the trades (one row each, columns TRADE_COLUMNS).

    Prices in `trades` are fills (slippage included); `pnl` is after both fees;
    `return_pct` is pnl over the cash the trade spent (a fraction, 0.01 = 1 %). The trades
    table is built when first read: a search's episodes read only the metrics, and the
    table is ~1 ms of a 20,000-candle backtest's ~2.5 ms.
    """

    equity: np.ndarray
    metrics: dict[str, float]
    fills: Fills = field(repr=False)
    ledger: Ledger = field(repr=False)
    timestamps: pd.Series = field(repr=False)

    @cached_property
    def trades(self) -> pd.DataFrame:
        """The trades table, built from the fills and the ledger on first read."""
        fills, ledger, timestamps = self.fills, self.ledger, self.timestamps
        return pd.DataFrame({
            "entry_time": timestamps.take(fills.entry_index).reset_index(drop=True),
            "exit_time": timestamps.take(fills.exit_index).reset_index(drop=True),
            "entry_price": fills.entry_price,
            "exit_price": fills.exit_price,
            "units": ledger.units,
            "pnl": ledger.pnl,
            "return_pct": ledger.return_pct,
            "exit_reason": pd.Series(np.asarray(EXIT_REASONS, dtype=object)[fills.reason], dtype="str"),
            "entry_index": fills.entry_index,
            "exit_index": fills.exit_index,
        }, columns=list(TRADE_COLUMNS))


class BacktestEngine:
    """Long only, one position at a time, no leverage: the rules of STRATEGIES.md.

    `fee_rate` is charged per side on notional; `slippage` moves every fill against the
    trader by that fraction of the price; equity starts at `initial_equity`.
    """

    def __init__(self, fee_rate: float = 0.0005, slippage: float = 0.0,
                 initial_equity: float = 10_000.0) -> None:
        _check_number("fee_rate", fee_rate, 0.0, 1.0, low_open=False)
        _check_number("slippage", slippage, 0.0, 1.0, low_open=False)
        _check_number("initial_equity", initial_equity, 0.0, math.inf, low_open=True)
        self.fee_rate = float(fee_rate)
        self.slippage = float(slippage)
        self.initial_equity = float(initial_equity)

    def run_backtest(self, data: pd.DataFrame, strategy_instance: Strategy,
                     position_size_pct: float = 1.0,
                     progress_callback: CandleCallback | None = None) -> BacktestResult:
        """Backtest `strategy_instance` on `data` (candles sorted by time).

        Progress: `progress_callback(done, total, stage)` with total = N candles in each
        stage — first stage 'signals' (0 … N), then stage 'trades' (0 … N, done being the
        candle the simulation has reached). Each stage calls at least twice (0 and N) and
        at most ~100 times; whatever the callback raises (Cancelled) propagates at once.
        """
        _check_candles(data)
        _check_number("position_size_pct", position_size_pct, 0.0, 1.0, low_open=True)
        signals = strategy_instance.generate_signals(data, progress_callback)
        progress = StageProgress(progress_callback, len(data), "trades")
        progress.start()
        candles = _candle_arrays(data)
        _check_signals(signals, len(data))
        fills = simulate_trades(candles, signals, self.slippage, progress)
        result = self._result(data, candles, fills, float(position_size_pct))
        progress.finish()
        return result

    def _result(self, data: pd.DataFrame, candles: Candles, fills: Fills,
                size: float) -> BacktestResult:
        """Book the fills and compute the metrics."""
        ledger = book(fills, candles.close, self.initial_equity, size, self.fee_rate)
        timestamps = data["timestamp"]
        metrics = backtest_metrics(ledger.equity, self.initial_equity, ledger.pnl,
                                   ledger.return_pct, fills.entry_index, fills.exit_index,
                                   candles_per_year(timestamps=timestamps))
        return BacktestResult(ledger.equity, metrics, fills, ledger, timestamps)


def _candle_arrays(data: pd.DataFrame) -> Candles:
    """The price columns as float64 arrays."""
    return Candles(*(data[column].to_numpy(dtype=float) for column in
                     ("open", "high", "low", "close")))


def _check_candles(data: pd.DataFrame) -> None:
    """Raise InvalidInput unless `data` is a non-empty frame with the candle columns."""
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput.field("data", "must be a DataFrame of candles")
    missing = [c for c in CANDLE_COLUMNS if c not in data.columns]
    if missing:
        raise InvalidInput.field("data", f"missing candle columns: {', '.join(missing)}")
    if not len(data):
        raise InvalidInput.field("data", "no candles")


def _check_signals(signals: Signals, n: int) -> None:
    """A strategy must give one signal value per candle."""
    arrays = (signals.entries, signals.exits, signals.stops, signals.stop_distances)
    if any(a is not None and len(a) != n for a in arrays):
        raise ValueError(f"signals must have one value per candle ({n})")


def _check_number(field: str, value: float, low: float, high: float, low_open: bool) -> None:
    """Raise InvalidInput unless `value` is a finite number in the range."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInput.field(field, f"must be a number, got {value!r}")
    too_low = value <= low if low_open else value < low
    if not math.isfinite(value) or too_low or value > high:
        bracket = "(" if low_open else "["
        raise InvalidInput.field(field, f"must be in {bracket}{low:g}, {high:g}]")
