"""What RQ runs: the job function, the bootstrap of a job's run, and the worker class that
watches over training jobs.

`run_training(job_id)` is what the RQ job function calls; it needs no queue, so tests call it
directly. It claims the row, opens the job's pool and its `JobProgress`, and hands them to the
workflow (`trad.training.workflow.train`). A job without a seed draws one as its first run
starts and keeps it in `result.seed` (in the transaction that marks it running, so before any
episode): every resume replays the same search.
"""

from __future__ import annotations

import functools
import logging
import secrets
from typing import Any, Callable

from rq import Worker, get_current_job, worker_registration
from rq.worker import WorkerStatus

from trad.config import Settings, get_settings
from trad.db import Database
from trad.jobs.progress import JobProgress
from trad.jobs.queue import REDIS_ERRORS
from trad.optimize import Evaluation
from trad.store import jobs as job_store
from trad.store.candles import load_frame
from trad.store.metrics import job_metrics
from trad.training.workflow import search_seed, train, validation_enabled

log = logging.getLogger(__name__)

JOB_MONITORING_INTERVAL = 5  # seconds between the worker's heartbeats while a job runs
RECONCILE_INTERVAL = 10  # seconds between reconciliations (RQ's maintenance interval)
SEED_RANGE = 2**31  # drawn seeds are below this: valid for every optimizer's generator


class RoutineMaintenance(logging.Filter):
    """RQ logs its registry cleaning at INFO on every maintenance run, here every
    RECONCILE_INTERVAL seconds: those lines are DEBUG, shown only when rq.worker logs at DEBUG.
    trad's own reconciliation logs only when it changed something."""

    ROUTINE = ("cleaning registries for queue", "cleaning group registries")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not any(part in str(record.msg) for part in self.ROUTINE):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def run_job(job_id: int) -> dict[str, Any] | None:
    """The RQ job function: run the training job `job_id` under this worker."""
    current = get_current_job()
    final = run_training(int(job_id), get_settings(), worker_name=current.worker_name if current else None,
                         rq_job_id=current.id if current else None)
    return {"job_id": job_id, "status": final["status"] if final else None}


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
        progress = JobProgress(job_id, settings.database_url, interval=settings.progress_interval,
                               redis_url=settings.redis_url, redis_prefix=settings.redis_prefix,
                               run_id=row["rq_job_id"], validation=validation_enabled(row))
        train(row, progress, functools.partial(load_frame, db), functools.partial(recorded_evaluations, db, job_id),
              max_configs=settings.max_configs)
        with db.connection() as conn:
            return job_store.get_job(conn, job_id)
    finally:
        db.close()


def recorded_evaluations(db: Database, job_id: int) -> list[Evaluation]:
    """The evaluations earlier runs of a job recorded, which a resumed search does not run again."""
    with db.connection() as conn:
        return [Evaluation(m["iteration"], m["params"], m["score"], m["metrics"] or {}, m["duration_ms"] or 0.0)
                for m in job_metrics(conn, job_id)]


def training_job_id(rq_job: Any) -> int | None:
    """The training job a run belongs to (the first argument of run_job)."""
    try:
        return int(rq_job.args[0])
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


