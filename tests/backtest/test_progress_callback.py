"""Candle progress of a backtest: two stages, few calls, cancellation at once."""

from __future__ import annotations

import pytest

from trad.backtest import BacktestEngine
from trad.data.synthetic import synthetic_candles
from trad.errors import Cancelled
from trad.strategies import STRATEGIES, LiquiditySweep
from trad.strategies import progress as stage_progress

N = 20_000


@pytest.fixture(scope="module")
def data():
    return synthetic_candles(N, seed=11)


@pytest.fixture
def every_boundary(monkeypatch):
    """No time throttle: every 1 % boundary crossed is reported."""
    monkeypatch.setattr(stage_progress, "MIN_INTERVAL", 0.0)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_signals_then_trades_each_from_zero_to_n(data, name, every_boundary):
    calls = []
    BacktestEngine().run_backtest(data, STRATEGIES[name](), progress_callback=lambda *c: calls.append(c))
    stages = [s for _, _, s in calls]
    assert stages == sorted(stages, key=["signals", "trades"].index)
    for stage in ("signals", "trades"):
        mine = [(d, t) for d, t, s in calls if s == stage]
        assert mine[0] == (0, N) and mine[-1] == (N, N)
        assert 2 <= len(mine) <= 102
        dones = [d for d, _ in mine]
        assert dones == sorted(set(dones))


def test_trades_stage_reports_as_the_simulation_moves(data, every_boundary):
    calls = []
    BacktestEngine().run_backtest(data, LiquiditySweep(), progress_callback=lambda *c: calls.append(c))
    assert len([c for c in calls if c[2] == "trades"]) > 10


def test_a_fast_backtest_calls_only_at_the_ends_of_each_stage(data):
    calls = []
    BacktestEngine().run_backtest(data.iloc[:2_000], LiquiditySweep(),
                                  progress_callback=lambda *c: calls.append(c))
    assert calls[0] == (0, 2_000, "signals") and calls[-1] == (2_000, 2_000, "trades")
    assert len(calls) <= 8


@pytest.mark.parametrize("stop_at", [1, 2, 3, 5])
def test_cancelled_propagates_at_once(data, stop_at, every_boundary):
    calls = []

    def callback(done, total, stage):
        calls.append((done, stage))
        if len(calls) == stop_at:
            raise Cancelled("stop requested")

    with pytest.raises(Cancelled):
        BacktestEngine().run_backtest(data, LiquiditySweep(), progress_callback=callback)
    assert len(calls) == stop_at
