"""A whole training job from its row: Data Collection → Optimization → Validation → Save Configuration.

`run_training(job_id)` is what the RQ job function calls; it needs no queue, so tests call
it directly. A job without a seed draws one as its first run starts and keeps it in
`result.seed` (in the transaction that marks it running, so before any episode): every
resume replays the same search, and skips exactly what was recorded. The job ends `succeeded` (progress exactly 100, a trained configuration
saved), `stopped` (a stop request; best-so-far kept on the row and in `result`) or `failed`
(the error on the row; `JobFailed` raised so the worker records it too).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

import pandas as pd

from trad.config import Settings, get_settings
from trad.db import Database
from trad.errors import Cancelled, InvalidInput, TradError
from trad.jobs.progress import ProgressCallback
from trad.optimize import (BacktestEvaluator, Evaluation, OptimizationResult, build_search_space,
                           make_optimizer)
from trad.store import configs as config_store
from trad.store import jobs as job_store
from trad.store.backtests import insert_backtest
from trad.store.candles import load_frame
from trad.store.metrics import job_metrics
from trad.strategies import get_strategy
from trad.training.config import TrainingConfig
from trad.training.results import backtest_record
from trad.training.steps import DATA_COLLECTION, OPTIMIZATION, SAVE_CONFIGURATION, VALIDATION
from trad.training.validation import validate_walk_forward, validation_work

log = logging.getLogger(__name__)

MIN_CANDLES = 100
SEED_RANGE = 2**31  # drawn seeds are below this: valid for every optimizer's generator


class JobFailed(TradError):
    """The training job failed; its row says why."""

    code = "JOB_FAILED"


@dataclass
class Run:
    """One run of a job: its row, settings, callback and what it has found so far."""

    row: dict[str, Any]
    config: TrainingConfig
    settings: Settings
    db: Database
    callback: ProgressCallback
    data: pd.DataFrame | None = None
    search: OptimizationResult | None = None

    @property
    def job_id(self) -> int:
        return int(self.row["id"])


def run_training(job_id: int, settings: Settings | None = None, *, worker_name: str | None = None,
                 rq_job_id: str | None = None) -> dict[str, Any] | None:
    """Run a queued job to its end; returns its final row (None if it was not startable)."""
    settings = settings or get_settings()
    db = Database(settings.database_url, max_connections=2)
    try:
        with db.transaction() as conn:
            row = job_store.start_run(conn, job_id, worker_name, rq_job_id)
            if row is not None and search_seed(row) is None:
                row = job_store.keep_seed(conn, job_id, secrets.randbelow(SEED_RANGE))
        if row is None:
            log.info("job %s is not startable (stopped, deleted or finished)", job_id)
            with db.connection() as conn:
                return job_store.get_job(conn, job_id)
        callback = ProgressCallback(job_id, settings.database_url, interval=settings.progress_interval,
                                    redis_url=settings.redis_url,
                                    redis_prefix=settings.redis_prefix, run_id=row["rq_job_id"],
                                    validation=_validation_enabled(row))
        _run(Run(row, TrainingConfig(), settings, db, callback))
        with db.connection() as conn:
            return job_store.get_job(conn, job_id)
    finally:
        db.close()


def search_seed(row: dict[str, Any]) -> int | None:
    """The seed of a job's search: the one it was given, else the one its first run drew."""
    for source in (row.get("config"), row.get("result")):
        seed = source.get("seed") if isinstance(source, dict) else None
        if isinstance(seed, int) and not isinstance(seed, bool):
            return seed
    return None


def _validation_enabled(row: dict[str, Any]) -> bool:
    try:
        return TrainingConfig.from_mapping(row["config"]).validation.enabled
    except (InvalidInput, TypeError, ValueError):
        return False


def _run(run: Run) -> None:
    """The four steps, and the job's end whatever happens."""
    callback = run.callback
    try:
        callback.start(f"training {run.row['strategy']} on {run.row['symbol']} {run.row['timeframe']} "
                       f"with {run.row['optimizer']} search")
        run.config = TrainingConfig.from_mapping(run.row["config"])
        collect_candles(run)
        optimize(run)
        if run.config.validation.enabled:
            validation = validate(run)
        else:
            validation = None
            callback.log("walk-forward validation is off for this job (validation.enabled = false)")
        save_configuration(run, validation)
    except Cancelled as exc:
        callback.finish("stopped", result=_partial_result(run, f"stopped: {exc}"))
    except InvalidInput as exc:
        callback.finish("failed", result=_partial_result(run), error=exc.message)
        raise JobFailed(exc.message, exc.details) from exc
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        callback.finish("failed", result=_partial_result(run), error=message)
        raise


def collect_candles(run: Run) -> None:
    """Step 1: load the candles of the job's symbol, timeframe and date range, chunk by chunk."""
    row, config, callback = run.row, run.config, run.callback
    callback.enter_step(DATA_COLLECTION, {"symbol": row["symbol"], "timeframe": row["timeframe"]})

    def loaded(done: int, total: int) -> None:
        callback.step_progress(100.0 * done / total if total else 100.0,
                               {"candles_loaded": done, "candles_total": total})

    run.data = load_frame(run.db, row["symbol"], row["timeframe"], config.start, config.end,
                          progress_callback=loaded)
    if len(run.data) < MIN_CANDLES:
        raise InvalidInput.field("symbol", f"{len(run.data)} candles of {row['symbol']} {row['timeframe']} "
                                           f"in the date range; at least {MIN_CANDLES} are needed")
    callback.log(f"loaded {len(run.data):,} candles from {run.data['timestamp'].iloc[0]:%Y-%m-%d %H:%M} "
                 f"to {run.data['timestamp'].iloc[-1]:%Y-%m-%d %H:%M}")


