"""Backtests in a process whose live data grew: glibc's moving thresholds against `reuse_freed_memory()`.

Usage: .venv/bin/python scripts/bench/memory.py [--candles 900000] [--episodes 600]

Each case runs in a fresh process, side by side in one run:
- *live data grown*: one backtest, then the process's free heap filled with 100 kB blocks (as a
  Bayesian search's results and model fill it), then 15 backtests: their median time and page
  faults;
- *Bayesian search*: a seeded Bayesian search of `--episodes` episodes on `--candles` candles
  (the ETA bench's job), with one fixed configuration's backtest timed every 50 episodes: its
  time and page faults in the first and the last third of the search.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

GROWN = """
import json, resource, sys, time
import numpy as np
from trad.backtest.memory import heap_free_bytes, reuse_freed_memory
from trad.data.synthetic import synthetic_candles
from trad.optimize.evaluate import evaluate_config

if sys.argv[1] == "reuse":
    reuse_freed_memory()
data = synthetic_candles(int(sys.argv[2]), seed=4)
evaluate_config(data, "liquidity_sweep", {})
live = [np.empty(12_500) for _ in range(heap_free_bytes() // 100_000 + 10)]
runs = []
for _ in range(15):
    faults, started = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    evaluate_config(data, "liquidity_sweep", {})
    runs.append((time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults))
print(json.dumps(runs))
"""

SEARCH = """
import json, resource, sys, time
from trad.backtest.memory import reuse_freed_memory
from trad.data.synthetic import synthetic_candles
from trad.optimize import BacktestEvaluator, build_search_space, make_optimizer
from trad.strategies import get_strategy

if sys.argv[1] == "reuse":
    reuse_freed_memory()
data = synthetic_candles(int(sys.argv[2]), seed=4)
evaluator = BacktestEvaluator(data, "liquidity_sweep", {}, "sharpe", 1)
probes, reference = [], {}

def evaluate(params, candle_callback=None):
    evaluation = evaluator(params, candle_callback)
    reference.setdefault("params", dict(params))
    probes.append(None)
    if len(probes) % 50 == 0:
        faults, started = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        evaluator(reference["params"])
        probes[-1] = (len(probes), time.perf_counter() - started,
                      resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
    return evaluation

space = build_search_space(get_strategy("liquidity_sweep"), None)
search = make_optimizer("bayesian", space, n_iterations=int(sys.argv[3]), seed=7)
started = time.perf_counter()
search.run(evaluate, callback=lambda *call: None)
print(json.dumps({"wall": time.perf_counter() - started, "probes": [p for p in probes if p]}))
"""


def run(script: str, *args: str) -> object:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                          check=True)
    return json.loads(done.stdout.splitlines()[-1])


def describe(probes: list) -> str:
    """The median time and page faults of probe backtests (episode, seconds, faults)."""
    return (f"{1000 * statistics.median(p[1] for p in probes):6.1f} ms, "
            f"{statistics.median(p[2] for p in probes):7,.0f} faults")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candles", type=int, default=900_000)
    parser.add_argument("--episodes", type=int, default=600)
    args = parser.parse_args()
    print(f"{args.candles:,} candles, liquidity_sweep; load average {os.getloadavg()[0]:.2f} at start\n")
    grown = {mode: run(GROWN, mode, str(args.candles)) for mode in ("default", "reuse")}
    print("live data grown, 15 backtests: median time, median page faults")
    seconds = {}
    for mode, runs in grown.items():
        seconds[mode], faults = statistics.median(t for t, _ in runs), statistics.median(f for _, f in runs)
        print(f"  {mode:8} {1000 * seconds[mode]:7.1f} ms {faults:8,.0f}")
    ratio = seconds["default"] / seconds["reuse"]
    print(f"  default ÷ reuse: {ratio:.2f}×\n")
    print(f"Bayesian search, {args.episodes} episodes, seed 7: one configuration's backtest every 50 episodes")
    for mode in ("default", "reuse"):
        result = run(SEARCH, mode, str(args.candles), str(args.episodes))
        probes = result["probes"]
        third = max(1, len(probes) // 3)
        first, last = (describe(part) for part in (probes[:third], probes[-third:]))
        print(f"  {mode:8} whole search {result['wall']:5.1f} s; first third {first}; last third {last}")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
