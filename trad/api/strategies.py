"""/api/v1/strategies: what a job can ask for; the dashboard builds its form from it."""

from __future__ import annotations

from typing import Any, get_args

from flask_openapi3 import APIBlueprint, Tag

from trad.api.schemas import errors, StrategyList, shaped
from trad.jobs.requests import Objective, OptimizerName, Timeframe
from trad.strategies import STRATEGIES, strategy_names

bp = APIBlueprint("strategies", __name__, url_prefix="/api/v1/strategies", abp_tags=[Tag(name="strategies")],
                  abp_security=[{"bearer": []}], abp_responses=errors(401, 422, 500))


def describe(name: str) -> dict[str, Any]:
    """A strategy with its parameter space and defaults."""
    strategy = STRATEGIES[name]
    doc = (strategy.__doc__ or "").strip().splitlines()
    return {"name": name, "description": doc[0] if doc else "", "params": strategy.param_space.to_list(),
            "defaults": strategy.param_space.defaults()}


@bp.get("", responses={200: StrategyList})
def list_strategies() -> dict[str, Any]:
    """Strategies with their parameter spaces and defaults, and the optimizers, objectives and timeframes."""
    return shaped(StrategyList, {"strategies": [describe(n) for n in strategy_names()],
                                 "optimizers": list(get_args(OptimizerName)),
                                 "objectives": list(get_args(Objective)), "timeframes": list(get_args(Timeframe))})
