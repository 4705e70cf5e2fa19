"""What people do to training jobs — create, stop, delete, resume — for the API and the CLI.

PostgreSQL holds the truth; Redis carries the work and the stop flag. Each action writes
the row first, so a lost Redis delays a job but never loses one (reconciliation enqueues
queued rows again).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import redis as redis_lib

from trad.config import Settings
from trad.db import Database
from trad.errors import Conflict, NotFound, ServiceUnavailable
from trad.jobs.queue import REDIS_ERRORS, enqueue_run, kill_run, new_run_id, set_cancel_flag
from trad.jobs.requests import JobRequest, check_job_request
from trad.store import jobs as job_store
from trad.store.candles import candle_summary, count_candles
from trad.training.steps import job_steps

log = logging.getLogger(__name__)


def _require_redis(redis: redis_lib.Redis) -> None:
    try:
        redis.ping()
    except REDIS_ERRORS as exc:
        raise ServiceUnavailable(f"Redis is not reachable: {exc}") from None


def get_job_or_404(db: Database, job_id: int) -> dict[str, Any]:
    """The row of a job; NotFound if there is none."""
    with db.connection() as conn:
        row = job_store.get_job(conn, job_id)
    if row is None:
        raise NotFound(f"training job {job_id} does not exist")
    return row


def create_job(db: Database, redis: redis_lib.Redis, settings: Settings, request: JobRequest,
               batch_id: int | None = None) -> dict[str, Any]:
    """Check the request, insert the job `queued` and enqueue its first run."""
    with db.connection() as conn:
        ranges = candle_summary(conn, request.symbol)

    def candles_between(start: datetime | None, end: datetime | None) -> int:
        with db.connection() as conn:
            return count_candles(conn, request.symbol, request.timeframe, start, end)

    config = check_job_request(request, ranges, settings.max_configs, candles_between)
    _require_redis(redis)
    with db.transaction() as conn:
        job_id = job_store.next_job_id(conn)
        row = job_store.insert_job(
            conn, id=job_id, job_name=request.default_name(), strategy=request.strategy,
            symbol=request.symbol, timeframe=request.timeframe, optimizer=request.optimizer,
            objective=request.objective, config=config.to_dict(), batch_id=batch_id,
            rq_job_id=new_run_id(job_id), total_steps=len(job_steps(config.validation.enabled)))
    try:
        enqueue_run(redis, settings, job_id, row["rq_job_id"])
    except REDIS_ERRORS as exc:
        _forget_unqueued(db, job_id)
        raise ServiceUnavailable(f"Redis is not reachable: {exc}") from None
    log.info("job %s created and queued as %s", job_id, row["rq_job_id"])
    return row


def _forget_unqueued(db: Database, job_id: int) -> None:
    """Undo an insert whose enqueue failed; if even that fails, reconciliation enqueues it later."""
    try:
        with db.transaction() as conn:
            job_store.delete_job(conn, job_id)
    except Exception:
        log.warning("job %s stays queued until Redis is back", job_id)


def stop_job(db: Database, redis: redis_lib.Redis, settings: Settings, job_id: int) -> dict[str, Any]:
    """Ask a job to stop: a queued one stops at once, a running one within seconds.

    The Redis flag names the run read under the row lock, the one the row says is running.
    """
    with db.transaction() as conn:
        row = job_store.get_job(conn, job_id, for_update=True)
        if row is None:
            raise NotFound(f"training job {job_id} does not exist")
        if row["status"] in job_store.TERMINAL_STATUSES:
            raise Conflict(f"training job {job_id} is already {row['status']}")
        row = job_store.request_cancel(conn, job_id)
    if row["status"] != "running" or not row["rq_job_id"]:
        return row  # stopped already, or a run without an id: it reads the row
    try:
        set_cancel_flag(redis, settings, row["rq_job_id"])
    except REDIS_ERRORS:
        log.warning("job %s: stop flag not set in Redis; the worker reads it from the row", job_id)
    return row


def delete_job(db: Database, redis: redis_lib.Redis, settings: Settings, job_id: int) -> None:
    """Stop the job if it runs, then delete it with its metrics and logs; a job that ends meanwhile
    is deleted all the same."""
    row = get_job_or_404(db, job_id)
    if row["status"] in ("queued", "running"):
        try:
            stop_job(db, redis, settings, job_id)
        except Conflict:
            pass  # it ended since it was read (e.g. in Save Configuration): nothing to stop, delete it
        if row["status"] == "running":
            try:
                kill_run(redis, row["rq_job_id"])
            except REDIS_ERRORS:
                pass  # the worker sees the row gone at its next write and stops
    with db.transaction() as conn:
        if not job_store.delete_job(conn, job_id):
            raise NotFound(f"training job {job_id} does not exist")


def resume_job(db: Database, redis: redis_lib.Redis, settings: Settings, job_id: int) -> dict[str, Any]:
    """Queue a stopped or failed job again; its recorded evaluations are not computed again."""
    _require_redis(redis)
    run_id = new_run_id(job_id)
    with db.transaction() as conn:
        row = job_store.get_job(conn, job_id, for_update=True)
        if row is None:
            raise NotFound(f"training job {job_id} does not exist")
        if row["status"] not in ("stopped", "failed"):
            raise Conflict(f"training job {job_id} is {row['status']}; only stopped or failed jobs resume")
        row = job_store.requeue(conn, job_id, run_id, ("stopped", "failed"))
    try:  # the new run has its own stop flag: the old run's does not reach it
        enqueue_run(redis, settings, job_id, run_id)
    except REDIS_ERRORS as exc:
        log.warning("job %s resumed but not enqueued (%s); reconciliation will enqueue it", job_id, exc)
    return row
