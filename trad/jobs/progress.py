"""JobProgress: one training job's progress, written to its row (the workflow's `ProgressSink`).

- Picklable: it holds plain data; its PostgreSQL and Redis connections open lazily and are
  dropped when it is pickled (or found inherited through a fork), so a copy works in a
  child process.
- Throttled: at most one UPDATE of the row per `interval` seconds over every process of the
  job (the row's `updated_at` is the shared clock); forced writes only on state changes
  (start, each step, success, failure, stop). The newest state is kept until written.
- Never fatal: a database or Redis error is logged, the state and the buffered metrics and
  log lines are kept, and the write is retried with backoff. Terminal states are retried
  until written (or `terminal_deadline` passes, then the error is raised).
- Cancellation: `check_cancelled()` looks at the run's stop flag (`trad.jobs.stop_flags`)
  every `cancel_check_interval` seconds, the row on every write, and raises `Cancelled`.
- Success: the trained configuration and its backtest are written in the transaction of the
  final state, so they commit together or not at all.
- The final state is retried every TERMINAL_RETRY seconds at most, whatever backoff the
  progress writes had reached, so it reaches the row within about that long of the
  database's return (progress writes back off up to MAX_BACKOFF: a connect timing out
  would otherwise stall the training).
"""

from __future__ import annotations

import logging
import math
import os
import time
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import psycopg2
import psycopg2.errors

from trad.db import close_quietly, connect, leave_to_parent
from trad.errors import first_line
from trad.jobs.stop_flags import UNKNOWN_RUN, StopFlag
from trad.store import jobs as job_store
from trad.store.backtests import insert_backtest
from trad.store.configs import insert_configuration
from trad.store.logs import insert_logs
from trad.store.metrics import insert_metrics
from trad.training.forecast import JobForecast, format_eta
from trad.training.results import TrainedConfiguration
from trad.training.steps import VALIDATION, Step, job_steps, overall_progress, step_named

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
TERMINAL_RETRY = 1.0
HEARTBEAT_SECONDS = 15.0


