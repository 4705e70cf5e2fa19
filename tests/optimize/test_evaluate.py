"""Episodes on the real engine: evaluate_config, nested candle progress, grid vs brute force."""

from __future__ import annotations

import pickle

import pytest

from trad.backtest import BacktestEngine
from trad.data.synthetic import synthetic_candles
from trad.errors import InvalidInput
from trad.optimize import (BacktestEvaluator, GridSearch, build_search_space, evaluate_config,
                           iter_grid, score_metrics)
from trad.strategies import get_strategy

N = 3_000


@pytest.fixture(scope="module")
def candles():
    return synthetic_candles(N, seed=11, timeframe="5m")


def test_evaluate_config_scores_one_backtest(candles):
    reports = []
    evaluation = evaluate_config(candles, "sma_crossover", {"fast": 10, "slow": 40},
                                 {"fee_rate": 0.001, "position_size_pct": 0.5}, "sharpe", 1,
                                 lambda *report: reports.append(report))
    direct = BacktestEngine(fee_rate=0.001).run_backtest(
        candles, get_strategy("sma_crossover")(fast=10, slow=40), position_size_pct=0.5)
    assert evaluation.metrics == direct.metrics
    assert evaluation.score == direct.metrics["sharpe"] and evaluation.valid
    assert evaluation.params == {"fast": 10, "slow": 40}
    assert evaluation.duration_ms > 0
    assert all(type(v) in (int, float) for v in evaluation.metrics.values())
    processed = [r[0] for r in reports]
    assert processed == sorted(processed)
    assert reports[0] == (0, 2 * N, "signals") and reports[-1] == (2 * N, 2 * N, "trades")
    assert (N, 2 * N, "signals") in reports and (N, 2 * N, "trades") in reports
    assert len(reports) <= 2 * 101


def test_too_few_trades_is_invalid(candles):
    evaluation = evaluate_config(candles, "sma_crossover", {"fast": 10, "slow": 40}, {}, "sharpe", 10_000)
    assert evaluation.score is None and not evaluation.valid


@pytest.mark.parametrize("bad, field", [
    ({"objective": "alpha"}, "objective"),
    ({"engine_settings": {"leverage": 3}}, "engine_settings"),
    ({"strategy_name": "nope"}, "strategy"),
])
def test_bad_settings_are_invalid_input(candles, bad, field):
    arguments = {"data": candles, "strategy_name": "sma_crossover", "params": {"fast": 10, "slow": 40},
                 "engine_settings": {}, "objective": "sharpe", "min_trades": 1, **bad}
    with pytest.raises(InvalidInput) as caught:
        evaluate_config(**arguments)
    assert caught.value.details[0]["field"] == field


def test_grid_on_sma_crossover_finds_the_brute_force_best(candles):
    strategy = get_strategy("sma_crossover")
    space = build_search_space(strategy, {"fast": {"low": 5, "high": 30}, "slow": {"low": 20, "high": 70}})
    engine = BacktestEngine()
    brute = []
    for params in iter_grid(space):
        if strategy.constraint_violation(params) is None:
            metrics = engine.run_backtest(candles, strategy(**params)).metrics
            brute.append((score_metrics(metrics, "sharpe", 3), params))
    best_score, best_params = max((s, p) for s, p in brute if s is not None)
    grid = GridSearch(space, constraint=strategy.constraint_violation)
    result = grid.run(BacktestEvaluator(candles, "sma_crossover", {}, "sharpe", 3))
    assert len(result.evaluations) == len(brute) == grid.total_episodes
    assert result.best.params == best_params and result.best.score == best_score


def test_backtest_episodes_over_two_processes(candles):
    strategy = get_strategy("liquidity_sweep")
    space = build_search_space(strategy, {"key_level_lookback": {"low": 20, "high": 60, "step": 20},
                                          "pierce_depth": {"choices": [0.1, 0.3]},
                                          "reversal_candles": 3, "max_hold_candles": 48,
                                          "volume_spike_threshold": 2.0, "rr_ratio": 2.0})
    evaluator = BacktestEvaluator(candles, "liquidity_sweep", {"fee_rate": 0.0005}, "total_return", 1)
    pickle.dumps(evaluator)
    grid = GridSearch(space, constraint=strategy.constraint_violation)
    calls = []
    one = grid.run(evaluator, n_jobs=1)
    two = grid.run(evaluator, n_jobs=2, callback=lambda *call: calls.append(call))
    assert [(e.params, e.score, e.metrics) for e in one.evaluations] == \
           [(e.params, e.score, e.metrics) for e in two.evaluations]
    assert calls[-1][0] == calls[-1][1] == 6
    assert all(m["total_candles"] in (0, 2 * N) for *_, m in calls)
