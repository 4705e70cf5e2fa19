"""Walk-forward windows that fit a range of candles: how many folds windows give, and the
windows a job gets when its request names none.

A fold is train + gap + test days; the next one starts one test window later, and a fold
fits when its test window ends by the last candle (as `trad.training.validation` cuts them):

    folds = ⌊(span − train − gap − test) / test⌋ + 1   (0 when span < train + gap + test)

Windows not given are derived from the span of the candles: the long-standing 90 + 30 days
when they give TARGET_FOLDS folds, else a test window of span / (TARGET_FOLDS + TRAIN_TESTS)
days — whole days from 1 day up, hundredths of a day below — a train window TRAIN_TESTS
times as long, and no gap. That gives at least TARGET_FOLDS folds on any span from about
1.7 hours up (the rounding only shortens the windows): 3,000 five-minute candles (10.4 days)
get 3 + 1 day windows and 7 folds, a year of them 90 + 30 days and 9 folds. The dashboard's form proposes the same windows (frontend/walk-forward.js).
"""

from __future__ import annotations

import math
from typing import NamedTuple

DEFAULT_TRAIN_DAYS = 90.0
DEFAULT_TEST_DAYS = 30.0
TARGET_FOLDS = 4
TRAIN_TESTS = 3  # a derived train window is this many test windows long


class Windows(NamedTuple):
    """Walk-forward windows, in days."""

    train: float
    test: float
    gap: float


def count_folds(span_days: float, train: float, test: float, gap: float) -> int:
    """Folds of train + gap + test days over `span_days` days."""
    if not (train > 0 and test > 0 and gap >= 0 and span_days > 0):
        return 0
    room = span_days - train - gap - test
    return 0 if room < 0 else math.floor(room / test + 1e-9) + 1


def fitting_windows(span_days: float) -> Windows | None:
    """The windows for a span of candles (see the module docstring); None under ~1.7 hours."""
    default = Windows(DEFAULT_TRAIN_DAYS, DEFAULT_TEST_DAYS, 0.0)
    if count_folds(span_days, *default) >= TARGET_FOLDS:
        return default
    raw = span_days / (TARGET_FOLDS + TRAIN_TESTS)
    days = math.floor(raw) if raw >= 1 else math.floor(raw * 100) / 100
    return Windows(float(TRAIN_TESTS * days), float(days), 0.0) if days > 0 else None
