"""Curves and candles made small enough to draw: LTTB keeps the shape and the extremes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from trad.backtest.downsample import (MAX_POINTS, candle_bars, drawdown, equity_extremes, equity_points,
                                      lttb_indices)


def walk(n: int, seed: int = 1) -> np.ndarray:
    return 10_000 + np.cumsum(np.random.default_rng(seed).normal(0, 10, n))


def test_a_short_curve_is_kept_whole():
    assert lttb_indices(np.arange(5.0), 10).tolist() == [0, 1, 2, 3, 4]
    assert lttb_indices(np.arange(10.0), 10).tolist() == list(range(10))
    with pytest.raises(ValueError):
        lttb_indices(np.arange(10.0), 2)


def test_lttb_keeps_first_last_one_point_per_bucket_in_order():
    y = walk(100_000)
    chosen = lttb_indices(y, 500)
    assert len(chosen) == 500 and chosen[0] == 0 and chosen[-1] == len(y) - 1
    assert np.all(np.diff(chosen) > 0)
    edges = np.floor(np.linspace(1, len(y) - 1, 499)).astype(int)
    assert np.all(np.searchsorted(edges, chosen[1:-1], side="right") - 1 == np.arange(498))


def test_lttb_picks_the_spike_of_its_bucket():
    y = np.zeros(1_000)
    y[437] = 50.0
    y[803] = -20.0
    chosen = lttb_indices(y, 20)
    assert 437 in chosen and 803 in chosen


def test_lttb_chooses_the_largest_triangle_as_worked_out_by_hand():
    # 7 points, 4 kept: buckets [1, 3) and [3, 6); the first bucket's point 2 is far off the line
    # from 0 to the next bucket's mean, the second bucket's point 4 far off the line to the last point.
    y = np.array([0.0, 1.0, 9.0, 2.0, -8.0, 1.0, 0.0])
    assert lttb_indices(y, 4).tolist() == [0, 2, 4, 6]


def test_points_named_to_keep_are_kept_within_the_budget():
    y = walk(50_000, seed=3)
    keep = [17, 25_001, 49_998]
    chosen = lttb_indices(y, 300, keep=keep)
    assert len(chosen) <= 300 and set(keep) <= set(chosen.tolist())


def test_the_drawing_of_an_equity_keeps_its_extremes_and_deepest_drawdown():
    equity = walk(1_000_000, seed=7)
    chosen = equity_points(equity)
    assert len(chosen) <= MAX_POINTS
    falls = drawdown(equity)
    assert equity[chosen].max() == equity.max() and equity[chosen].min() == equity.min()
    assert falls[chosen].max() == falls.max()
    trough = int(np.argmax(falls))
    assert set(equity_extremes(equity)) == {int(np.argmax(equity)), int(np.argmin(equity)), trough,
                                            int(np.argmax(equity[:trough + 1]))}


def test_drawdown_is_the_fall_from_the_running_peak():
    assert drawdown(np.array([100.0, 120.0, 90.0, 130.0, 65.0])).tolist() == pytest.approx([0, 0, 0.25, 0, 0.5])
    assert drawdown(np.zeros(0)).tolist() == []


def test_a_million_points_are_drawn_from_in_well_under_a_second():
    equity = walk(1_000_000, seed=2)
    started = time.process_time()
    equity_points(equity)
    assert time.process_time() - started < 1.0  # 25–40 ms on an idle machine; CPU time, so load cannot fail it


def test_candles_merge_into_bars_of_first_open_extremes_last_close_summed_volume():
    times = np.arange(10) * 300
    o, h, l, c = (np.arange(10, dtype=float) + k for k in (0.0, 2.0, -2.0, 1.0))
    v = np.ones(10)
    bars = candle_bars(times, o, h, l, c, v, max_bars=4)
    assert bars["per_bar"] == 3
    assert bars["time"].tolist() == [0, 900, 1800, 2700]
    assert bars["open"].tolist() == [0, 3, 6, 9] and bars["close"].tolist() == [3, 6, 9, 10]
    assert bars["high"].tolist() == [4, 7, 10, 11] and bars["low"].tolist() == [-2, 1, 4, 7]
    assert bars["volume"].tolist() == [3, 3, 3, 1]
    assert candle_bars(times, o, h, l, c, v, max_bars=10)["per_bar"] == 1
