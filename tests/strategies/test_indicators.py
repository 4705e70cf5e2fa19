"""Indicators against their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from trad.strategies.indicators import shift, true_range, window_mean, window_min, window_sum

values = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=80).map(np.array)


@settings(max_examples=150, deadline=None)
@given(values, st.integers(1, 30))
def test_window_min_and_sum_are_the_plain_window_values(x, window):
    mins, sums = window_min(x, window), window_sum(x, window)
    for t in range(len(x)):
        if t < window - 1:
            assert np.isnan(mins[t]) and np.isnan(sums[t])
        else:
            assert mins[t] == x[t - window + 1:t + 1].min()
            exact = math.fsum(x[t - window + 1:t + 1])
            assert sums[t] == pytest.approx(exact, rel=1e-12, abs=1e-9 * window)


def test_window_sums_do_not_drift_over_a_long_series():
    x = 50_000 + np.random.default_rng(3).random(1_000_000)
    sums = window_sum(x, 50)
    for t in (49, 500_000, 999_999):
        assert abs(sums[t] - math.fsum(x[t - 49:t + 1])) <= 4 * np.spacing(sums[t])
    assert window_mean(np.full(1_000, 0.1), 7)[6:].tolist() == [window_sum(np.full(7, 0.1), 7)[-1] / 7] * 994


def test_whole_numbers_sum_exactly():
    x = np.arange(1_000, dtype=float)
    assert window_sum(x, 13)[12:].tolist() == [float(sum(range(t - 12, t + 1))) for t in range(12, 1_000)]


def test_true_range_uses_the_previous_close():
    high, low, close = np.array([11.0, 12, 10]), np.array([9.0, 11, 8]), np.array([10.0, 11.5, 9])
    assert true_range(high, low, close).tolist() == [2.0, 2.0, 3.5]


def test_shift():
    assert shift(np.array([1.0, 2, 3])).tolist()[1:] == [1.0, 2.0]
    assert np.isnan(shift(np.array([1.0]))).all()
