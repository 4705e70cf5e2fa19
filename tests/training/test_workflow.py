"""The workflow's steps without a database: candles from a frame, progress into a MemorySink.

The whole job on PostgreSQL (row, JobProgress, stops, resumes) is in tests/jobs/test_run_training.py.
"""

from __future__ import annotations

import itertools
from functools import cache
from typing import Any

import pandas as pd
import pytest

from tests.training.memory_sink import MemorySink, candles_from
from trad.data.synthetic import synthetic_candles
from trad.optimize import evaluate_config
from trad.strategies import get_strategy
from trad.training.steps import DATA_COLLECTION, OPTIMIZATION, SAVE_CONFIGURATION, VALIDATION
from trad.training.results import FOLD_SEGMENT_CANDLES
from trad.training.validation import backtest_work
from trad.training.workflow import JobFailed, train

SMALL_SPACE = {"fast": {"choices": [5, 10]}, "slow": {"choices": [50, 100]}}


@cache
def candles(n: int = 20_000) -> pd.DataFrame:
    """The synthetic candles `candles_of("SYN", n)` stores (seed 1, 5-minute)."""
    return synthetic_candles(n, seed=1, timeframe="5m")


def job_row(config: dict[str, Any] | None = None, **columns: Any) -> dict[str, Any]:
    """A started job's row, with the columns the workflow reads."""
    return {"strategy": "sma_crossover", "symbol": "SYN", "timeframe": "5m", "optimizer": "grid",
            "objective": "sharpe", "config": config or {}, "result": None, **columns}


def run(row: dict[str, Any], frame: pd.DataFrame | None = None, recorded: list | None = None,
        sink: MemorySink | None = None) -> MemorySink:
    sink = sink or MemorySink()
    train(row, sink, candles_from(candles() if frame is None else frame), lambda: list(recorded or []))
    return sink


def test_a_job_succeeds_with_everything_reported():
    sink = run(job_row(optimizer="random", strategy="liquidity_sweep",
                       config={"n_iterations": 12, "seed": 3, "min_trades": 1,
                               "validation": {"train_window_days": 20, "test_window_days": 10}}))

    assert sink.status == "succeeded" and sink.error is None
    assert sink.step_names == [DATA_COLLECTION, OPTIMIZATION, VALIDATION, SAVE_CONFIGURATION]
    space = get_strategy("liquidity_sweep").param_space
    for name, value in sink.result["best_params"].items():
        assert space[name].low <= value <= space[name].high
    assert [e.iteration for e in sink.evaluations] == list(range(1, 13))
    assert sink.result["best_score"] == max(e.score for e in sink.evaluations if e.score is not None)
    assert sink.result["seed"] == 3 and sink.result["evaluations"] == 12
    trained = sink.trained
    assert trained.params == sink.result["best_params"] and trained.score == sink.result["best_score"]
    assert trained.validation["folds"] and sink.result["validation"]["folds"]
    assert trained.backtest.params == trained.params and 0 in trained.backtest.trades
    assert trained.data_start == candles()["timestamp"].iloc[0].to_pydatetime()
    assert any(message.startswith("search done: 12 evaluations") for message in sink.lines("INFO"))


def test_the_eta_is_told_what_validation_and_saving_will_backtest():
    validation = {"train_window_days": 20, "test_window_days": 10}
    sink = run(job_row(config={"param_space": SMALL_SPACE, "min_trades": 0,
                               "validation": {**validation, "candidates": 3}}))
    folds = sink.result["validation"]["folds"]
    work = [backtest_work(n) for n in (len(candles()), *(f["test_candles"] for f in folds))]
    train = sum(3 * backtest_work(f["train_candles"]) for f in folds)
    # every train window per candidate and every test window; saving: the series and its curve,
    # and each test window again with its trades and curve
    segments = sum(f["test_candles"] + FOLD_SEGMENT_CANDLES for f in folds)
    assert sink.planned == (1, train + sum(work[1:]), 2 * work[0] + segments)
    off = run(job_row(config={"param_space": SMALL_SPACE, "validation": {**validation, "enabled": False}}))
    assert off.planned == (1, 0, 2 * work[0])