def optimize(run: Run) -> None:
    """Step 2: the search; evaluations already recorded (a resumed job) are not computed again."""
    row, config, callback = run.row, run.config, run.callback
    strategy = get_strategy(row["strategy"])
    space = build_search_space(strategy, config.param_space)
    optimizer = make_optimizer(row["optimizer"], space, n_iterations=config.n_iterations, seed=search_seed(row),
                               max_configs=run.settings.max_configs,
                               constraint=strategy.constraint_violation,
                               target_score=config.target_score, patience=config.patience)
    with run.db.connection() as conn:
        recorded = [Evaluation(m["iteration"], m["params"], m["score"], m["metrics"] or {},
                               m["duration_ms"] or 0.0) for m in job_metrics(conn, run.job_id)]
    callback.plan(min(config.workers, max(1, optimizer.total_episodes - len(recorded))),
                  _validation_work(run, optimizer.total_episodes))
    callback.enter_step(OPTIMIZATION, {"optimizer": row["optimizer"], "total_episodes": optimizer.total_episodes,
                                       "resumed_episodes": len(recorded), "n_jobs": config.workers})
    if recorded:
        callback.log(f"resuming: {len(recorded)} evaluations already recorded are not run again")
    evaluator = BacktestEvaluator(run.data, row["strategy"], config.engine_settings, row["objective"],
                                  config.min_trades)
    run.search = optimizer.run(evaluator, n_jobs=config.workers, callback=callback, already_done=recorded)
    search = run.search
    if search.cancelled:
        raise Cancelled("stop requested")
    if search.best is None:
        raise InvalidInput.field("min_trades", f"none of {len(search.evaluations)} configurations made at "
                                               f"least {config.min_trades} trades with a finite "
                                               f"{row['objective']}")
    callback.log(f"search done: {len(search.evaluations)} evaluations, best {row['objective']} "
                 f"{search.best.score:.4f} with {search.best.params}"
                 + (f" (stopped early: {search.stop_reason})" if search.stopped_early else ""))


def _validation_work(run: Run, episodes: int) -> int:
    """What validation will backtest, for the ETA (0 when it is off or no fold fits)."""
    wf = run.config.validation
    if not wf.enabled:
        return 0
    return validation_work(run.data, wf.train_window_days, wf.test_window_days, wf.gap_days,
                           min(max(1, wf.candidates), episodes))


def validate(run: Run) -> dict[str, Any]:
    """Step 3: walk-forward validation of the search's top configurations."""
    config, callback = run.config, run.callback
    wf = config.validation
    callback.enter_step(VALIDATION, {"train_window_days": wf.train_window_days,
                                     "test_window_days": wf.test_window_days, "gap_days": wf.gap_days})
    ranked = sorted((e for e in run.search.evaluations if e.score is not None),
                    key=lambda e: e.score, reverse=True)
    candidates = [e.params for e in ranked[:max(1, wf.candidates)]]

    def progress(percentage: float, processed: int, total: int, stage: str, details: dict) -> None:
        callback.candles(processed, total, stage, percentage, details)

    result = validate_walk_forward(run.data, run.row["strategy"], candidates, config.engine_settings,
                                   run.row["objective"], wf.train_window_days, wf.test_window_days,
                                   wf.gap_days, progress)
    callback.step_progress(100.0, {"folds": len(result["folds"]), "skipped": result.get("skipped")})
    if result.get("skipped"):
        callback.log(f"walk-forward validation skipped: {result['skipped']}", level="WARNING")
    else:
        callback.log(f"walk-forward: {len(result['folds'])} folds, mean out-of-sample "
                     f"{_fmt(result['mean_out_of_sample_score'])}, degradation {_fmt(result['degradation'])}")
    return result


def save_configuration(run: Run, validation: dict[str, Any] | None) -> None:
    """Step 4: the winner goes into trained_configurations with its backtest (trades, curves, folds), in
    the transaction that ends the job."""
    row, best, data = run.row, run.search.best, run.data
    skipped = (validation or {}).get("skipped")  # the step indicator shows it while this step runs
    state = {"validation_off": True} if validation is None else {"validation_skipped": skipped} if skipped else {}
    run.callback.enter_step(SAVE_CONFIGURATION, {"params": best.params, **state})
    saved: dict[str, Any] = {}
    record = backtest_record(data, strategy=row["strategy"], symbol=row["symbol"], timeframe=row["timeframe"],
                             params=best.params, settings=run.config.engine_settings, objective=row["objective"],
                             min_trades=run.config.min_trades, validation=validation)

    def insert(conn) -> None:
        saved.update(config_store.insert_configuration(
            conn, strategy=row["strategy"], symbol=row["symbol"], timeframe=row["timeframe"],
            params=best.params, objective=row["objective"], score=best.score, metrics=best.metrics,
            validation=validation, training_job_id=run.job_id,
            data_start=data["timestamp"].iloc[0].to_pydatetime(),
            data_end=data["timestamp"].iloc[-1].to_pydatetime()))
        insert_backtest(conn, record.columns(), record.trades, "trained", trained_configuration_id=saved["id"],
                        training_job_id=run.job_id)

    result = {**_partial_result(run), "validation": validation, "backtest_stored": True}  # committed with it
    run.callback.finish("succeeded", result=result, before_row=insert)
    log.info("job %s saved trained configuration %s", run.job_id, saved.get("id"))


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
