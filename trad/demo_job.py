"""The demo's job and its candles, sized to run about a minute on the machine it starts on.

The demo job is a Bayesian liquidity_sweep search on a year of synthetic 1-minute candles
(DEMO-A, 525,600 candles), then walk-forward validation of its 20 best configurations in
9 folds of 90 + 30 days. Its number of episodes comes from a calibration at demo start:
a few backtests of fixed configurations on those candles, timed in CPU seconds
(`time_backtest`), and a cost model of the job in units of that backtest (`job_seconds`),
fitted to the demo's search run on the 2-vCPU machine of the benchmarks, idle (one
calibration backtest 31 ms of CPU there):

- an episode costs EPISODE_COST + EPISODE_GROWTH·n calibration backtests on average over a
  search of n episodes: 1.04 measured over 1,192 episodes (the job took 42.7 s) — the search
  settles on short lookbacks, dearer than the calibration's random mix, and its
  Gaussian-process model costs more as results accumulate (~3–9 ms an episode at 1,000);
- validation costs VALIDATION_BACKTESTS (43–49 measured: 9 folds × 21 backtests of 90- and
  30-day windows); loading the candles and the steps around the search OVERHEAD_SECONDS.

That gives ~1,500 episodes there. A faster machine runs more, a slower one fewer, within
MIN_ITERATIONS..MAX_ITERATIONS; other programs loading the machine make the job longer
(108 s at load average 4), never shorter. A quick demo (tests) runs QUICK_ITERATIONS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

DEMO_SYMBOLS = (  # symbol, timeframe, candles (a year each), seed
    ("DEMO-A", "1m", 525_600, 1), ("DEMO-B", "5m", 105_120, 2), ("DEMO-C", "5m", 105_120, 3))
SAMPLE = ("GOOG", "1d", "GOOG-1d.csv")
JOB_SYMBOL = DEMO_SYMBOLS[0]
STRATEGY = "liquidity_sweep"
DEMO_SECONDS = 60.0
QUICK_ITERATIONS = 15
MIN_ITERATIONS, MAX_ITERATIONS = 150, 3000
CALIBRATION_SEED = 7
CALIBRATION_CONFIGS = 4
CALIBRATION_RUNS = 3
CALIBRATION_BUDGET = 3.0  # seconds at most; a slower machine stops timing early
EPISODE_COST, EPISODE_GROWTH = 0.7, 0.0003
VALIDATION_BACKTESTS = 45.0
OVERHEAD_SECONDS = 3.0
VALIDATION = {"train_window_days": 90, "test_window_days": 30, "gap_days": 0}  # 8 folds in a year


@dataclass(frozen=True)
class DemoJob:
    """The size of the demo job and how it was chosen."""

    iterations: int
    backtest_seconds: float | None  # the calibration; None for a quick demo
    forecast_seconds: float | None


def demo_job_request(iterations: int, quick: bool = False) -> dict[str, Any]:
    """The demo job: a Bayesian liquidity_sweep search with walk-forward validation."""
    symbol, timeframe, _, _ = JOB_SYMBOL
    return {
        "job_name": f"demo: {STRATEGY} on {symbol} {timeframe}" + (" (quick)" if quick else ""),
        "strategy": STRATEGY, "symbol": symbol, "timeframe": timeframe,
        "optimizer": "bayesian", "objective": "sharpe", "seed": 7, "n_iterations": iterations,
        "validation": {"enabled": True, **VALIDATION, "candidates": 2 if quick else 20},
    }


def job_seconds(iterations: int, backtest_seconds: float) -> float:
    """The cost model: seconds the demo job takes where one calibration backtest takes `backtest_seconds`."""
    search = iterations * (EPISODE_COST + EPISODE_GROWTH * iterations)
    return OVERHEAD_SECONDS + backtest_seconds * (search + VALIDATION_BACKTESTS)


def demo_iterations(backtest_seconds: float, target: float = DEMO_SECONDS) -> int:
    """The most episodes whose job fits in `target` seconds, within MIN_ITERATIONS..MAX_ITERATIONS."""
    low, high = MIN_ITERATIONS, MAX_ITERATIONS
    if job_seconds(low, backtest_seconds) >= target:
        return low
    while low < high:  # job_seconds grows with the episodes: bisect
        middle = (low + high + 1) // 2
        low, high = (middle, high) if job_seconds(middle, backtest_seconds) <= target else (low, middle - 1)
    return low


def size_demo_job(quick: bool) -> DemoJob:
    """The demo job's episodes: QUICK_ITERATIONS, or as many as fit DEMO_SECONDS here (calibrated
    on DEMO-A's candles, generated here: ~0.3 s)."""
    if quick:
        return DemoJob(QUICK_ITERATIONS, None, None)
    backtest = time_backtest(demo_frame())
    iterations = demo_iterations(backtest)
    return DemoJob(iterations, backtest, job_seconds(iterations, backtest))


