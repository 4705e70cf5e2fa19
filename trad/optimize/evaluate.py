"""One episode: backtest one configuration of a strategy and score it.

The engine reports candle progress per stage, (done, N, stage); `evaluate_config` nests it
into one count per backtest for the search: `candle_callback(candles_processed,
total_candles, stage)` with candles_processed running 0 → N during 'signals' and N → 2·N
during 'trades', total_candles = 2·N.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from trad.backtest.engine import BacktestEngine
from trad.errors import InvalidInput
from trad.optimize.base import Evaluation
from trad.optimize.objectives import DEFAULT_MIN_TRADES, score_metrics, validate_objective
from trad.optimize.space import plain
from trad.strategies import get_strategy
from trad.strategies.progress import CandleCallback

ENGINE_SETTINGS = ("fee_rate", "slippage", "initial_equity", "position_size_pct")


def evaluate_config(data: pd.DataFrame, strategy_name: str, params: Mapping[str, Any],
                    engine_settings: Mapping[str, Any] | None = None, objective: str = "sharpe",
                    min_trades: int = DEFAULT_MIN_TRADES,
                    candle_callback: CandleCallback | None = None) -> Evaluation:
    """Backtest `params` on `data` and score it; the Evaluation's iteration is 0 (the search numbers it)."""
    validate_objective(objective)
    settings = dict(engine_settings or {})
    unknown = sorted(set(settings) - set(ENGINE_SETTINGS))
    if unknown:
        raise InvalidInput.field("engine_settings", f"unknown settings {', '.join(unknown)}; "
                                                    f"expected some of {', '.join(ENGINE_SETTINGS)}")
    position_size_pct = settings.pop("position_size_pct", 1.0)
    strategy = get_strategy(strategy_name)(**params)
    engine = BacktestEngine(**settings)
    started = time.perf_counter()
    result = engine.run_backtest(data, strategy, position_size_pct=position_size_pct,
                                 progress_callback=nested_candle_callback(candle_callback))
    duration_ms = (time.perf_counter() - started) * 1000
    metrics = {name: plain(value) for name, value in result.metrics.items()}
    return Evaluation(0, dict(strategy.params), score_metrics(metrics, objective, min_trades),
                      metrics, duration_ms)


def nested_candle_callback(candle_callback: CandleCallback | None) -> Any:
    """The engine's per-stage callback (done, N, stage) → candle_callback(0 → 2·N, 2·N, stage)."""
    if candle_callback is None:
        return None

    def report(done: int, total: int, stage: str) -> None:
        offset = total if stage == "trades" else 0
        candle_callback(offset + done, 2 * total, stage)

    return report


@dataclass(frozen=True)
class BacktestEvaluator:
    """The evaluate function of a training job: candles, strategy, engine settings, objective.

    Picklable; the process pool ships it (candles included) once per worker.
    """

    data: pd.DataFrame
    strategy_name: str
    engine_settings: Mapping[str, Any] = field(default_factory=dict)
    objective: str = "sharpe"
    min_trades: int = DEFAULT_MIN_TRADES

    def __call__(self, params: dict[str, Any],
                 candle_callback: CandleCallback | None = None) -> Evaluation:
        """One episode: backtest and score `params`."""
        return evaluate_config(self.data, self.strategy_name, params, self.engine_settings,
                               self.objective, self.min_trades, candle_callback)
