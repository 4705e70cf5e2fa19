"""Parameter search: grid, random and Bayesian optimizers behind one interface.

    space = build_search_space(strategy_cls, job["param_space"])
    optimizer = make_optimizer("bayesian", space, constraint=strategy_cls.constraint_violation,
                               n_iterations=100, seed=7, target_score=None, patience=None)
    result = optimizer.run(BacktestEvaluator(candles, "sma_crossover", {...}, "sharpe", 5),
                           n_jobs=2, callback=job_callback, already_done=recorded)

See base.py for `run` (early stop, resume, cancellation), progress.py for the job
callback's arguments and metadata, parallel.py for the worker processes.
"""

from __future__ import annotations

from typing import Any

from trad.errors import InvalidInput
from trad.optimize.base import (MAX_ITERATIONS, Evaluation, OptimizationResult, Optimizer,
                                SearchRecord)
from trad.optimize.bayesian import BayesianSearch
from trad.optimize.evaluate import BacktestEvaluator, evaluate_config, nested_candle_callback
from trad.optimize.grid import DEFAULT_MAX_CONFIGS, GridSearch
from trad.optimize.objectives import (DEFAULT_MIN_TRADES, DEFAULT_OBJECTIVE, OBJECTIVES,
                                      PROFIT_FACTOR_CAP, score_metrics, validate_min_trades,
                                      validate_objective)
from trad.optimize.random import RandomSearch
from trad.optimize.space import (Dimension, build_search_space, config_key, grid_size,
                                 iter_grid)

OPTIMIZERS: dict[str, type[Optimizer]] = {
    GridSearch.name: GridSearch, RandomSearch.name: RandomSearch, BayesianSearch.name: BayesianSearch,
}


def make_optimizer(name: str, space: list[Dimension], *, n_iterations: int | None = None,
                   seed: int | None = None, max_configs: int = DEFAULT_MAX_CONFIGS,
                   **options: Any) -> Optimizer:
    """The optimizer `name` ("grid", "random" or "bayesian"); grid ignores n_iterations and seed.

    `options`: constraint, target_score, patience. Raises InvalidInput for bad settings.
    """
    if name == "grid":
        return GridSearch(space, max_configs=max_configs, **options)
    if name in OPTIMIZERS:
        return OPTIMIZERS[name](space, n_iterations=n_iterations, seed=seed, **options)
    raise InvalidInput.field("optimizer", f"unknown optimizer {name!r}; choose one of "
                                          f"{', '.join(OPTIMIZERS)}")


__all__ = ["DEFAULT_MAX_CONFIGS", "DEFAULT_MIN_TRADES", "DEFAULT_OBJECTIVE", "MAX_ITERATIONS",
           "OBJECTIVES", "OPTIMIZERS", "PROFIT_FACTOR_CAP", "BacktestEvaluator", "BayesianSearch",
           "Dimension", "Evaluation", "GridSearch", "OptimizationResult", "Optimizer",
           "RandomSearch", "SearchRecord", "build_search_space", "config_key", "evaluate_config",
           "grid_size", "iter_grid", "make_optimizer", "nested_candle_callback", "score_metrics", "validate_min_trades",
           "validate_objective"]
