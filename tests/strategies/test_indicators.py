"""Indicators against their definitions."""

from __future__ import annotations

import numpy as np
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
            assert sums[t] == x[t - window + 1:t + 1].sum()


def test_window_sums_do_not_drift_over_a_long_series():
    x = 50_000 + np.random.default_rng(3).random(300_000)
    means = window_mean(x, 50)
    assert means[-1] == x[-50:].sum() / 50


def test_true_range_uses_the_previous_close():
    high, low, close = np.array([11.0, 12, 10]), np.array([9.0, 11, 8]), np.array([10.0, 11.5, 9])
    assert true_range(high, low, close).tolist() == [2.0, 2.0, 3.5]


def test_shift():
    assert shift(np.array([1.0, 2, 3])).tolist()[1:] == [1.0, 2.0]
    assert np.isnan(shift(np.array([1.0]))).all()
