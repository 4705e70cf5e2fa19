"""Reconciliation: make the rows tell the truth after crashes and lost queues.

Run by every `trad worker` at start and every few seconds after (RQ's maintenance hook):
- a `running` job that has been silent for SILENT_AFTER seconds, whose worker is gone or
  no longer runs it (killed, machine lost), ends `failed` naming the dead worker — or
  `stopped` if a stop had been asked for;
- a running job asked to stop that has not stopped after STOP_GRACE seconds gets RQ's stop
  command (its work horse is killed; the worker records it `stopped`);
- a `queued` job whose run Redis no longer knows (Redis restarted or flushed) is enqueued
  again. Each row is handled under a row lock (SKIP LOCKED), so two workers reconciling at
  once never handle the same job twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import redis as redis_lib
from rq import Worker

from trad.config import Settings
from trad.db import Database
from trad.jobs.queue import enqueue_run, kill_run, new_run_id, run_exists
from trad.store import jobs as job_store

log = logging.getLogger(__name__)

SILENT_AFTER = 30.0  # seconds without a heartbeat before a running job is checked
STOP_GRACE = 10.0  # seconds a job may take to stop on its own before its horse is killed
QUEUED_GRACE = 10.0  # seconds after creation before a queued job counts as lost


@dataclass
class ReconcileReport:
    """What one reconciliation changed."""

    failed: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.failed or self.stopped or self.killed or self.requeued)


def reconcile(db: Database, redis: redis_lib.Redis, settings: Settings,
              silent_after: float = SILENT_AFTER, queued_grace: float = QUEUED_GRACE) -> ReconcileReport:
    """One pass over running and queued jobs; see the module docstring."""
    report = ReconcileReport()
    end_dead_runs(db, redis, silent_after, report)
    kill_slow_stops(db, redis, report)
    requeue_lost_jobs(db, redis, settings, queued_grace, report)
    return report


def run_is_alive(redis: redis_lib.Redis, worker_name: str | None, run_id: str | None,
                 silent_after: float) -> bool:
    """Whether `worker_name` is alive and still executing `run_id` (its RQ heartbeat is fresh)."""
    if not worker_name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + worker_name, connection=redis)
    if worker is None or worker.last_heartbeat is None:
        return False
    age = (datetime.now(timezone.utc) - worker.last_heartbeat.replace(tzinfo=timezone.utc)).total_seconds()
    return age < silent_after and worker.get_current_job_id() == run_id


def end_dead_runs(db: Database, redis: redis_lib.Redis, silent_after: float, report: ReconcileReport) -> None:
    with db.transaction() as conn:
        for job in job_store.silent_running_jobs(conn, silent_after):
            if run_is_alive(redis, job["worker_name"], job["rq_job_id"], silent_after):
                continue  # a long quiet computation on a live worker
            silent = job["silent_seconds"]
            reason = (f"worker {job['worker_name'] or '(unknown)'} stopped responding"
                      + (f" {float(silent):.0f} s ago" if silent is not None else "")
                      + "; the job was interrupted (resume it to continue from its recorded evaluations)")
            ended = job_store.end_interrupted_run(conn, job["id"], job["rq_job_id"], reason)
            if ended is not None:
                (report.stopped if ended["status"] == "stopped" else report.failed).append(job["id"])
                log.warning("job %s: %s", job["id"], reason)


def kill_slow_stops(db: Database, redis: redis_lib.Redis, report: ReconcileReport) -> None:
    with db.connection() as conn:
        slow = job_store.slow_stops(conn, STOP_GRACE)
    for job in slow:
        if kill_run(redis, job["rq_job_id"]):
            report.killed.append(job["id"])
            log.warning("job %s did not stop within %.0f s: its work horse was killed", job["id"], STOP_GRACE)


def requeue_lost_jobs(db: Database, redis: redis_lib.Redis, settings: Settings, grace: float,
                      report: ReconcileReport) -> None:
    with db.transaction() as conn:
        for job in job_store.waiting_jobs(conn, grace):
            if run_exists(redis, job["rq_job_id"]):
                continue
            run_id = job["rq_job_id"] or new_run_id(job["id"])
            if run_id != job["rq_job_id"]:
                job_store.update_job(conn, job["id"], {"rq_job_id": run_id})
            enqueue_run(redis, settings, job["id"], run_id)
            report.requeued.append(job["id"])
            log.warning("job %s was queued but missing from Redis: enqueued again as %s", job["id"], run_id)


def describe(report: ReconcileReport) -> dict[str, Any]:
    """The report as plain data."""
    return {"failed": report.failed, "stopped": report.stopped, "killed": report.killed,
            "requeued": report.requeued}
