"""Objectives: one score per backtest, None for invalid configurations."""

from __future__ import annotations

import math

import pytest

from trad.errors import InvalidInput
from trad.optimize import OBJECTIVES, PROFIT_FACTOR_CAP, score_metrics, validate_objective

METRICS = {"total_return": 0.12, "sharpe": 1.5, "sortino": 2.1, "max_drawdown": 0.08,
           "win_rate": 0.55, "profit_factor": 1.8, "n_trades": 12.0, "avg_trade_return": 0.01,
           "exposure": 0.3, "calmar": 3.2, "sqn": 1.1}


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_objective_scores_its_metric(objective):
    assert score_metrics(METRICS, objective, min_trades=5) == METRICS[objective]


def test_the_objectives_of_the_design():
    assert set(OBJECTIVES) == {"sharpe", "sortino", "total_return", "profit_factor", "calmar", "sqn"}


def test_fewer_trades_than_min_trades_is_invalid():
    assert score_metrics(METRICS, "sharpe", min_trades=13) is None
    assert score_metrics(METRICS, "sharpe", min_trades=12) == 1.5
    assert score_metrics({**METRICS, "n_trades": 0.0}, "total_return", min_trades=0) == 0.12


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_invalid(value):
    assert score_metrics({**METRICS, "sharpe": value}, "sharpe", 5) is None


def test_profit_factor_without_losses_is_capped():
    assert score_metrics({**METRICS, "profit_factor": math.inf}, "profit_factor", 5) == PROFIT_FACTOR_CAP
    assert score_metrics({**METRICS, "profit_factor": 5e6}, "profit_factor", 5) == PROFIT_FACTOR_CAP
    assert score_metrics({**METRICS, "profit_factor": math.nan}, "profit_factor", 5) is None


def test_unknown_objective_is_invalid_input():
    with pytest.raises(InvalidInput) as caught:
        validate_objective("alpha")
    assert caught.value.details == [{"field": "objective", "issue": caught.value.details[0]["issue"]}]
    assert "unknown objective 'alpha'" in caught.value.details[0]["issue"]
    with pytest.raises(InvalidInput):
        score_metrics(METRICS, "alpha", 5)
