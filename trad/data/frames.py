"""Candle DataFrames: the one shape every part of trad passes around."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
TIMEFRAME_SECONDS = {
    "1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400,
}
TIMEFRAMES = tuple(TIMEFRAME_SECONDS)


def timeframe_seconds(timeframe: str) -> int:
    """Seconds per candle of a timeframe such as '5m'; ValueError on an unknown one."""
    try:
        return TIMEFRAME_SECONDS[timeframe]
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; choose one of {', '.join(TIMEFRAMES)}") from None


def empty_candles() -> pd.DataFrame:
    """A frame with the candle columns and no rows."""
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in CANDLE_COLUMNS[1:]})
    frame.insert(0, "timestamp", pd.Series(dtype="datetime64[us, UTC]"))
    return frame


def check_candles(frame: pd.DataFrame) -> pd.DataFrame:
    """Raise ValueError unless the frame has the candle columns, sorted by unique time."""
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"candles lack columns: {', '.join(missing)}")
    ts = frame["timestamp"]
    if len(ts) > 1 and not (ts.diff().iloc[1:] > pd.Timedelta(0)).all():
        raise ValueError("candles must be sorted by time without duplicates")
    return frame


def sample_csv(name: str = "GOOG-1d.csv") -> Path:
    """Path of a CSV shipped with trad (see trad/data/samples/README.md)."""
    return Path(__file__).resolve().parent / "samples" / name
