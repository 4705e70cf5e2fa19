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
Beside them it prints the machine's ceiling: the speed-up of two processes that run the same
number of backtests without any pool, pipe or optimizer (two busy processes slow each other
on a small VM, so 2.0× is out of reach however little the pool costs).

Then (unless --no-jobs) it runs whole training jobs with `run_training` on a scratch
database (PostgreSQL and Redis as the tests use them) and counts the UPDATEs of each job's
row with a trigger, beside the bound the design allows: duration / progress interval +
state changes (start, each step, the end) + 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import time

from trad.data.synthetic import synthetic_candles
from trad.optimize import BacktestEvaluator, build_search_space, make_optimizer
from trad.optimize.space import iter_grid
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


def machine_ceiling(strategy_name: str, candles, iterations: int, repeat: int) -> float:
    """What two processes can do here at best: `iterations` backtests (the grid's configurations in
    turn) run in this process, then split between two forked processes that start together and
    never talk (no pool, no pipes, no optimizer); the median ratio of the two wall times over
    `repeat` runs."""
    import multiprocessing

    space = build_search_space(get_strategy(strategy_name), GRIDS[strategy_name])
    configs = list(itertools.islice(itertools.cycle(iter_grid(space)), iterations))
    evaluator = BacktestEvaluator(candles, strategy_name, {}, "sharpe", 1)
    context = multiprocessing.get_context("fork")

    def backtests(chunk):
        for params in chunk:
            evaluator(params)

    def child(chunk, go):
        go.wait()
        backtests(chunk)

    ratios = []
    for _ in range(repeat):
        started = time.perf_counter()
        backtests(configs)
        one = time.perf_counter() - started
        go = context.Event()
        children = [context.Process(target=child, args=(configs[half::2], go)) for half in (0, 1)]
        for process in children:
            process.start()
        time.sleep(0.2)
        started = time.perf_counter()
        go.set()
        for process in children:
            process.join()
        ratios.append(one / (time.perf_counter() - started))
    return statistics.median(ratios)


AUDIT = """
CREATE TABLE bench_job_updates (job_id bigint);
CREATE FUNCTION bench_job_updates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO bench_job_updates VALUES (NEW.id); RETURN NEW; END $$;
CREATE TRIGGER bench_job_updates AFTER UPDATE ON training_jobs
    FOR EACH ROW EXECUTE FUNCTION bench_job_updates();
"""

JOBS = [("grid", 1, None), ("grid", 2, None), ("random", 2, 1000), ("bayesian", 2, 200)]


def updates_per_job(candles: int, interval: float) -> None:
    """Whole jobs on a scratch database: their UPDATEs of the job row against the allowed bound."""
    from scratch import scratch_database

    from trad.config import Settings
    from trad.db import Database
    from trad.store.candles import import_synthetic
    from trad.store.jobs import insert_job
    from trad.jobs.runner import run_training
    from trad.training.windows import fitting_windows

    with scratch_database() as url:
        settings = dataclasses.replace(Settings.from_env(), database_url=url, progress_interval=interval,
                                       redis_prefix=f"trad-bench-{os.getpid()}:")
        db = Database(url)
        import_synthetic(db, "BENCH", "5m", candles, seed=1)
        with db.cursor() as cur:
            cur.execute(AUDIT)
        print(f"\nwhole jobs, {candles:,} candles, progress interval {interval:g} s, validation on:")
        print(f"{'optimizer':<10} {'n_jobs':>6} {'episodes':>8} {'seconds':>8} {'UPDATEs':>8} {'bound':>6}")
        windows = fitting_windows(candles * 5 / 1440)  # what a job on these candles gets by default
        validation = {"enabled": True, "train_window_days": windows.train, "test_window_days": windows.test,
                      "gap_days": windows.gap}
        for name, n_jobs, iterations in JOBS:
            config = {"n_jobs": n_jobs, "seed": 1, "validation": validation}
            if iterations:
                config["n_iterations"] = iterations
            if name == "grid":
                config["param_space"] = GRIDS["liquidity_sweep"]
            with db.transaction() as conn:
                job = insert_job(conn, job_name=f"bench {name}", strategy="liquidity_sweep", symbol="BENCH",
                                 timeframe="5m", optimizer=name, objective="sharpe", config=config)
            started = time.monotonic()
            final = run_training(job["id"], settings)
            seconds = time.monotonic() - started
            with db.cursor() as cur:
                cur.execute("SELECT count(*) AS n FROM bench_job_updates WHERE job_id = %s", (job["id"],))
                updates = cur.fetchone()["n"]
            state_changes = 1 + final["total_steps"] + 1
            bound = seconds / interval + state_changes + 2
            print(f"{name:<10} {n_jobs:>6} {final['total_episodes']:>8} {seconds:>8.1f} {updates:>8} "
                  f"{bound:>6.0f}  {final['status']}", flush=True)
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candles", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--strategy", default="liquidity_sweep", choices=sorted(GRIDS))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--optimizers", default="grid,random,bayesian")
    parser.add_argument("--no-jobs", action="store_true", help="skip the whole jobs on a scratch database")
    parser.add_argument("--interval", type=float, default=1.0, help="progress interval of those jobs (s)")
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
    ceiling = machine_ceiling(args.strategy, candles, args.iterations, args.repeat)
    print(f"machine ceiling: the same {args.iterations} backtests split over two processes that never "
          f"talk run {ceiling:.2f}x as fast as in one")
    if not args.no_jobs:
        updates_per_job(args.candles, args.interval)

if __name__ == "__main__":
    main()
