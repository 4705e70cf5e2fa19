"""Objectives a job may maximise, and how a backtest's metrics become one score.

A score is a plain float, higher is better, or None when the configuration is invalid:
fewer than `min_trades` trades, or a non-finite objective value. Invalid configurations
are recorded but never become the best.

`profit_factor` is +inf when a configuration made no losing trade; it scores as
PROFIT_FACTOR_CAP (as does any profit factor above it) so that such a configuration ranks first without poisoning means,
plots or the Bayesian model with an infinity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from trad.errors import InvalidInput

OBJECTIVES: tuple[str, ...] = ("sharpe", "sortino", "total_return", "profit_factor", "calmar", "sqn")
DEFAULT_OBJECTIVE = "sharpe"
DEFAULT_MIN_TRADES = 5
PROFIT_FACTOR_CAP = 1_000.0


def validate_objective(objective: Any) -> str:
    """The objective's name when it is one of OBJECTIVES; raises InvalidInput otherwise."""
    if objective not in OBJECTIVES:
        raise InvalidInput.field("objective", f"unknown objective {objective!r}; choose one of "
                                              f"{', '.join(OBJECTIVES)}")
    return objective


def validate_min_trades(min_trades: Any) -> int:
    """`min_trades` as an int ≥ 0; raises InvalidInput otherwise."""
    if isinstance(min_trades, bool) or not isinstance(min_trades, int) or min_trades < 0:
        raise InvalidInput.field("min_trades", f"must be an integer >= 0, got {min_trades!r}")
    return min_trades


def score_metrics(metrics: Mapping[str, Any], objective: str, min_trades: int) -> float | None:
    """The score of one backtest's metrics under `objective`; None when the configuration is invalid."""
    validate_objective(objective)
    if float(metrics.get("n_trades", 0)) < min_trades:
        return None
    value = float(metrics[objective])
    if objective == "profit_factor" and value > PROFIT_FACTOR_CAP:
        return PROFIT_FACTOR_CAP
    if not math.isfinite(value):
        return None
    return value
