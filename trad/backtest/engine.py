"""BacktestEngine: turns a strategy's signals on candles into trades, equity and metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trad.strategies.base import Strategy
from trad.strategies.progress import ProgressCallback

TRADE_COLUMNS = ("entry_time", "exit_time", "entry_price", "exit_price", "units", "pnl",
                 "return_pct", "exit_reason", "entry_index", "exit_index")


@dataclass
class BacktestResult:
    """Trades (one row each, columns TRADE_COLUMNS), equity at every close, and metrics."""

    trades: pd.DataFrame
    equity: np.ndarray
    metrics: dict[str, float]


class BacktestEngine:
    """Long-only, one position at a time, no leverage; the rules of STRATEGIES.md."""

    def __init__(self, fee_rate: float = 0.0005, slippage: float = 0.0,
                 initial_equity: float = 10_000.0) -> None:
        self.fee_rate = fee_rate
        self.slippage = slippage
        self.initial_equity = initial_equity

    def run_backtest(self, data: pd.DataFrame, strategy_instance: Strategy,
                     position_size_pct: float = 1.0,
                     progress_callback: ProgressCallback | None = None) -> BacktestResult:
        """Backtest `strategy_instance` on `data`; progress is N candles per stage."""
        raise NotImplementedError
