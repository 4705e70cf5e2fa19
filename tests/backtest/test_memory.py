"""Backtests reuse the memory of the last one's arrays once `reuse_freed_memory()` has run.

Each case runs in a fresh Python process: malloc's thresholds belong to a process (and the
processes it forks), so they are measured where nothing else has moved them.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc's thresholds are glibc's")

# Backtests of 300,000 candles, and between the first and the others the process's live data
# grows until the heap's free memory is used up (as a Bayesian search's does with every result
# it learns): how many pages each backtest then takes fresh from the kernel. `fork`: the
# backtests run in a forked child, as in a work horse or a search's worker process.
MEASURE = """
import json, multiprocessing, resource, sys
import numpy as np
from trad.backtest.memory import heap_free_bytes, reuse_freed_memory
from trad.data.synthetic import synthetic_candles
from trad.optimize.evaluate import evaluate_config

fixed = reuse_freed_memory() if sys.argv[1] == "fixed" else None
data = synthetic_candles(300_000, seed=3)

def faults_of_a_backtest():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    evaluate_config(data, "liquidity_sweep", {"key_level_lookback": 40})
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

def backtests(out):
    first = faults_of_a_backtest()
    live = [np.empty(12_500) for _ in range(heap_free_bytes() // 100_000 + 10)]  # 100 kB blocks
    out.put([first] + [faults_of_a_backtest() for _ in range(4)])

queue = multiprocessing.get_context("fork").Queue()
if sys.argv[2] == "fork":
    child = multiprocessing.get_context("fork").Process(target=backtests, args=(queue,))
    child.start()
    faults = queue.get(timeout=120)
    child.join()
else:
    backtests(queue)
    faults = queue.get()
print(json.dumps({"fixed": fixed, "faults": faults}))
"""


def measure(mode: str, where: str, environment: dict[str, str] | None = None) -> dict:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", MEASURE, mode, where], capture_output=True, text=True,
                          env={**env, **(environment or {})}, timeout=180, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@glibc
@pytest.mark.parametrize("where", ["here", "fork"])
def test_after_the_first_backtest_none_takes_fresh_pages(where, record_property):
    fixed = measure("fixed", where)
    default = measure("default", where)
    record_property("figure", f"page faults of 5 backtests of 300,000 candles ({where}), the live data grown "
                              f"after the first: {fixed['faults']} with reuse_freed_memory, "
                              f"{default['faults']} without")
    assert fixed["fixed"] is True
    # The first backtests with the live data grown may extend the heap; the last two are measured.
    without, with_ = default["faults"][-2:], fixed["faults"][-2:]
    assert min(without) > 1000, "without it every backtest takes its arrays' pages again"
    assert max(with_) < 0.02 * min(without)


@glibc
def test_thresholds_the_person_running_trad_set_stand():
    result = measure("fixed", "here", {"MALLOC_TRIM_THRESHOLD_": "1048576"})
    assert result["fixed"] is False
