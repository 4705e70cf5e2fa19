"""Hand-made candle frames for tests."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from trad.strategies.base import ParamSpace, Signals, Strategy

START = pd.Timestamp("2024-01-01", tz="UTC")


def candles(rows: Iterable[Sequence[float]], step: str = "5min") -> pd.DataFrame:
    """A candle frame from (open, high, low, close[, volume]) rows, 5 minutes apart."""
    rows = [tuple(r) + (1.0,) * (5 - len(r)) for r in rows]
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], dtype=float)
    frame.insert(0, "timestamp", pd.date_range(START, periods=len(rows), freq=step))
    return frame


def flat(price: float, n: int, volume: float = 1.0) -> list[tuple[float, ...]]:
    """`n` candles that never move from `price`."""
    return [(price, price, price, price, volume)] * n


class Scripted(Strategy):
    """A strategy that returns signals fixed in advance: pins engine rules on hand-made candles."""

    name = "scripted"
    param_space = ParamSpace()

    def __init__(self, entries: Sequence[int] | np.ndarray, n: int, exits: Sequence[int] = (),
                 stops: dict[int, float] | None = None, stop_distances: dict[int, float] | None = None,
                 rr_ratio: float | None = None, max_hold: int | None = None) -> None:
        super().__init__()
        self.signals = Signals(
            entries=_mask(entries, n), exits=_mask(exits, n) if exits is not None else None,
            stops=_levels(stops, n), stop_distances=_levels(stop_distances, n),
            rr_ratio=rr_ratio, max_hold=max_hold)

    @property
    def min_history(self) -> int:
        return 0

    def generate_signals(self, data: pd.DataFrame, progress_callback=None) -> Signals:
        return self.signals


def _mask(indices: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    indices = np.asarray(indices)
    if indices.dtype == bool:
        return indices
    mask = np.zeros(n, dtype=bool)
    mask[indices.astype(int)] = True
    return mask


def _levels(levels: dict[int, float] | np.ndarray | None, n: int) -> np.ndarray | None:
    if levels is None or isinstance(levels, np.ndarray):
        return levels
    out = np.full(n, np.nan)
    for index, value in levels.items():
        out[index] = value
    return out
