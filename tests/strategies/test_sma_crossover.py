"""sma_crossover on hand-made closes (fast 5, slow 20): crossings are strict on both sides."""

from __future__ import annotations

import numpy as np
import pytest

from tests.strategies.candles import candles
from trad.backtest import BacktestEngine
from trad.errors import InvalidInput
from trad.strategies import SmaCrossover


def frame(closes):
    return candles([(c, c, c, c) for c in closes])


def crossings(closes, fast=5, slow=20):
    sig = SmaCrossover(fast=fast, slow=slow).generate_signals(frame(closes))
    return np.flatnonzero(sig.entries).tolist(), np.flatnonzero(sig.exits).tolist()


def test_cross_above_enters_and_cross_below_exits():
    # t=20: fast (4·100+99)/5 = 99.8 < slow (19·100+99)/20 = 99.95
    # t=21: fast 100.2 > slow 100.05 → entry;  t=22: fast 99.2 < slow 99.8 → exit
    closes = [100] * 20 + [99, 102, 95, 95]
    assert crossings(closes) == ([21], [22])


def test_leaving_equality_is_not_a_crossing():
    # both averages are exactly 100 at t=21; at t=22 fast is above, but it was not below before
    assert crossings([100] * 22 + [101, 101]) == ([], [])


def test_touching_then_rising_is_not_a_crossing():
    # t=20 fast below; t=21 close 105 makes fast = slow = 100 exactly; t=22 fast above
    closes = [100] * 20 + [95, 105, 110, 110]
    assert crossings(closes) == ([], [])


def test_the_first_slow_candles_cannot_signal():
    assert SmaCrossover(fast=5, slow=20).min_history == 20
    # slow exists from t=19, so the first crossing can be seen at t=20, not at t=19
    assert crossings([100] * 18 + [99, 102, 102]) == ([], [])
    assert crossings([100] * 19 + [99, 102]) == ([20], [])


def test_long_while_fast_is_above_through_the_engine():
    closes = [100] * 20 + [99, 102, 103, 95, 95]
    trades = BacktestEngine(fee_rate=0).run_backtest(frame(closes), SmaCrossover(fast=5, slow=20)).trades
    assert trades[["entry_index", "exit_index", "exit_reason"]].values.tolist() == [[22, 24, "signal"]]


def test_fast_must_be_below_slow():
    with pytest.raises(InvalidInput) as error:
        SmaCrossover(fast=30, slow=30)
    assert error.value.details == [{"field": "params", "issue": "fast must be < slow (got fast=30, slow=30)"}]
    assert SmaCrossover.constraint_violation({"fast": 10, "slow": 50}) is None
