"""The backtest rules of STRATEGIES.md, pinned on hand-made candles worked out on paper."""

from __future__ import annotations

import numpy as np
import pytest

from tests.strategies.candles import Scripted, candles
from trad.backtest import BacktestEngine
from trad.backtest.engine import TRADE_COLUMNS
from trad.strategies import STRATEGIES
from trad.errors import InvalidInput

NO_FEES = BacktestEngine(fee_rate=0.0)

# A quiet market around 100: every candle opens and closes at 100, range 99–101.
QUIET = (100, 101, 99, 100)


def run(rows, engine=NO_FEES, size=1.0, **script):
    data = candles(rows)
    return engine.run_backtest(data, Scripted(n=len(data), **script), position_size_pct=size)


def only_trade(result):
    assert len(result.trades) == 1, result.trades
    return result.trades.iloc[0]


def test_entry_at_next_open_and_close_at_the_end():
    rows = [(10, 11, 9, 10), (10, 11, 9, 10), (12, 13, 11, 12), (13, 14, 12, 13), (14, 15, 13, 15)]
    result = run(rows, entries=[1])
    trade = only_trade(result)
    assert (trade.entry_index, trade.entry_price) == (2, 12.0)
    assert (trade.exit_index, trade.exit_price, trade.exit_reason) == (4, 15.0, "end")
    assert trade.units == pytest.approx(10_000 / 12)
    assert trade.pnl == pytest.approx(2_500.0)
    assert trade.entry_time == result.trades.entry_time.iloc[0] == candles(rows).timestamp[2]
    assert result.equity.tolist() == pytest.approx([10_000, 10_000, 10_000, 10_000 * 13 / 12, 12_500])


def test_stop_wins_when_stop_and_target_are_in_the_same_candle():
    # entry 100, stop 95, target 100 + 2·5 = 110; candle 2 reaches both 112 and 94.
    rows = [QUIET, QUIET, (100, 112, 94, 105), QUIET]
    trade = only_trade(run(rows, entries=[0], stops={0: 95}, rr_ratio=2.0))
    assert (trade.exit_index, trade.exit_price, trade.exit_reason) == (2, 95.0, "stop")


def test_target_fills_at_target_when_the_candle_opens_below_it():
    rows = [QUIET, QUIET, (101, 111, 99, 104), QUIET]
    trade = only_trade(run(rows, entries=[0], stops={0: 95}, rr_ratio=2.0))
    assert (trade.exit_index, trade.exit_price, trade.exit_reason) == (2, 110.0, "target")


def test_gap_through_the_stop_fills_at_the_open():
    rows = [QUIET, QUIET, (90, 92, 88, 91), QUIET]
    trade = only_trade(run(rows, entries=[0], stops={0: 95}, rr_ratio=2.0))
    assert (trade.exit_price, trade.exit_reason) == (90.0, "stop")


def test_gap_through_the_target_fills_at_the_open():
    rows = [QUIET, QUIET, (115, 118, 113, 116), QUIET]
    trade = only_trade(run(rows, entries=[0], stops={0: 95}, rr_ratio=2.0))
    assert (trade.exit_price, trade.exit_reason) == (115.0, "target")


def test_stop_can_hit_on_the_entry_candle_itself():
    rows = [QUIET, (100, 101, 94, 96), QUIET, QUIET]
    trade = only_trade(run(rows, entries=[0], stops={0: 95}, rr_ratio=2.0))
    assert (trade.entry_index, trade.exit_index, trade.exit_price) == (1, 1, 95.0)


def test_no_trade_when_the_entry_opens_at_or_below_the_stop():
    rows = [QUIET, (94, 101, 93, 100), QUIET, QUIET, QUIET]
    result = run(rows, entries=[0, 2], stops={0: 95, 2: 90}, rr_ratio=2.0)
    assert result.trades.entry_index.tolist() == [3]


def test_max_hold_closes_at_the_close_of_the_last_allowed_candle():
    rows = [QUIET, QUIET, QUIET, (100, 101, 99, 100.5), QUIET, QUIET]
    trade = only_trade(run(rows, entries=[0], max_hold=3))
    assert (trade.entry_index, trade.exit_index) == (1, 3)
    assert (trade.exit_price, trade.exit_reason) == (100.5, "max_hold")
    one = only_trade(run(rows, entries=[2], max_hold=1))
    assert (one.entry_index, one.exit_index, one.exit_price) == (3, 3, 100.5)


def test_exit_signal_fills_at_the_next_open():
    rows = [QUIET, QUIET, QUIET, (102, 103, 101, 102), QUIET]
    trade = only_trade(run(rows, entries=[0], exits=[0, 2]))
    # the exit signal at candle 0 came before the entry; the one at 2 fills at open 3
    assert (trade.exit_index, trade.exit_price, trade.exit_reason) == (3, 102.0, "signal")


def test_exit_signal_on_the_entry_candle_counts():
    rows = [QUIET, QUIET, (102, 103, 101, 102), QUIET]
    trade = only_trade(run(rows, entries=[0], exits=[1]))
    assert (trade.entry_index, trade.exit_index, trade.exit_price) == (1, 2, 102.0)