def time_backtest(frame: pd.DataFrame, budget: float = CALIBRATION_BUDGET) -> float:
    """CPU seconds of one backtest of the demo's search here: the mean over CALIBRATION_CONFIGS fixed
    configurations of the fastest of CALIBRATION_RUNS runs each (after a warm-up on a slice).

    CPU time and the fastest run, because the calibration lasts a second and the job a minute:
    a burst of load from other programs during that second must not shrink the job (it would
    end before anyone watched it); load during the job only makes it longer."""
    from trad.optimize import build_search_space, evaluate_config
    from trad.optimize.random import random_configurations
    from trad.strategies import get_strategy

    strategy = get_strategy(STRATEGY)
    configs = random_configurations(build_search_space(strategy), strategy.constraint_violation,
                                    CALIBRATION_CONFIGS, seed=CALIBRATION_SEED)
    evaluate_config(frame.iloc[:10_000], STRATEGY, configs[0])
    deadline, fastest = time.monotonic() + budget, []
    for params in configs:
        runs = []
        for _ in range(CALIBRATION_RUNS):
            started = time.process_time()
            evaluate_config(frame, STRATEGY, params)
            runs.append(time.process_time() - started)
            if time.monotonic() > deadline:
                break
        fastest.append(min(runs))
        if time.monotonic() > deadline:
            break
    return sum(fastest) / len(fastest)


def demo_frame(spec: tuple[str, str, int, int] = JOB_SYMBOL) -> pd.DataFrame:
    """The synthetic candles of one demo symbol (deterministic)."""
    from trad.data.synthetic import synthetic_candles

    _, timeframe, candles, seed = spec
    return synthetic_candles(candles, seed=seed, timeframe=timeframe)


def load_demo_candles(db: Any, symbols: Sequence[tuple[str, str, int, int]] = DEMO_SYMBOLS,
                      sample: bool = True) -> None:
    """Store synthetic demo candles (and the shipped GOOG sample).

    The synthetic candles are deterministic, so a symbol already holding as many candles
    over the same range is left alone (a re-run starts in a fraction of a second); otherwise,
    and for GOOG, the candles are upserted (~5 s for DEMO-A's 525,600 on the first start).
    """
    from trad.data.frames import sample_csv, timeframe_seconds
    from trad.data.synthetic import DEFAULT_START
    from trad.store.candles import candle_summary, import_csv, import_synthetic

    with db.connection() as conn:
        stored = {(r["symbol"], r["timeframe"]): r for r in candle_summary(conn)}
    for symbol, timeframe, candles, seed in symbols:
        last = DEFAULT_START + pd.Timedelta(seconds=timeframe_seconds(timeframe) * (candles - 1))
        have = stored.get((symbol, timeframe))
        if have and (have["candles"], have["first"], have["last"]) == (candles, DEFAULT_START, last):
            continue
        import_synthetic(db, symbol, timeframe, candles, seed=seed)
    if sample:
        symbol, timeframe, name = SAMPLE
        import_csv(db, sample_csv(name), symbol, timeframe)


def demo_candles_summary() -> str:
    """The demo's candles in one line."""
    synthetic = ", ".join(f"{s} {tf} ({n:,})" for s, tf, n, _ in DEMO_SYMBOLS)
    return f"{synthetic} synthetic, a year each; {SAMPLE[0]} {SAMPLE[1]} (sample)"
