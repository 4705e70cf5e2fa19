"""Metrics as pure functions: hand-computed values and the undefined cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from trad.backtest import metrics as m


def test_candles_per_year():
    assert m.candles_per_year("5m") == 105_120
    assert m.candles_per_year("1d") == 365
    stamps = pd.date_range("2024-01-01", periods=50, freq="1h", tz="UTC")
    assert m.candles_per_year(timestamps=pd.Series(stamps)) == 8_760
    assert m.candles_per_year(timestamps=stamps[:1]) == 1.0
    for unit in ("s", "ms", "us", "ns"):  # the spacing in seconds, whatever the stored resolution
        per_year = m.candles_per_year(timestamps=pd.Series(stamps).astype(f"datetime64[{unit}, UTC]"))
        assert per_year == 8_760 and type(per_year) is float
    assert m.candles_per_year(timestamps=list(stamps[:5])) == 8_760
    with pytest.raises(ValueError):
        m.candles_per_year("7m")


def test_returns_and_total_return():
    equity = np.array([100.0, 110.0, 99.0, 99.0])
    assert m.candle_returns(equity).tolist() == pytest.approx([0.1, -0.1, 0.0])
    assert m.total_return(equity, 100.0) == pytest.approx(-0.01)


def test_sharpe_and_sortino_by_hand():
    returns = np.array([0.02, -0.01, 0.02, -0.01])
    # mean 0.005, sample std = sqrt(4 · 0.015² / 3)
    assert m.sharpe(returns, 4) == pytest.approx(0.005 / math.sqrt(0.0009 / 3) * 2)
    # downside deviation = sqrt((0.01² + 0.01²) / 4)
    assert m.sortino(returns, 4) == pytest.approx(0.005 / math.sqrt(0.0002 / 4) * 2)


def test_undefined_ratios_are_zero_or_inf_never_nan():
    flat = np.zeros(10)
    assert m.sharpe(flat, 100) == m.sortino(flat, 100) == 0.0
    assert m.sharpe(np.array([0.01]), 100) == 0.0
    assert m.sortino(np.array([0.01, 0.02]), 100) == math.inf
    assert m.sharpe(np.array([0.01, 0.01 + 1e-17]), 100) == 0.0


def test_max_drawdown():
    assert m.max_drawdown(np.array([100.0, 120.0, 90.0, 130.0, 117.0])) == pytest.approx(0.25)
    assert m.max_drawdown(np.array([100.0, 101.0, 102.0])) == 0.0
    assert m.max_drawdown(np.array([])) == 0.0


def test_calmar_and_annualised_return():
    equity = np.array([100.0, 105.0, 110.0])
    assert m.annualised_return(equity, 100.0, 2) == pytest.approx(0.1)
    assert m.calmar(0.1, 0.05) == pytest.approx(2.0)
    assert m.calmar(0.1, 0.0) == math.inf
    assert m.calmar(-0.1, 0.0) == 0.0
    assert m.annualised_return(np.array([100.0, 1e6]), 100.0, 105_120) == math.inf


def test_trade_statistics():
    pnl = np.array([10.0, -5.0, 20.0, -5.0])
    assert m.win_rate(pnl) == 0.5
    assert m.profit_factor(pnl) == 3.0
    assert m.profit_factor(np.array([1.0, 2.0])) == math.inf
    assert m.profit_factor(np.array([])) == m.win_rate(np.array([])) == 0.0
    returns = np.array([0.02, -0.01, 0.03])
    assert m.sqn(returns) == pytest.approx(math.sqrt(3) * returns.mean() / returns.std(ddof=1))
    assert m.sqn(np.array([0.02])) == 0.0
    assert m.average_trade_return(returns) == pytest.approx(0.04 / 3)


def test_exposure_counts_entry_through_exit_candles():
    assert m.exposure(np.array([1, 5]), np.array([3, 5]), 10) == pytest.approx(0.4)
