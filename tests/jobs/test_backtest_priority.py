"""The ad-hoc backtest's work horse yields the CPU to everything else (the web process's streams)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's idle scheduling policy is not offered here")
def test_the_backtest_process_runs_under_the_idle_policy():
    # In a child process: the policy cannot be undone by an unprivileged process.
    code = ("import os; from trad.jobs.backtests import run_in_the_background; run_in_the_background(); "
            "print(os.sched_getscheduler(0) == os.SCHED_IDLE)")
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == "True"