def test_without_validation_three_steps_are_reported():
    sink = run(job_row(config={"validation": {"enabled": False}, "param_space": SMALL_SPACE}))
    assert sink.status == "succeeded"
    assert sink.step_names == [DATA_COLLECTION, OPTIMIZATION, SAVE_CONFIGURATION]
    assert sink.steps[-1][1]["validation_off"] is True and sink.trained.validation is None
    assert "walk-forward validation is off for this job (validation.enabled = false)" in sink.lines("INFO")


def test_windows_longer_than_the_candles_skip_validation_and_say_so():
    # 69 days of 5-minute candles; the default windows need 120
    sink = run(job_row(config={"param_space": SMALL_SPACE, "min_trades": 0}))
    reason = "the candles span too little time for one train + gap + test window"
    assert sink.status == "succeeded" and sink.result["validation"]["skipped"] == reason
    assert sink.steps[-1][0] == SAVE_CONFIGURATION and sink.steps[-1][1]["validation_skipped"] == reason
    assert sink.lines("WARNING") == [f"walk-forward validation skipped: {reason}"]


def test_grid_finds_the_known_best_of_a_small_space():
    space = {"fast": {"low": 5, "high": 25, "step": 5}, "slow": {"low": 30, "high": 90, "step": 30}}
    sink = run(job_row(config={"param_space": space, "validation": {"enabled": False}, "min_trades": 5}))
    scored = {}
    for fast, slow in itertools.product(range(5, 26, 5), range(30, 91, 30)):
        e = evaluate_config(candles(), "sma_crossover", {"fast": fast, "slow": slow}, {}, "sharpe", 5)
        if e.score is not None:
            scored[(fast, slow)] = e.score
    best = max(scored, key=scored.get)
    assert (sink.result["best_params"]["fast"], sink.result["best_params"]["slow"]) == best
    assert sink.result["best_score"] == pytest.approx(scored[best])


def test_too_few_candles_fails_with_a_clear_message():
    sink = MemorySink()
    with pytest.raises(JobFailed, match="50 candles of TINY 5m"):
        run(job_row(symbol="TINY"), frame=synthetic_candles(50, seed=1), sink=sink)
    assert sink.status == "failed" and sink.error.startswith("symbol: 50 candles of TINY 5m")
    assert sink.step_names == [DATA_COLLECTION] and sink.trained is None


def test_a_stop_request_ends_the_run_stopped_keeping_the_best():
    sink = MemorySink(stop_after=3)
    run(job_row(optimizer="random", strategy="rsi_reversion",
                config={"n_iterations": 200, "seed": 1, "min_trades": 1, "validation": {"enabled": False}}),
        sink=sink)
    assert sink.status == "stopped" and sink.trained is None
    assert sink.result["note"] == "stopped: stop requested"
    assert len(sink.evaluations) >= 3 and sink.result["evaluations"] == len(sink.evaluations)
    assert sink.result["best_score"] == max(e.score for e in sink.evaluations if e.score is not None)
    assert sink.step_names == [DATA_COLLECTION, OPTIMIZATION]


def test_a_resumed_run_evaluates_only_what_is_missing():
    row = job_row(config={"validation": {"enabled": False}, "param_space": SMALL_SPACE})
    first = run(row)
    recorded = first.evaluations[:2]
    resumed = run(row, recorded=recorded)
    assert resumed.status == "succeeded" and resumed.steps[1][1]["resumed_episodes"] == 2
    assert len(resumed.evaluations) == 2 and resumed.result["evaluations"] == 4
    done = {tuple(sorted(e.params.items())) for e in recorded + resumed.evaluations}
    assert len(done) == 4
    assert "resuming: 2 evaluations already recorded are not run again" in resumed.lines("INFO")
    assert resumed.result["best_score"] == first.result["best_score"]


def test_an_unexpected_error_fails_the_run_and_is_raised():
    def broken(*args: Any) -> pd.DataFrame:
        raise OSError("disk gone")

    sink = MemorySink()
    with pytest.raises(OSError, match="disk gone"):
        train(job_row(), sink, broken)
    assert (sink.status, sink.error) == ("failed", "OSError: disk gone")
