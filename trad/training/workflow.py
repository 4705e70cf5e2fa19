"""A training job's run: Data Collection → Optimization → Validation → Save Configuration.

`train(row, sink, load_candles, recorded)` runs the steps of a job whose run has started, on
what it is handed: its row, where progress goes (a `ProgressSink`), how to load its candles and
the evaluations earlier runs recorded — so it needs no database, and `trad.jobs.runner` does the
job's bootstrap. A resumed job replays the same search (its seed is on the row) and skips
exactly what was recorded. The run ends `succeeded` (a trained configuration handed to the
sink), `stopped` (a stop request; the best so far in `result`) or `failed` (the error given to
the sink; `JobFailed` raised so the worker records it too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping

import pandas as pd

from trad.errors import Cancelled, InvalidInput, TradError
from trad.optimize import (DEFAULT_MAX_CONFIGS, BacktestEvaluator, Evaluation, OptimizationResult,
                           build_search_space, make_optimizer)
from trad.strategies import get_strategy
from trad.training.config import TrainingConfig
from trad.training.results import TrainedConfiguration, backtest_record, record_work
from trad.training.sink import ProgressSink
from trad.training.steps import DATA_COLLECTION, OPTIMIZATION, SAVE_CONFIGURATION, VALIDATION
from trad.training.validation import fold_candles, validate_walk_forward, validation_work

MIN_CANDLES = 100

LoadCandles = Callable[[str, str, datetime | None, datetime | None, Callable[[int, int], None]], pd.DataFrame]
"""(symbol, timeframe, start, end, loaded(done, total)) -> the candles, oldest first."""
RecordedEvaluations = Callable[[], list[Evaluation]]
"""The evaluations earlier runs of the job recorded (none for a first run)."""


class JobFailed(TradError):
    """The training job failed; its row says why."""

    code = "JOB_FAILED"


@dataclass
class Run:
    """One run of a job: its row, what it is handed, and what it has found so far."""

    row: Mapping[str, Any]
    sink: ProgressSink
    load_candles: LoadCandles
    recorded: RecordedEvaluations
    max_configs: int
    config: TrainingConfig
    data: pd.DataFrame | None = None
    search: OptimizationResult | None = None


def train(row: Mapping[str, Any], sink: ProgressSink, load_candles: LoadCandles,
          recorded: RecordedEvaluations = list, *, max_configs: int = DEFAULT_MAX_CONFIGS) -> None:
    """Run the steps of a job whose run has started (`row`: its training_jobs row), reporting to
    `sink`, which hears the run's end whatever happens; raises JobFailed (or the error) if it failed."""
    _run(Run(row, sink, load_candles, recorded, max_configs, TrainingConfig()))


def search_seed(row: Mapping[str, Any]) -> int | None:
    """The seed of a job's search: the one it was given, else the one its first run drew."""
    for source in (row.get("config"), row.get("result")):
        seed = source.get("seed") if isinstance(source, dict) else None
        if isinstance(seed, int) and not isinstance(seed, bool):
            return seed
    return None


def validation_enabled(row: Mapping[str, Any]) -> bool:
    """Whether the job's config asks for walk-forward validation (False if it is unreadable)."""
    try:
        return TrainingConfig.from_mapping(row["config"]).validation.enabled
    except (InvalidInput, TypeError, ValueError):
        return False


def _run(run: Run) -> None:
    """The four steps, and the job's end whatever happens."""
    sink = run.sink
    try:
        sink.start(f"training {run.row['strategy']} on {run.row['symbol']} {run.row['timeframe']} "
                   f"with {run.row['optimizer']} search")
        run.config = TrainingConfig.from_mapping(run.row["config"])
        collect_candles(run)
        optimize(run)
        if run.config.validation.enabled:
            validation = validate(run)
        else:
            validation = None
            sink.log("walk-forward validation is off for this job (validation.enabled = false)")
        save_configuration(run, validation)
    except Cancelled as exc:
        sink.finish("stopped", result=_partial_result(run, f"stopped: {exc}"))
    except InvalidInput as exc:
        sink.finish("failed", result=_partial_result(run), error=exc.message)
        raise JobFailed(exc.message, exc.details) from exc
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        sink.finish("failed", result=_partial_result(run), error=message)
        raise


def collect_candles(run: Run) -> None:
    """Step 1: load the candles of the job's symbol, timeframe and date range, chunk by chunk."""
    row, config, sink = run.row, run.config, run.sink
    sink.enter_step(DATA_COLLECTION, {"symbol": row["symbol"], "timeframe": row["timeframe"]})

    def loaded(done: int, total: int) -> None:
        sink.step_progress(100.0 * done / total if total else 100.0,
                           {"candles_loaded": done, "candles_total": total})

    run.data = run.load_candles(row["symbol"], row["timeframe"], config.start, config.end, loaded)
    if len(run.data) < MIN_CANDLES:
        raise InvalidInput.field("symbol", f"{len(run.data)} candles of {row['symbol']} {row['timeframe']} "
                                           f"in the date range; at least {MIN_CANDLES} are needed")
    sink.log(f"loaded {len(run.data):,} candles from {run.data['timestamp'].iloc[0]:%Y-%m-%d %H:%M} "
             f"to {run.data['timestamp'].iloc[-1]:%Y-%m-%d %H:%M}")


