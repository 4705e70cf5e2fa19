"""SQL of `training_batches` (batch training over symbols) and of the jobs that belong to a batch.

Two advisory locks keep batches orderly without extra columns: the start lock serialises
"is a batch running? then start one", and a session lock held by the process creating a
batch's jobs tells readers that the batch is still being dispatched (a process that dies
mid-dispatch releases it with its connection).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from psycopg2.extensions import connection as Connection

from trad.store import SafeJson as Json
from trad.store.filters import where

BATCH_LOCK = 0x7472_6262  # "trbb": the class key of every batch advisory lock
START_LOCK = 0            # second key of the start lock; batch ids start at 1
ACTIVE_JOB_STATUSES = ("queued", "running")


def lock_batch_starts(conn: Connection) -> None:
    """Serialise batch starts until the end of this transaction."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (BATCH_LOCK, START_LOCK))


def hold_dispatch_lock(conn: Connection, batch_id: int) -> None:
    """Mark a batch as being dispatched by this session (until released or disconnected)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s, %s)", (BATCH_LOCK, int(batch_id)))


def release_dispatch_lock(conn: Connection, batch_id: int) -> None:
    """The batch's jobs are all created (or given up on)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(%s, %s)", (BATCH_LOCK, int(batch_id)))


def dispatch_over(conn: Connection, batch_id: int) -> bool:
    """Whether no session is creating this batch's jobs; holds the lock to the end of the transaction."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_xact_lock(%s, %s) AS free", (BATCH_LOCK, int(batch_id)))
        return bool(cur.fetchone()["free"])


def insert_batch(conn: Connection, *, symbols: Iterable[str], template: Mapping[str, Any], force: bool,
                 skipped: int) -> dict:
    """Insert a `running` batch over these symbols; returns its row."""
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO training_batches (symbols, template, force, skipped)
               VALUES (%s, %s, %s, %s) RETURNING *""",
            (list(symbols), Json(dict(template)), force, skipped))
        return dict(cur.fetchone())


def get_batch(conn: Connection, batch_id: int) -> dict | None:
    """The row of a batch, or None."""
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM training_batches WHERE id = %s", (batch_id,))
        row = cur.fetchone()
        return dict(row) if row else None


def latest_batch(conn: Connection, status: str | None = None) -> dict | None:
    """The newest batch (optionally only of one status), or None."""
    clause, params = where(("status = %s", status))
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM training_batches {clause} ORDER BY id DESC LIMIT 1", params)
        row = cur.fetchone()
        return dict(row) if row else None


def last_finished_at(conn: Connection) -> datetime | None:
    """When the newest finished batch ended."""
    with conn.cursor() as cur:
        cur.execute("SELECT max(finished_at) AS at FROM training_batches WHERE status <> 'running'")
        return cur.fetchone()["at"]


def record_dispatch_failure(conn: Connection, batch_id: int, note: str) -> None:
    """A symbol whose job could not be created: counted as failed, its reason kept in `message`."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE training_batches
                  SET failed = failed + 1, updated_at = now(),
                      message = concat_ws('; ', message, %s)
                WHERE id = %s""",
            (note, batch_id))


def request_batch_cancel(conn: Connection, batch_id: int, mode: str = "now") -> dict | None:
    """Flag a running batch for cancelling in `mode` ('now' or 'after_current'; 'now' wins over
    'after_current', never the reverse); None when it is not running."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE training_batches
                  SET cancel_requested = true, updated_at = now(),
                      cancel_mode = CASE WHEN cancel_mode = 'now' THEN 'now' ELSE %s END
                WHERE id = %s AND status = 'running' RETURNING *""",
            (mode, batch_id))
        row = cur.fetchone()
        return dict(row) if row else None


def stop_queued_batch_jobs(conn: Connection, batch_id: int) -> list[int]:
    """Stop every job of the batch that has not started; a job a worker starts meanwhile waits
    for this row lock and then starts no more (its row is no longer queued). Returns their ids."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE training_jobs SET cancel_requested = true, status = 'stopped', finished_at = now()
                WHERE batch_id = %s AND status = 'queued' RETURNING id""",
            (batch_id,))
        return sorted(int(row["id"]) for row in cur.fetchall())


def cancel_requested(conn: Connection, batch_id: int) -> bool:
    """Whether someone asked this batch to stop."""
    with conn.cursor() as cur:
        cur.execute("SELECT cancel_requested FROM training_batches WHERE id = %s", (batch_id,))
        row = cur.fetchone()
        return bool(row and row["cancel_requested"])


def finish_batch(conn: Connection, batch_id: int, *, status: str, completed_symbols: int,
                 successful: int, failed: int, stopped: int, message: str) -> dict | None:
    """Record a running batch's end and final counts; None if it had already ended."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE training_batches
                  SET status = %s, completed_symbols = %s, successful = %s, failed = %s, stopped = %s,
                      message = %s, current_symbol = NULL, finished_at = now(), updated_at = now()
                WHERE id = %s AND status = 'running' RETURNING *""",
            (status, completed_symbols, successful, failed, stopped, message, batch_id))
        row = cur.fetchone()
        return dict(row) if row else None


def batch_job_tally(conn: Connection, batch_id: int) -> dict:
    """Jobs of a batch by status, the summed progress of the active ones, the symbol now training."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT count(*) FILTER (WHERE status = 'queued')    AS queued,
                      count(*) FILTER (WHERE status = 'running')   AS running,
                      count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
                      count(*) FILTER (WHERE status = 'failed')    AS failed,
                      count(*) FILTER (WHERE status = 'stopped')   AS stopped,
                      coalesce(sum(progress) FILTER (WHERE status IN ('queued', 'running')), 0)
                                                                   AS active_progress,
                      (array_agg(symbol ORDER BY started_at DESC, id)
                           FILTER (WHERE status = 'running'))[1]   AS current_symbol
                 FROM training_jobs WHERE batch_id = %s""",
            (batch_id,))
        row = dict(cur.fetchone())
    for key in ("queued", "running", "succeeded", "failed", "stopped"):
        row[key] = int(row[key])
    row["active_progress"] = float(row["active_progress"])
    return row


def batch_job_timings(conn: Connection, batch_id: int) -> list[dict]:
    """Every job of a batch with what its ETA needs: status, times, its own forecast, and its
    candles (as loaded by a finished job; counted in the job's date range for the others)."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT j.id, j.status, j.started_at, j.finished_at, j.estimated_completion,
                      coalesce((j.result -> 'data' ->> 'candles')::bigint, (
                          SELECT count(*) FROM candles c
                           WHERE c.symbol = j.symbol AND c.timeframe = j.timeframe
                             AND c.ts >= coalesce((j.config ->> 'start')::timestamptz, '-infinity')
                             AND c.ts <= coalesce((j.config ->> 'end')::timestamptz, 'infinity'))) AS candles
                 FROM training_jobs j WHERE j.batch_id = %s ORDER BY j.started_at NULLS LAST, j.id""",
            (batch_id,))
        return [dict(row) for row in cur.fetchall()]


def active_batch_job_ids(conn: Connection, batch_id: int) -> list[int]:
    """Ids of the batch's queued and running jobs."""
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM training_jobs WHERE batch_id = %s AND status = ANY(%s) ORDER BY id",
                    (batch_id, list(ACTIVE_JOB_STATUSES)))
        return [int(row["id"]) for row in cur.fetchall()]
