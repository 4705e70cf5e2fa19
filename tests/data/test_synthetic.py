"""Synthetic candles: deterministic, well-formed, with sweeps to trade."""

import numpy as np
import pandas as pd

from trad.data.frames import check_candles
from trad.data.synthetic import synthetic_candles


def test_same_seed_same_candles_other_seed_other_candles():
    a, b, c = synthetic_candles(2_000, seed=5), synthetic_candles(2_000, seed=5), synthetic_candles(2_000, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a["close"].equals(c["close"])


def test_candles_are_well_formed():
    frame = check_candles(synthetic_candles(50_000, seed=1, timeframe="1m"))
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert (frame["low"] > 0).all() and (frame["volume"] > 0).all()
    assert (frame["timestamp"].diff().dropna() == pd.Timedelta(minutes=1)).all()


def test_volume_spikes_with_pierced_lows_are_planted():
    frame = synthetic_candles(20_000, seed=2)
    low, volume = frame["low"].to_numpy(), frame["volume"].to_numpy()
    key_low = pd.Series(low).rolling(50).min().shift(1).to_numpy()
    vol_mean = pd.Series(volume).rolling(20).mean().shift(1).to_numpy()
    sweeps = (low < key_low) & (volume >= 2.5 * vol_mean)
    assert np.nansum(sweeps) >= 20