def optimize(run: Run) -> None:
    """Step 2: the search; evaluations already recorded (a resumed job) are not computed again."""
    row, config, sink = run.row, run.config, run.sink
    strategy = get_strategy(row["strategy"])
    space = build_search_space(strategy, config.param_space)
    optimizer = make_optimizer(row["optimizer"], space, n_iterations=config.n_iterations, seed=search_seed(row),
                               max_configs=run.max_configs,
                               constraint=strategy.constraint_violation,
                               target_score=config.target_score, patience=config.patience)
    recorded = run.recorded()
    sink.plan(min(config.workers, max(1, optimizer.total_episodes - len(recorded))),
              *_planned_work(run, optimizer.total_episodes))
    sink.enter_step(OPTIMIZATION, {"optimizer": row["optimizer"], "total_episodes": optimizer.total_episodes,
                                   "resumed_episodes": len(recorded), "n_jobs": config.workers})
    if recorded:
        sink.log(f"resuming: {len(recorded)} evaluations already recorded are not run again")
    evaluator = BacktestEvaluator(run.data, row["strategy"], config.engine_settings, row["objective"],
                                  config.min_trades)
    run.search = optimizer.run(evaluator, n_jobs=config.workers, callback=sink, already_done=recorded)
    search = run.search
    if search.cancelled:
        raise Cancelled("stop requested")
    if search.best is None:
        raise InvalidInput.field("min_trades", f"none of {len(search.evaluations)} configurations made at "
                                               f"least {config.min_trades} trades with a finite "
                                               f"{row['objective']}")
    sink.log(f"search done: {len(search.evaluations)} evaluations, best {row['objective']} "
             f"{search.best.score:.4f} with {search.best.params}"
             + (f" (stopped early: {search.stop_reason})" if search.stopped_early else ""))


def _planned_work(run: Run, episodes: int) -> tuple[int, int]:
    """What validation (0 when it is off or no fold fits) and saving will backtest, in candles,
    for the ETA."""
    wf = run.config.validation
    folds = fold_candles(run.data, wf.train_window_days, wf.test_window_days, wf.gap_days) if wf.enabled else []
    candidates = min(max(1, wf.candidates), episodes)
    return validation_work(folds, candidates), record_work(len(run.data), [test for _, test in folds])


def validate(run: Run) -> dict[str, Any]:
    """Step 3: walk-forward validation of the search's top configurations."""
    config, sink = run.config, run.sink
    wf = config.validation
    sink.enter_step(VALIDATION, {"train_window_days": wf.train_window_days,
                                 "test_window_days": wf.test_window_days, "gap_days": wf.gap_days})
    ranked = sorted((e for e in run.search.evaluations if e.score is not None),
                    key=lambda e: e.score, reverse=True)
    candidates = [e.params for e in ranked[:max(1, wf.candidates)]]

    def progress(percentage: float, processed: int, total: int, stage: str, details: dict) -> None:
        sink.candles(processed, total, stage, percentage, details)

    result = validate_walk_forward(run.data, run.row["strategy"], candidates, config.engine_settings,
                                   run.row["objective"], wf.train_window_days, wf.test_window_days,
                                   wf.gap_days, progress)
    sink.step_progress(100.0, {"folds": len(result["folds"]), "skipped": result.get("skipped")})
    if result.get("skipped"):
        sink.log(f"walk-forward validation skipped: {result['skipped']}", level="WARNING")
    else:
        sink.log(f"walk-forward: {len(result['folds'])} folds, mean out-of-sample "
                 f"{_fmt(result['mean_out_of_sample_score'])}, degradation {_fmt(result['degradation'])}")
    return result


def save_configuration(run: Run, validation: dict[str, Any] | None) -> None:
    """Step 4: the winner and its backtest (trades, curves, folds) go to the sink with the job's end."""
    row, best, data = run.row, run.search.best, run.data
    skipped = (validation or {}).get("skipped")  # the step indicator shows it while this step runs
    state = {"validation_off": True} if validation is None else {"validation_skipped": skipped} if skipped else {}
    run.sink.enter_step(SAVE_CONFIGURATION, {"params": best.params, **state})
    record = backtest_record(data, strategy=row["strategy"], symbol=row["symbol"], timeframe=row["timeframe"],
                             params=best.params, settings=run.config.engine_settings, objective=row["objective"],
                             min_trades=run.config.min_trades, validation=validation)
    trained = TrainedConfiguration(
        strategy=row["strategy"], symbol=row["symbol"], timeframe=row["timeframe"], params=best.params,
        objective=row["objective"], score=best.score, metrics=best.metrics, validation=validation,
        data_start=data["timestamp"].iloc[0].to_pydatetime(), data_end=data["timestamp"].iloc[-1].to_pydatetime(),
        backtest=record)
    result = {**_partial_result(run), "validation": validation, "backtest_stored": True}  # kept with it
    run.sink.finish("succeeded", result=result, trained=trained)


def _partial_result(run: Run, note: str | None = None) -> dict[str, Any]:
    """What the job has found so far: the best evaluation, counts, search timing."""
    result: dict[str, Any] = {}
    if search_seed(run.row) is not None:
        result["seed"] = search_seed(run.row)
    if run.data is not None and len(run.data):
        result["data"] = {"candles": len(run.data),
                          "start": run.data["timestamp"].iloc[0].isoformat(),
                          "end": run.data["timestamp"].iloc[-1].isoformat()}
    search = run.search
    if search is not None:
        result.update(evaluations=len(search.evaluations), total_episodes=search.total_episodes,
                      optimizer_seconds=round(search.optimizer_seconds, 3), stop_reason=search.stop_reason)
        if search.best is not None:
            result.update(best_params=search.best.params, best_score=search.best.score,
                          best_metrics=search.best.metrics, best_iteration=search.best.iteration)
    if note:
        result["note"] = note
    return result


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
