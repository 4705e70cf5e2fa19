"""Backtesting: the engine and the metrics it reports."""

from trad.backtest.engine import BacktestEngine, BacktestResult

__all__ = ["BacktestEngine", "BacktestResult"]
