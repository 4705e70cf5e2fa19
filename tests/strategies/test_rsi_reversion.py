"""rsi_reversion and Wilder's RSI on hand-made closes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.strategies.candles import candles
from trad.backtest import BacktestEngine
from trad.strategies import RsiReversion
from trad.strategies.indicators import wilder_rsi

# Period 2: the first 16 closes alternate 100/101 (RSI swings 33–67), then a drop.
CLOSES = [100, 101] * 8 + [97, 96, 97, 99, 102, 104, 103]
PARAMS = dict(period=2, oversold=30.0, overbought=70.0, stop_atr=2.0)


def test_wilder_rsi_by_hand():
    # changes +1 −1 +2 −1 0; seed at t=3: gain 1, loss 1/3 → 75;
    # t=4: gain 2/3, loss 5/9 → 600/11; t=5: gain 4/9, loss 10/27 → 600/11
    rsi = wilder_rsi(np.array([10, 11, 10, 12, 11, 11], dtype=float), 3)
    assert np.isnan(rsi[:3]).all()
    assert rsi[3:].tolist() == pytest.approx([75.0, 600 / 11, 600 / 11])


def test_rsi_of_a_flat_and_of_a_rising_market():
    assert wilder_rsi(np.full(6, 5.0), 3)[3:].tolist() == [50.0] * 3
    assert wilder_rsi(np.arange(6, dtype=float), 3)[3:].tolist() == [100.0] * 3


def test_crossing_below_oversold_enters_and_rising_above_overbought_exits():
    rsi = wilder_rsi(np.array(CLOSES, dtype=float), 2)
    assert rsi[15] == pytest.approx(66.669, abs=1e-3) and rsi[16] == pytest.approx(13.334, abs=1e-3)
    sig = RsiReversion(**PARAMS).generate_signals(candles([(c, c, c, c) for c in CLOSES]))
    # candle 17 is still below oversold but did not cross; 3 is above 70 (no position then)
    assert np.flatnonzero(sig.entries).tolist() == [16]
    assert np.flatnonzero(sig.exits).tolist() == [3, 19, 20, 21]
    # ATR_16 = (13·1 + 4)/14, stop 2 ATR below the entry
    assert sig.stop_distances[16] == pytest.approx(2 * 17 / 14)


def test_the_trade_through_the_engine():
    data = candles([(c, c, c, c) for c in CLOSES])
    trades = BacktestEngine(fee_rate=0).run_backtest(data, RsiReversion(**PARAMS)).trades
    assert trades[["entry_index", "entry_price", "exit_index", "exit_price", "exit_reason"]
                  ].values.tolist() == [[17, 96.0, 20, 102.0, "signal"]]


def test_the_stop_sits_stop_atr_below_the_entry():
    closes = CLOSES[:18] + [93, 99, 102]
    data = candles([(c, c, c, c) for c in closes])
    trade = BacktestEngine(fee_rate=0).run_backtest(data, RsiReversion(**PARAMS)).trades.iloc[0]
    # entry 96, stop 96 − 34/14 ≈ 93.57; candle 18 opens at 93, through the stop
    assert (trade.exit_index, trade.exit_price, trade.exit_reason) == (18, 93.0, "stop")


def test_min_history_covers_the_atr():
    assert RsiReversion(period=2).min_history == 14
    assert RsiReversion(period=20).min_history == 21
