"""Properties on random candles: the engine equals a slow per-candle reference and never peeks.

Random prices are whole numbers, so window sums are exact whatever their order and the
reference takes the same float path as the engine: trades must agree exactly, money and
metrics to rounding.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from hypothesis import (HealthCheck, assume, currently_in_test_context, event, given, settings,
                        strategies as st)

from tests.backtest.reference import (reference_backtest, reference_liquidity_sweep, reference_metrics,
                                      reference_rsi, reference_rsi_reversion, reference_sma_crossover)
from tests.strategies.candles import Scripted, candles
from trad.backtest import BacktestEngine, simulation
from trad.backtest.metrics import candles_per_year
from trad.data.synthetic import synthetic_candles
from trad.strategies import LiquiditySweep, RsiReversion, SmaCrossover
from trad.strategies.indicators import wilder_rsi

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIVE_MINUTES = candles_per_year("5m")


@st.composite
def candle_frames(draw, min_size=2, max_size=120):
    """Random whole-number candles: a walk of closes, gaps at the open, wicks, volumes."""
    n = draw(st.integers(min_size, max_size))
    ints = lambda lo, hi: st.lists(st.integers(lo, hi), min_size=n, max_size=n)  # noqa: E731
    moves, gaps, upper, lower, volume = (draw(ints(-4, 4)), draw(ints(-2, 2)), draw(ints(0, 3)),
                                         draw(ints(0, 3)), draw(ints(1, 12)))
    spikes = np.array(draw(st.lists(st.sampled_from([0, 0, 0, 0, 0, 0, 1, 2]),
                                    min_size=n, max_size=n)))
    close = np.maximum(draw(st.integers(20, 60)) + np.cumsum(moves), 5)
    open_ = np.maximum(np.concatenate(([close[0]], close[:-1])) + gaps, 4)
    high = np.maximum(open_, close) + upper
    low = np.maximum(np.minimum(open_, close) - lower - 3 * spikes, 1)
    volume = np.array(volume) * (1 + 2 * spikes)
    return candles(zip(open_, high, low, close, volume))


@st.composite
def scripted_signals(draw, n):
    """Random entries, exits, stops, distances, targets and max hold for n candles."""
    flags = lambda p: st.lists(st.floats(0, 1), min_size=n, max_size=n).map(  # noqa: E731
        lambda u: np.array(u) < p)
    entries, exits = draw(flags(0.3)), draw(flags(draw(st.sampled_from([0.0, 0.1, 0.3]))))
    stops = stop_distances = None
    if draw(st.booleans()):
        stops = np.array(draw(st.lists(st.integers(0, 80), min_size=n, max_size=n)), dtype=float)
    if draw(st.booleans()):
        stop_distances = np.array(draw(st.lists(st.integers(1, 6), min_size=n, max_size=n)), float)
    rr = draw(st.sampled_from([None, 1.0, 2.5]))
    hold = draw(st.sampled_from([None, 1, 3, 10]))
    return dict(entries=entries, exits=exits if exits.any() else None, stops=stops,
                stop_distances=stop_distances, rr_ratio=rr, max_hold=hold)


def engine_settings():
    return st.tuples(st.sampled_from([0.0, 0.0005, 0.01]), st.sampled_from([0.0, 0.001]),
                     st.sampled_from([1.0, 0.5, 0.25]))


SCAN_MODES = {
    "default": None,
    "several vectorised passes": (2, 3, simulation.MAX_CELLS),   # widths 2, 16, 128 …
    "trade by trade": (2, 3, 12),                                # past 2 candles, one by one
}


@contextmanager
def scan_mode(mode: str):
    """Shrink the exit search so that every code path of it runs on small data."""
    saved = simulation.SCAN, simulation.BATCH, simulation.MAX_CELLS
    if SCAN_MODES[mode]:
        simulation.SCAN, simulation.BATCH, simulation.MAX_CELLS = SCAN_MODES[mode]
    try:
        yield
    finally:
        simulation.SCAN, simulation.BATCH, simulation.MAX_CELLS = saved


TRADE_KEYS = ("entry_index", "exit_index", "entry_price", "exit_price", "exit_reason")


def assert_same_backtest(result, trades, equity, initial=10_000.0):
    """Engine result == reference: trades exactly, money and metrics to rounding."""
    got = result.trades.to_dict("records")
    if currently_in_test_context():
        event(f"trades: {min(len(got), 3)}{'+' if len(got) >= 3 else ''}")
        event(f"exit reasons: {sorted(set(t['exit_reason'] for t in got))}")
    assert [tuple(t[k] for k in TRADE_KEYS) for t in got] == \
        [tuple(t[k] for k in TRADE_KEYS) for t in trades]
    for mine, theirs in zip(got, trades):
        for key in ("units", "pnl", "return_pct"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-12, abs=1e-9)
    assert result.equity.tolist() == pytest.approx(equity, rel=1e-12)
    assert (result.equity >= 0).all()
    expected = reference_metrics(trades, equity, initial, FIVE_MINUTES)
    for key, value in result.metrics.items():
        assert not math.isnan(value), key
        assert value == pytest.approx(expected[key], rel=1e-7, abs=1e-9), key


@SETTINGS
@given(st.data(), candle_frames(), engine_settings(), st.sampled_from(sorted(SCAN_MODES)))
def test_engine_equals_the_reference_on_any_signals(data, frame, costs, mode):
    fee, slippage, size = costs
    script = data.draw(scripted_signals(len(frame)))
    strategy = Scripted(n=len(frame), **script)
    engine = BacktestEngine(fee_rate=fee, slippage=slippage)
    with scan_mode(mode):
        result = engine.run_backtest(frame, strategy, size)
    trades, equity = reference_backtest(frame, strategy.signals, fee, slippage, size=size)
    assert_same_backtest(result, trades, equity)


sweep_params = st.fixed_dictionaries({
    "key_level_lookback": st.integers(10, 30), "pierce_depth": st.sampled_from([0.05, 0.15, 0.5]),
    "volume_spike_threshold": st.sampled_from([1.0, 1.5, 2.5]), "reversal_candles": st.integers(1, 4),
    "rr_ratio": st.sampled_from([1.0, 2.0, 3.5]), "max_hold_candles": st.integers(6, 20)})


@SETTINGS
@given(candle_frames(min_size=20), sweep_params)
def test_liquidity_sweep_equals_the_reference(frame, params):
    mine = LiquiditySweep(**params).generate_signals(frame)
    theirs = reference_liquidity_sweep(frame, **params)
    assert mine.entries.tolist() == theirs.entries.tolist()
    assert np.array_equal(mine.stops[mine.entries], theirs.stops[theirs.entries])
    result = BacktestEngine().run_backtest(frame, LiquiditySweep(**params))
    assert_same_backtest(result, *reference_backtest(frame, theirs))


@SETTINGS
@given(candle_frames(min_size=20), st.integers(5, 12), st.integers(20, 30))
def test_sma_crossover_equals_the_reference(frame, fast, slow):
    mine = SmaCrossover(fast=fast, slow=slow).generate_signals(frame)
    theirs = reference_sma_crossover(frame, fast, slow)
    assert mine.entries.tolist() == theirs.entries.tolist()
    assert mine.exits.tolist() == theirs.exits.tolist()
    result = BacktestEngine().run_backtest(frame, SmaCrossover(fast=fast, slow=slow))
    assert_same_backtest(result, *reference_backtest(frame, theirs))


@SETTINGS
@given(candle_frames(min_size=3), st.integers(2, 20), st.sampled_from([20.0, 30.0]),
       st.sampled_from([60.0, 70.0]), st.sampled_from([0.5, 2.0]))
def test_rsi_reversion_equals_the_reference(frame, period, oversold, overbought, stop_atr):
    close = frame["close"].to_numpy()
    expected_rsi = reference_rsi(close, period)
    assert np.allclose(wilder_rsi(close, period), expected_rsi, rtol=0, atol=1e-9, equal_nan=True)
    # a threshold within rounding of an RSI value could go either way: not a rule question
    assume(not np.any(np.abs(expected_rsi[~np.isnan(expected_rsi)][:, None]
                             - np.array([oversold, overbought])) < 1e-9))
    params = dict(period=period, oversold=oversold, overbought=overbought, stop_atr=stop_atr)
    mine = RsiReversion(**params).generate_signals(frame)
    theirs = reference_rsi_reversion(frame, **params)
    assert mine.entries.tolist() == theirs.entries.tolist()
    assert mine.exits.tolist() == theirs.exits.tolist()
    assert np.array_equal(mine.stop_distances, theirs.stop_distances, equal_nan=True)
    result = BacktestEngine().run_backtest(frame, RsiReversion(**params))
    assert_same_backtest(result, *reference_backtest(frame, theirs))


@SETTINGS
@given(st.data(), candle_frames(min_size=25), sweep_params)
def test_no_trade_uses_a_future_candle(data, frame, params):
    cut = data.draw(st.integers(1, len(frame) - 1))
    engine = BacktestEngine()
    for strategy in (LiquiditySweep(**params), SmaCrossover(fast=5, slow=20),
                     RsiReversion(period=3)):
        full = engine.run_backtest(frame, strategy)
        part = engine.run_backtest(frame.iloc[:cut + 1], strategy)
        closed = lambda r: r.trades[r.trades.exit_index < cut].reset_index(drop=True)  # noqa: E731
        pd.testing.assert_frame_equal(closed(full), closed(part))
        assert full.equity[:cut].tolist() == part.equity[:cut].tolist()


@pytest.mark.parametrize("seed", [1, 2])
def test_engine_equals_the_reference_on_long_data_with_long_trades(seed):
    """Thousands of candidates and trades far longer than one scan: batches and long trades."""
    frame = synthetic_candles(6_000, seed=seed)
    rng = np.random.default_rng(seed)
    close = frame["close"].to_numpy()
    script = dict(entries=rng.random(6_000) < 0.4, exits=rng.random(6_000) < 0.002,
                  stops=close * (1 - rng.choice([0.002, 0.05], 6_000)), rr_ratio=3.0,
                  max_hold=None if seed == 1 else 700)
    strategy = Scripted(n=6_000, **script)
    result = BacktestEngine().run_backtest(frame, strategy)
    assert (result.trades.exit_index - result.trades.entry_index).max() > 4 * simulation.SCAN
    assert_same_backtest(result, *reference_backtest(frame, strategy.signals))
