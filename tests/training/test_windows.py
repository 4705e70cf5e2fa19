"""Walk-forward windows derived from the candles' span, and the folds they give."""

import pandas as pd
import pytest

from trad.data.frames import TIMEFRAME_SECONDS
from trad.training.validation import walk_forward_folds
from trad.training.windows import count_folds, fitting_windows


@pytest.mark.parametrize("timeframe", sorted(TIMEFRAME_SECONDS))
@pytest.mark.parametrize("candles", [2_000, 3_000, 5_000, 9_000])
def test_any_few_thousand_candles_get_at_least_three_folds(timeframe, candles):
    first = pd.Timestamp("2024-01-01", tz="UTC")
    last = first + (candles - 1) * pd.Timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    span = (last - first) / pd.Timedelta(days=1)
    windows = fitting_windows(span)
    assert windows is not None
    folds = walk_forward_folds(first, last, windows.train, windows.test, windows.gap)
    assert len(folds) == count_folds(span, *windows) >= 3


@pytest.mark.parametrize("span, windows, folds", [
    (104.2, (42, 14, 0), 4),   # what the dashboard's form proposes (tests/browser)
    (17.4, (6, 2, 0), 5),
    (69.4, (27, 9, 0), 4),
    (10.4, (3, 1, 0), 7),
    (2.08, (0.87, 0.29, 0), 4),
    (365.0, (90, 30, 0), 9),   # the long-standing windows, when they give 4 folds or more
])
def test_windows_are_the_defaults_when_they_fit_else_a_seventh_of_the_span(span, windows, folds):
    derived = fitting_windows(span)
    assert tuple(derived) == pytest.approx(windows)
    assert count_folds(span, *derived) == folds


def test_too_short_a_span_has_no_windows():
    assert fitting_windows(0.06) is None
    assert count_folds(10, 8, 3, 0) == 0 and count_folds(11, 8, 3, 0) == 1
