"""Deterministic synthetic OHLCV candles: geometric Brownian motion with volume spikes.

The same (n, seed, timeframe, start) always gives the same candles. Occasional
liquidity sweeps are planted: a candle whose low pierces the recent range on a
volume spike and closes back inside, so `liquidity_sweep` has something to trade.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trad.data.frames import timeframe_seconds

DEFAULT_START = pd.Timestamp("2024-01-01", tz="UTC")


def synthetic_candles(
    n: int,
    seed: int = 0,
    timeframe: str = "5m",
    start: pd.Timestamp | str | None = None,
    price: float = 100.0,
    annual_volatility: float = 0.6,
    sweep_rate: float = 0.004,
) -> pd.DataFrame:
    """`n` candles of GBM prices with lognormal volume; about `sweep_rate` of them are planted sweeps.

    Returns columns timestamp (UTC), open, high, low, close, volume; highs and lows always
    enclose open and close, prices stay positive.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = np.random.default_rng(seed)
    step = timeframe_seconds(timeframe)
    sigma = annual_volatility * np.sqrt(step / (365 * 86400))

    log_returns = rng.normal(0.0, sigma, n)
    close = price * np.exp(np.cumsum(log_returns))
    open_ = np.empty(n)
    if n:
        open_[0] = price
        open_[1:] = close[:-1] * np.exp(rng.normal(0.0, sigma * 0.1, n - 1))
    body_high = np.maximum(open_, close)
    body_low = np.minimum(open_, close)
    high = body_high * np.exp(np.abs(rng.normal(0.0, sigma * 0.6, n)))
    low = body_low * np.exp(-np.abs(rng.normal(0.0, sigma * 0.6, n)))
    volume = rng.lognormal(mean=np.log(1_000.0), sigma=0.35, size=n)

    sweeps = np.flatnonzero(rng.random(n) < sweep_rate)
    sweeps = sweeps[sweeps >= 60]
    for s in sweeps:
        recent_low = low[s - 50:s].min()
        low[s] = min(low[s], recent_low * (1 - rng.uniform(0.5, 3.0) * sigma))
        volume[s] *= rng.uniform(3.0, 6.0)
    # Sweep candles close back above the level they pierced.
    if len(sweeps):
        close[sweeps] = np.maximum(close[sweeps], body_low[sweeps])
        high[sweeps] = np.maximum(high[sweeps], close[sweeps])

    first = pd.Timestamp(start) if start is not None else DEFAULT_START
    if first.tzinfo is None:
        first = first.tz_localize("UTC")
    timestamps = pd.date_range(first, periods=n, freq=pd.Timedelta(seconds=step))
    return pd.DataFrame({
        "timestamp": timestamps,
        "open": np.round(open_, 6),
        "high": np.round(high, 6),
        "low": np.round(low, 6),
        "close": np.round(close, 6),
        "volume": np.round(volume, 3),
    })
