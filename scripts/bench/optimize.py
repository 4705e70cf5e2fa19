"""Time the three searches on synthetic candles: parallel speed-up and time spent outside backtests.

Usage: python scripts/bench/optimize.py [--candles 10000] [--iterations 100]
       [--strategy liquidity_sweep] [--repeat 5] [--optimizers grid,random,bayesian]

For each optimizer and n_jobs in (1, 2) it runs `iterations` episodes (grid: a sub-grid of
that size) `--repeat` times, alternating n_jobs=1 and 2, and prints the medians of the wall
time, the backtests' own time, the optimizer's own time (also per episode) and the share of
worker time spent outside backtests: 1 − Σ backtest time / (wall × n_jobs); the speed-up is
the median wall time with n_jobs=1 over that with n_jobs=2. The machine's 1-minute load
average after the optimizer's runs is printed beside its rows: on a shared machine the
figures are only as good as it.
A job callback that does nothing is attached, so progress reporting is part of the cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from trad.data.synthetic import synthetic_candles
from trad.optimize import BacktestEvaluator, build_search_space, make_optimizer
from trad.strategies import get_strategy

GRIDS = {
    "liquidity_sweep": {"key_level_lookback": {"low": 20, "high": 100, "step": 20},
                        "pierce_depth": {"low": 0.1, "high": 0.4, "step": 0.1},
                        "rr_ratio": {"low": 1.0, "high": 3.0, "step": 0.5},
                        "volume_spike_threshold": 2.0, "reversal_candles": 3, "max_hold_candles": 48},
    "sma_crossover": {"fast": {"low": 5, "high": 50, "step": 5}, "slow": {"low": 60, "high": 150}},
    "rsi_reversion": {"period": {"low": 5, "high": 24}, "oversold": {"low": 20, "high": 40},
                      "overbought": 70, "stop_atr": 2.0},
}


def run_once(name: str, strategy_name: str, candles, iterations: int, n_jobs: int) -> dict:
    """One search; its wall time, backtest time, optimizer time and size."""
    strategy = get_strategy(strategy_name)
    overrides = GRIDS[strategy_name] if name == "grid" else None
    space = build_search_space(strategy, overrides)
    optimizer = make_optimizer(name, space, n_iterations=iterations, seed=1,
                               constraint=strategy.constraint_violation)
    evaluator = BacktestEvaluator(candles, strategy_name, {}, "sharpe", 1)
    started = time.perf_counter()
    result = optimizer.run(evaluator, n_jobs=n_jobs, callback=lambda *call: None)
    wall = time.perf_counter() - started
    backtests = sum(e.duration_ms for e in result.evaluations) / 1000
    return {"wall": wall, "backtests": backtests, "optimizer": result.optimizer_seconds,
            "episodes": len(result.evaluations),
            "outside": 1 - backtests / (wall * n_jobs)}


def measure(name: str, strategy_name: str, candles, iterations: int, repeat: int) -> dict[int, dict]:
    """Per n_jobs (1, 2): the medians of `repeat` runs and the load average after them. The runs
    alternate between n_jobs=1 and 2, so that a change in the machine's load hits both alike."""
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for _ in range(repeat):
        for n_jobs, done in runs.items():
            done.append(run_once(name, strategy_name, candles, iterations, n_jobs))
    load = os.getloadavg()[0]
    return {n_jobs: {**{key: statistics.median(run[key] for run in rows) for key in rows[0]}, "load": load}
            for n_jobs, rows in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candles", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--strategy", default="liquidity_sweep", choices=sorted(GRIDS))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--optimizers", default="grid,random,bayesian")
    args = parser.parse_args()
    candles = synthetic_candles(args.candles, seed=1)
    print(f"{args.strategy} on {args.candles:,} candles, {args.iterations} iterations, "
          f"{os.cpu_count()} CPUs, median of {args.repeat} runs, load average "
          f"{os.getloadavg()[0]:.2f} at start")
    print(f"{'optimizer':<10} {'n_jobs':>6} {'episodes':>8} {'wall s':>8} {'backtest s':>10} "
          f"{'optimizer s':>11} {'opt ms/ep':>9} {'outside %':>9} {'speed-up':>8} {'load':>5}")
    for name in args.optimizers.split(","):
        rows = measure(name, args.strategy, candles, args.iterations, args.repeat)
        for n_jobs, row in rows.items():
            speed_up = rows[1]["wall"] / row["wall"]
            print(f"{name:<10} {n_jobs:>6} {row['episodes']:>8.0f} {row['wall']:>8.2f} "
                  f"{row['backtests']:>10.2f} {row['optimizer']:>11.3f} "
                  f"{1000 * row['optimizer'] / row['episodes']:>9.2f} {100 * row['outside']:>9.1f} "
                  f"{speed_up:>7.2f}x {row['load']:>5.2f}", flush=True)

if __name__ == "__main__":
    main()
