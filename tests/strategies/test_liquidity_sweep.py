"""liquidity_sweep rules on hand-made candles.

History: 20 quiet candles (open 100, high 101, low 99, close 100, volume 10), so at
candle 20 with key_level_lookback=10: key_low = 99, vol_mean = 10, and every TR = 2.
A sweep candle (100, 100, 96, c, 30) has TR 4, ATR = (13·2 + 4)/14 ≈ 2.143, so
with pierce_depth 0.5 it must reach 99 − 1.07 = 97.93 (96 does) on volume ≥ 2·10 (30 does).
"""

from __future__ import annotations

import numpy as np

from tests.strategies.candles import candles
from trad.backtest import BacktestEngine
from trad.strategies import LiquiditySweep

QUIET = (100, 101, 99, 100, 10)
PARAMS = dict(key_level_lookback=10, pierce_depth=0.5, volume_spike_threshold=2.0,
              reversal_candles=3, rr_ratio=2.0, max_hold_candles=6)


def signals(rows, **overrides):
    strategy = LiquiditySweep(**{**PARAMS, **overrides})
    return strategy.generate_signals(candles(rows))


def signal_at(sig) -> list[int]:
    return np.flatnonzero(sig.entries).tolist()


def test_reversal_after_a_sweep_signals_with_the_lowest_low_as_stop():
    rows = [QUIET] * 20 + [(100, 100, 96, 98, 30), (98, 100, 97, 99.5, 10), QUIET, QUIET]
    sig = signals(rows)
    assert signal_at(sig) == [21]
    assert sig.stops[21] == 96.0
    assert (sig.rr_ratio, sig.max_hold) == (2.0, 6)


def test_reversal_can_happen_on_the_sweep_candle_itself():
    rows = [QUIET] * 20 + [(100, 100, 96, 99.5, 30), QUIET, QUIET]
    sig = signals(rows)
    assert signal_at(sig) == [20]
    assert sig.stops[20] == 96.0


def test_one_signal_per_sweep():
    rows = [QUIET] * 20 + [(100, 100, 96, 98, 30), (98, 100, 97, 99.5, 10), (99.5, 101, 99, 100, 10)]
    assert signal_at(signals(rows)) == [21]


def test_no_volume_spike_no_sweep():
    rows = [QUIET] * 20 + [(100, 100, 96, 98, 19.9), (98, 100, 97, 99.5, 10), QUIET]
    assert signal_at(signals(rows)) == []


def test_not_deep_enough_no_sweep():
    # TR 1.9, ATR = (13·2 + 1.9)/14 ≈ 1.993: a sweep needs a low ≤ 98.004; 98.1 is not
    rows = [QUIET] * 20 + [(100, 100, 98.1, 98.5, 30), (98.5, 100, 98.2, 99.5, 10), QUIET]
    assert signal_at(signals(rows)) == []


def test_the_reversal_window_expires():
    rows = [QUIET] * 20 + [(100, 100, 96, 98, 30), (98, 99, 97, 98.5, 10),
                           (98.5, 100, 98, 99.5, 10), QUIET]
    assert signal_at(signals(rows, reversal_candles=2)) == []
    assert signal_at(signals(rows, reversal_candles=3)) == [22]


def test_a_new_sweep_replaces_the_pending_one():
    # Candle 21 sweeps again (key_low is now 96): the pending level becomes 96, so the
    # close of 97 at candle 22 signals although it is below the first level of 99.
    rows = [QUIET] * 20 + [(100, 100, 96, 98, 30), (98, 98, 94, 95, 30),
                           (95, 98, 95, 97, 10), QUIET, QUIET]
    sig = signals(rows)
    assert signal_at(sig) == [22]
    assert sig.stops[22] == 94.0


def test_candles_before_the_history_cannot_signal():
    rows = [QUIET] * 20 + [(100, 100, 96, 98, 30), (98, 100, 97, 99.5, 10), QUIET]
    strategy = LiquiditySweep(**{**PARAMS, "key_level_lookback": 30})
    assert strategy.min_history == 30
    assert LiquiditySweep(**PARAMS).min_history == 20
    assert signal_at(strategy.generate_signals(candles(rows))) == []


def test_the_sweep_trade_through_the_engine():
    # Entry at the open of 22 (100), stop 96, target 100 + 2·4 = 108, reached at candle 24.
    rows = [QUIET] * 20 + [(100, 100, 96, 98, 30), (98, 100, 97, 99.5, 10), QUIET,
                           (100, 104, 99, 103, 10), (103, 109, 102, 108, 10), QUIET]
    trades = BacktestEngine(fee_rate=0).run_backtest(candles(rows), LiquiditySweep(**PARAMS)).trades
    assert trades[["entry_index", "entry_price", "exit_index", "exit_price"]].values.tolist() == [
        [22, 100.0, 24, 108.0]]
    assert trades.exit_reason.tolist() == ["target"]


def test_the_sweep_trade_is_held_at_most_max_hold_candles():
    rows = [QUIET] * 20 + [(100, 100, 96, 98, 30), (98, 100, 97, 99.5, 10)] + [QUIET] * 8
    trade = BacktestEngine(fee_rate=0).run_backtest(candles(rows), LiquiditySweep(**PARAMS)).trades
    assert trade[["entry_index", "exit_index", "exit_reason"]].values.tolist() == [
        [22, 27, "max_hold"]]