class TrainingWorker(Worker):
    """An RQ worker that records on the row when a work horse dies or is stopped, and
    reconciles jobs at start and every RECONCILE_INTERVAL seconds.

    It outlives a Redis outage: RQ's worker quits on the first failed heartbeat, leaving its
    work horse unwatched and its queue unserved. Here the heartbeats, state changes and
    maintenance of a worker skip a turn instead (the horse needs only PostgreSQL), and
    waiting for work already retries until Redis answers. A Redis that came back empty has
    forgotten the worker: its next heartbeat registers it again (health, /rq, reconciliation).
    """

    trad_settings: Settings | None = None

    def __init__(self, *args: Any, settings: Settings | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("job_monitoring_interval", JOB_MONITORING_INTERVAL)
        kwargs.setdefault("maintenance_interval", RECONCILE_INTERVAL)
        # An idle worker waits on the queue for worker_ttl - 15 s between maintenance runs.
        kwargs.setdefault("worker_ttl", RECONCILE_INTERVAL + 15)
        kwargs.setdefault("work_horse_killed_handler", self._horse_killed)
        super().__init__(*args, **kwargs)
        if not any(isinstance(f, RoutineMaintenance) for f in self.log.filters):
            self.log.addFilter(RoutineMaintenance())
        self.trad_settings = settings or get_settings()
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.trad_settings.database_url, max_connections=2,
                                application_name="trad-worker")
        return self._db

    def reconcile(self) -> None:
        """Fail dead runs, re-enqueue lost queued jobs; never lets an error stop the worker."""
        from trad.jobs.reconcile import reconcile

        try:
            report = reconcile(self.db, self.connection, self.trad_settings)
            if report.changed:
                self.log.info("reconciled: %s", report)
        except Exception:  # a database or Redis hiccup: try again at the next interval
            self.log.exception("reconciliation failed; will retry")

    def run_maintenance_tasks(self) -> None:
        self._despite_redis_outage("maintenance", super().run_maintenance_tasks)
        self.reconcile()

    def maintain_heartbeats(self, *args: Any, **kwargs: Any) -> None:
        self._despite_redis_outage("heartbeat", self._beat, super().maintain_heartbeats, *args, **kwargs)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:  # queued in the caller's pipeline: nothing is sent yet
            super().heartbeat(timeout, pipeline)
            return
        self._despite_redis_outage("heartbeat", self._beat, super().heartbeat, timeout)

    def set_state(self, *args: Any, **kwargs: Any) -> None:
        self._despite_redis_outage("state change", super().set_state, *args, **kwargs)

    def check_for_suspension(self, *args: Any, **kwargs: Any) -> None:
        self._despite_redis_outage("suspension check", super().check_for_suspension, *args, **kwargs)

    def _beat(self, send: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        send(*args, **kwargs)
        if not self.connection.sismember(self.redis_workers_keys, self.key):
            with self.connection.pipeline() as pipeline:
                pipeline.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
                worker_registration.register(self, pipeline)
                pipeline.expire(self.key, self.worker_ttl + 60)
                pipeline.execute()
            self.log.warning("Worker %s: Redis had forgotten this worker; registered again", self.name)

    def _despite_redis_outage(self, what: str, action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            action(*args, **kwargs)
        except REDIS_ERRORS as exc:
            self.log.warning("Worker %s: Redis unreachable, %s skipped until it answers: %s", self.name, what, exc)

    def execute_job(self, job: Any, queue: Any) -> None:
        """RQ's run of one job, surviving a Redis that is gone when the work horse ends (RQ then
        asks Redis how the job went, and its worker would quit). The training job's own end
        is in PostgreSQL; if the horse did not write it, the run is recorded as interrupted."""
        try:
            super().execute_job(job, queue)
        except REDIS_ERRORS as exc:
            self._horse_pid = 0
            self.log.warning("Worker %s: Redis unreachable as RQ job %s ended (%s)", self.name, job.id, exc)
            self._end_interrupted(job, f"the work horse of worker {self.name} ended while Redis was "
                                       f"unreachable, without recording the end of the job")
            self.set_state(WorkerStatus.IDLE)

    def _horse_killed(self, job: Any, retpid: int, ret_val: int, rusage: Any) -> None:
        self._end_interrupted(job, f"the work horse of worker {self.name} died unexpectedly "
                                   f"(exit status {ret_val})")

    def _handle_stopped_job(self, job: Any, queue: Any, execution: Any) -> None:
        self._end_interrupted(job, "stopped: the work horse was terminated on request")
        super()._handle_stopped_job(job, queue, execution)

    def _end_interrupted(self, job: Any, reason: str) -> None:
        job_id = training_job_id(job)
        if job_id is None:
            return
        try:
            with self.db.transaction() as conn:
                job_store.end_interrupted_run(conn, job_id, job.id, reason)
        except Exception:
            self.log.exception("could not record the end of training job %s; reconciliation will", job_id)