class JobProgress:
    """Progress of one training job: steps, episodes, candles, scores, ETA, metrics, logs."""

    def __init__(self, job_id: int, database_url: str, *, interval: float = 5.0,
                 redis_url: str | None = None, redis_prefix: str = "trad:", run_id: Any = UNKNOWN_RUN,
                 validation: bool = True, cancel_check_interval: float = 0.25,
                 log_interval: float = 1.0, terminal_deadline: float = 600.0) -> None:
        self.job_id = int(job_id)
        self.database_url = database_url
        self.interval = float(interval)
        self.run_id = run_id
        self.stop_flag = StopFlag(job_id, redis_url=redis_url, redis_prefix=redis_prefix, run_id=run_id,
                                  interval=cancel_check_interval)
        self.steps: tuple[Step, ...] = job_steps(validation)
        self.log_interval = log_interval
        self.terminal_deadline = terminal_deadline
        self.step: Step | None = None
        self.progress = 0.0
        self._reset_process_state()

    def _reset_process_state(self) -> None:
        """What belongs to one process: connections, buffers, timers."""
        self._pid = os.getpid()
        self.writes = 0  # UPDATEs of the row made by this process
        self.failed_writes = 0
        self._conn: Any = None
        self._pending: dict[str, Any] = {}
        self._metrics: list[dict[str, Any]] = []
        self._logs: list[tuple[datetime, str, str]] = []
        self._last_write = -math.inf
        self._next_retry = -math.inf
        self._backoff = 0.5
        self._last_log = -math.inf
        self._last_warning = -math.inf  # its own clock: progress lines must not hide a failed write
        self._forecast = JobForecast()
        self._shown: dict[str, Any] = {}  # the newest episode and candle fields, for the log line

    def __getstate__(self) -> dict[str, Any]:
        process_state = {"writes", "failed_writes"}
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_") and k not in process_state}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_process_state()

    # State changes: always written at once.

    def start(self, message: str = "training started") -> None:
        """The job began running on this worker."""
        self._pending.update(total_steps=len(self.steps), current_stage="Starting", step_number=0)
        self.log(message)
        self._write_now()

    def enter_step(self, name: str, details: Mapping[str, Any] | None = None) -> None:
        """Begin a step: the previous ones count as finished."""
        self.step = step_named(self.steps, name)
        self._forecast.begin(name, time.monotonic())
        self._shown = {"step_percentage": 0.0}
        self._set_progress(0.0)
        self._pending.update(current_stage=name, step_number=self.step.number,
                             total_steps=len(self.steps), step_percentage=0.0,
                             step_details=dict(details or {}))
        self.log(f"step {self.step.number}/{len(self.steps)}: {name}")
        self._write_now()

    def plan(self, processes: int, validation_work: float, save_work: float) -> None:
        """What the ETA needs to know ahead: the processes that run episodes, validation's work
        in candles (`trad.training.validation.validation_work`; 0 when it is off) and saving's
        (`trad.training.results.record_work`)."""
        self._forecast.plan(processes, validation_work, save_work)

    def finish(self, status: str, *, result: Mapping[str, Any] | None = None,
               error: str | None = None, trained: TrainedConfiguration | None = None) -> None:
        """Write the terminal state (succeeded, failed or stopped), retrying until it is written;
        `trained` (with its backtest) in the same transaction."""
        fields: dict[str, Any] = {"status": status, "finished_at": job_store.NOW,
                                  "estimated_completion": None, "eta_seconds": None}
        if status == "succeeded":
            self.progress = 100.0
            fields.update(progress=100.0, step_percentage=100.0, eta_seconds=0.0,
                          estimated_completion=job_store.NOW)
        if result is not None:
            fields["result"] = dict(result)
        if error is not None:
            fields["error_message"] = error[:4000]
        self.log(f"training {status}" + (f": {error}" if error else ""),
                 level="ERROR" if status == "failed" else "INFO")
        self._pending.update(fields)
        saved: dict[str, int] = {}

        def save(conn: Any) -> None:
            saved["id"] = save_trained(conn, self.job_id, trained)

        deadline = time.monotonic() + self.terminal_deadline
        while not self._write(terminal=True, before_row=save if trained is not None else None):
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {self.job_id}: could not write its final state '{status}'")
            time.sleep(min(self._backoff, TERMINAL_RETRY, max(0.0, deadline - time.monotonic())))
        if saved:
            log.info("job %s saved trained configuration %s", self.job_id, saved["id"])

    # Progress within a step: throttled.

    def step_progress(self, percentage: float, details: Mapping[str, Any] | None = None,
                      **fields: Any) -> None:
        """The current step is `percentage` % done; `fields` are other row columns to show."""
        self._set_progress(percentage)
        shown = round(min(100.0, max(0.0, percentage)), 4)
        self._pending["step_percentage"] = self._shown["step_percentage"] = shown
        if details is not None:
            self._pending["step_details"] = dict(details)
        self._pending.update(fields)
        self._shown.update(fields)
        self._log_progress()
        self.check_cancelled()
        self._write_if_due()

    def __call__(self, iteration: int, total: int, score: float | None,
                 metadata: Mapping[str, Any]) -> None:
        """The optimizer's job callback: episodes, scores and the candles of the current backtest."""
        share = float(metadata.get("progress", 0.0))
        if metadata.get("planned_fits") or metadata.get("model_fits"):
            self._forecast.model_fits(metadata.get("model_fits") or [], metadata.get("planned_fits") or [])
        evaluation = metadata.get("evaluation")
        if evaluation is not None:
            self.record_evaluation(evaluation)
            self._forecast.episode_finished(int(iteration), float(metadata.get("episode_optimizer_seconds") or 0.0),
                                            evaluation.duration_ms / 1000.0,
                                            int(metadata.get("total_candles") or 0) // 2)
        self._forecast.episodes(time.monotonic(), share * total, total)
        fields: dict[str, Any] = {"current_episode": int(iteration), "total_episodes": int(total)}
        if score is not None:
            fields.update(current_score=float(score), current_reward=max(0.0, float(score)),
                          current_loss=max(0.0, -float(score)))
        if metadata.get("best_score") is not None:
            fields["best_score"] = float(metadata["best_score"])
            fields["best_params"] = metadata.get("best_params")
        if metadata.get("total_candles"):
            fields.update(candles_processed=int(metadata["candles_processed"]),
                          total_candles=int(metadata["total_candles"]),
                          backtest_stage=metadata.get("stage"))
        details = {"episode": metadata.get("episode"),
                   "episode_progress": round(float(metadata.get("episode_progress") or 0.0), 4),
                   "in_flight": len(metadata.get("in_flight") or ()),
                   "optimizer_seconds": round(float(metadata.get("optimizer_seconds") or 0.0), 3)}
        self.step_progress(100.0 * share, details, **fields)

    def candles(self, processed: int, total: int, stage: str, step_percentage: float,
                details: Mapping[str, Any] | None = None) -> None:
        """Candle progress of a backtest outside the search (e.g. a validation fold)."""
        if self.step is not None and self.step.name == VALIDATION:
            self._forecast.validation_progress(time.monotonic(), step_percentage / 100.0)
        self.step_progress(step_percentage, details, candles_processed=int(processed),
                           total_candles=int(total), backtest_stage=stage)

    def record_evaluation(self, evaluation: Any) -> None:
        """Buffer a training_metrics row for a finished episode; written with the next write."""
        self._metrics.append({"iteration": evaluation.iteration, "score": evaluation.score,
                              "valid": evaluation.valid, "params": evaluation.params,
                              "metrics": evaluation.metrics, "duration_ms": evaluation.duration_ms})

    def log(self, message: str, level: str = "INFO") -> None:
        """Buffer a training_logs line; also echo it to this process's log."""
        level = level.upper()
        self._logs.append((datetime.now(timezone.utc), level, message))
        log.log(logging.getLevelNamesMapping().get(level, logging.INFO), "job %s: %s", self.job_id, message)

    def flush(self) -> bool:
        """Write whatever is pending now; False if the database could not be reached."""
        return self._write()

    # Cancellation.

    def check_cancelled(self) -> None:
        """Raise Cancelled if a stop was requested (checked at most every cancel_check_interval s)."""
        self.stop_flag.check(self._row_says_stop)

    def _row_says_stop(self) -> bool:
        try:
            conn = self._connection()
            with conn:
                state = job_store.job_state(conn, self.job_id)
        except psycopg2.Error as exc:
            self._drop_connection(exc)
            return False
        return self.stop_flag.judge(state)

    # Writing.

    def _set_progress(self, step_percentage: float) -> None:
        if self.step is None:
            return
        self.progress = max(self.progress, overall_progress(self.steps, self.step, step_percentage))
        self._pending["progress"] = round(self.progress, 4)

    def _eta_fields(self) -> dict[str, Any]:
        """The forecast as row fields (computed once per write, not per report)."""
        eta = self._forecast.seconds_left(time.monotonic())
        return {"eta_seconds": None if eta is None else round(eta, 1),
                "estimated_completion": None if eta is None else job_store.seconds_from_now(eta)}

    def _write_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_write >= self.interval and now >= self._next_retry:
            if self._pending or self._metrics or self._logs or now - self._last_write >= HEARTBEAT_SECONDS:
                self._write(throttled=True)

    def _write_now(self) -> None:
        """A state change: written at once unless the database is down (then retried later)."""
        self._write()
        self.check_cancelled()

    def _write(self, throttled: bool = False, terminal: bool = False,
               before_row: Callable[[Any], None] | None = None) -> bool:
        """One transaction: buffered metrics and logs, then the row. True when all was written."""
        fields = {**self._pending, "heartbeat_at": job_store.NOW}
        if not terminal and self.step is not None:
            fields.update(self._eta_fields())
        metrics, logs = list(self._metrics), list(self._logs)
        try:
            conn = self._connection()
            with conn:
                insert_metrics(conn, self.job_id, metrics)
                insert_logs(conn, self.job_id, logs)
                if before_row is not None:
                    before_row(conn)
                row = job_store.update_job(
                    conn, self.job_id, fields, run_id=self.run_id,
                    statuses=None if terminal else ("running",),
                    min_interval=self.interval if throttled else None)
                state = None if row else job_store.job_state(conn, self.job_id)
        except psycopg2.errors.ForeignKeyViolation:
            self._drop_connection(None)
            self._metrics.clear()
            self._logs.clear()
            self.stop_flag.reason = "the job was deleted"
            return True
        except psycopg2.Error as exc:
            self._drop_connection(exc)
            return False
        del self._metrics[:len(metrics)]
        del self._logs[:len(logs)]
        self._backoff = 0.5
        if row is None:
            if not terminal and not self.stop_flag.judge(state):
                # Another process of the job wrote within the interval: try again shortly.
                self._last_write = time.monotonic() - self.interval + min(0.25, self.interval)
            return True
        self.writes += 1
        self._last_write = time.monotonic()
        self._pending.clear()
        if row["cancel_requested"] and not terminal:
            self.stop_flag.reason = self.stop_flag.reason or "stop requested"
        return True

    def _connection(self) -> Any:
        if self._conn is not None and self._pid != os.getpid():
            leave_to_parent(self._conn)  # inherited through fork: the parent's session
            self._conn = None
            self._pid = os.getpid()
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.database_url, connect_timeout=3,
                                 application_name=f"trad-progress-{self.job_id}")
        return self._conn

    def _drop_connection(self, exc: Exception | None) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            close_quietly(conn)
        if exc is None:
            return
        self.failed_writes += 1
        now = time.monotonic()
        self._next_retry = now + self._backoff
        self._backoff = min(MAX_BACKOFF, self._backoff * 2)
        if now - self._last_warning >= self.log_interval:
            self._last_warning = now
            log.warning("job %s: progress not written, will retry: %s", self.job_id,
                        first_line(exc))

    def _log_progress(self) -> None:
        """Once per log_interval: `25.6 % (Optimization 1.2 %) episode 3/40 · candle 12,000/20,000
        (60 %) [trades] · ETA 41 s`."""
        now = time.monotonic()
        if now - self._last_log < self.log_interval:
            return
        self._last_log = now
        shown = self._shown
        line = (f"{self.progress:.1f} % ({self.step.name if self.step else 'starting'} "
                f"{shown.get('step_percentage', 0.0):.1f} %)")
        if shown.get("current_episode") is not None and self.step is not None and self.step.name != VALIDATION:
            line += f" episode {shown['current_episode']}/{shown.get('total_episodes', '?')}"
        if shown.get("total_candles"):
            processed, total = int(shown["candles_processed"]), int(shown["total_candles"])
            line += (f" · candle {processed:,}/{total:,} ({100 * processed // total} %)"
                     + (f" [{shown['backtest_stage']}]" if shown.get("backtest_stage") else ""))
        eta = self._forecast.seconds_left(now)
        if eta is not None:
            line += f" · ETA {format_eta(eta)}"
        log.info("job %s: %s", self.job_id, line)


def save_trained(conn: Any, job_id: int, trained: TrainedConfiguration) -> int:
    """Store a job's trained configuration and its backtest; returns the configuration's id."""
    saved = insert_configuration(conn, strategy=trained.strategy, symbol=trained.symbol, timeframe=trained.timeframe,
                                 params=trained.params, objective=trained.objective, score=trained.score,
                                 metrics=trained.metrics, validation=trained.validation, training_job_id=job_id,
                                 data_start=trained.data_start, data_end=trained.data_end)
    insert_backtest(conn, trained.backtest.columns(), trained.backtest.trades, "trained",
                    trained_configuration_id=saved["id"], training_job_id=job_id)
    return int(saved["id"])