def test_signal_on_the_last_candle_makes_no_trade():
    rows = [QUIET] * 4
    assert run(rows, entries=[3]).trades.empty
    trade = only_trade(run(rows, entries=[2]))
    assert (trade.entry_index, trade.exit_index, trade.exit_reason) == (3, 3, "end")


def test_signals_during_a_trade_are_ignored_and_a_signal_on_the_exit_candle_reenters():
    rows = [QUIET, QUIET, QUIET, (100, 101, 94, 96), QUIET, QUIET, QUIET]
    result = run(rows, entries=[0, 1, 2, 3], stops={0: 95, 1: 95, 2: 95, 3: 90})
    trades = result.trades
    assert trades.entry_index.tolist() == [1, 4]
    assert trades.exit_index.tolist() == [3, 6]
    assert trades.exit_reason.tolist() == ["stop", "end"]


def test_exit_then_reenter_on_the_exit_signal_candle():
    rows = [QUIET] * 7
    trades = run(rows, entries=[0, 3], exits=[2]).trades
    assert trades.entry_index.tolist() == [1, 4]
    assert trades.exit_index.tolist() == [3, 6]


def test_fees_and_sizing():
    # half the equity, 0.1 % per side: units = 5000 / (100 · 1.001); exit at 110 · 0.999.
    rows = [QUIET, QUIET, (104, 111, 103, 110), (110, 111, 109, 110)]
    result = run(rows, engine=BacktestEngine(fee_rate=0.001), size=0.5, entries=[0])
    trade = only_trade(result)
    units = 5_000 / (100 * 1.001)
    assert trade.units == pytest.approx(units)
    assert trade.pnl == pytest.approx(units * 110 * 0.999 - 5_000)
    assert trade.return_pct == pytest.approx(trade.pnl / 5_000)
    assert result.equity[1] == pytest.approx(5_000 + units * 100)
    assert result.equity[2] == pytest.approx(5_000 + units * 110)
    assert result.equity[3] == pytest.approx(5_000 + units * 110 * 0.999)


def test_slippage_moves_fills_against_the_trader_and_the_target_follows_the_fill():
    rows = [QUIET, QUIET, (100, 120, 99, 104), QUIET]
    engine = BacktestEngine(fee_rate=0.0, slippage=0.01)
    trade = only_trade(run(rows, engine=engine, entries=[0], stops={0: 95}, rr_ratio=2.0))
    assert trade.entry_price == pytest.approx(101.0)
    # target = 101 + 2 · (101 − 95) = 113, sold at 113 · 0.99
    assert trade.exit_price == pytest.approx(113 * 0.99)


def test_stop_distance_is_measured_from_the_entry_price():
    rows = [QUIET, QUIET, (100, 101, 96.5, 97), QUIET]
    trade = only_trade(run(rows, entries=[0], stop_distances={0: 3.0}))
    assert (trade.exit_price, trade.exit_reason) == (97.0, "stop")


def test_metrics_of_one_winning_trade():
    rows = [(10, 11, 9, 10), (10, 11, 9, 10), (12, 13, 11, 12), (13, 14, 12, 13), (14, 15, 13, 15)]
    metrics = run(rows, entries=[1]).metrics
    assert metrics["total_return"] == pytest.approx(0.25)
    assert metrics["n_trades"] == 1 and isinstance(metrics["n_trades"], int)
    assert metrics["win_rate"] == 1.0
    assert metrics["profit_factor"] == float("inf")
    assert metrics["exposure"] == pytest.approx(3 / 5)
    assert metrics["max_drawdown"] == 0.0
    assert all(isinstance(v, (int, float)) and not np.isnan(v) for v in metrics.values())


def test_no_trades_gives_zero_metrics():
    metrics = run([QUIET] * 5, entries=[]).metrics
    assert metrics["n_trades"] == 0
    assert metrics["profit_factor"] == 0.0
    assert metrics["sharpe"] == metrics["sortino"] == metrics["calmar"] == metrics["sqn"] == 0.0


@pytest.mark.parametrize("kwargs", [{"fee_rate": -0.1}, {"slippage": 2}, {"initial_equity": 0},
                                    {"fee_rate": float("nan")}, {"fee_rate": True}])
def test_engine_settings_are_checked(kwargs):
    with pytest.raises(InvalidInput):
        BacktestEngine(**kwargs)


@pytest.mark.parametrize("size", [0, 1.5, -1, float("nan")])
def test_position_size_must_be_in_zero_one(size):
    data = candles([QUIET] * 3)
    with pytest.raises(InvalidInput) as error:
        NO_FEES.run_backtest(data, Scripted(entries=[0], n=3), position_size_pct=size)
    assert error.value.details[0]["field"] == "position_size_pct"


def test_candles_must_have_the_columns():
    data = candles([QUIET] * 3).drop(columns=["volume"])
    with pytest.raises(InvalidInput, match="volume"):
        NO_FEES.run_backtest(data, Scripted(entries=[0], n=3))


@pytest.mark.parametrize("n", [1, 2, 15])
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_too_few_candles_for_any_signal_is_a_quiet_backtest(n, name):
    result = NO_FEES.run_backtest(candles([QUIET] * n), STRATEGIES[name]())
    assert result.trades.empty and list(result.trades.columns) == list(TRADE_COLUMNS)
    assert result.equity.tolist() == [10_000.0] * n
    assert result.metrics["n_trades"] == 0 and result.metrics["total_return"] == 0.0
