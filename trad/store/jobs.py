"""SQL of the `training_jobs` table."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from trad.store import SafeJson as Json
from trad.store.filters import where

STATUSES = ("queued", "running", "succeeded", "failed", "stopped")
TERMINAL_STATUSES = ("succeeded", "failed", "stopped")

# Columns a writer may set; id, version and created_at belong to the database.
WRITABLE = frozenset({
    "id", "job_name", "status", "strategy", "symbol", "timeframe", "optimizer", "objective", "config",
    "batch_id", "rq_job_id", "progress", "current_stage", "step_number", "total_steps",
    "step_percentage", "step_details", "current_episode", "total_episodes", "current_score",
    "best_score", "best_params", "current_reward", "current_loss", "candles_processed",
    "total_candles", "backtest_stage", "eta_seconds", "started_at", "finished_at",
    "estimated_completion", "cancel_requested", "error_message", "result", "worker_name",
    "heartbeat_at", "attempts",
})
JSON_COLUMNS = frozenset({"config", "step_details", "best_params", "result"})
# Columns never written lower than they are: `col = GREATEST(col, %s)`.
MONOTONIC = {column: sql.SQL("{0} = GREATEST({0}, %s)").format(sql.Identifier(column))
             for column in ("progress", "current_episode")}

NOW = sql.SQL("now()")  # a value meaning "the database's clock", e.g. {"heartbeat_at": NOW}


def seconds_from_now(seconds: float) -> sql.Composable:
    """A value meaning "the database's clock plus `seconds`"."""
    return sql.SQL("now() + make_interval(secs => {})").format(sql.Literal(float(seconds)))


def _value(column: str, value: Any) -> Any:
    return Json(value) if column in JSON_COLUMNS and value is not None else value


def _assignments(fields: Mapping[str, Any]) -> tuple[sql.Composable, list[Any]]:
    """`col = %s, …` for the given fields; progress and current_episode never move backwards
    (a late report of an earlier state, or a resumed run counting its recorded episodes)."""
    unknown = set(fields) - (WRITABLE - {"id"})
    if unknown:
        raise ValueError(f"not writable columns of training_jobs: {', '.join(sorted(unknown))}")
    parts, params = [], []
    for column, value in fields.items():
        if isinstance(value, sql.Composable):
            parts.append(sql.SQL("{} = {}").format(sql.Identifier(column), value))
            continue
        if column in MONOTONIC:
            parts.append(MONOTONIC[column])
        else:
            parts.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
        params.append(_value(column, value))
    return sql.SQL(", ").join(parts), params


def insert_job(conn: Connection, **fields: Any) -> dict:
    """Insert a `queued` job row; returns the whole row."""
    unknown = set(fields) - WRITABLE
    if unknown:
        raise ValueError(f"not writable columns of training_jobs: {', '.join(sorted(unknown))}")
    columns = list(fields)
    query = sql.SQL("INSERT INTO training_jobs ({}) VALUES ({}) RETURNING *").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)))
    with conn.cursor() as cur:
        cur.execute(query, [_value(c, fields[c]) for c in columns])
        return dict(cur.fetchone())


def get_job(conn: Connection, job_id: int, for_update: bool = False) -> dict | None:
    """The row of a job, or None."""
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM training_jobs WHERE id = %s" + (" FOR UPDATE" if for_update else ""),
                    (job_id,))
        row = cur.fetchone()
        return dict(row) if row else None


def update_job(conn: Connection, job_id: int, fields: Mapping[str, Any], *,
               statuses: Iterable[str] | None = None, run_id: Any = ...,
               min_interval: float | None = None) -> dict | None:
    """Set fields of a job; returns (id, status, cancel_requested, version) or None if no row matched.

    statuses: only when the row is in one of them. run_id: only when rq_job_id is this run's
    (a stale run never overwrites a newer one). min_interval: only when the row has not
    changed for that many seconds — the throttle shared by every process of the job.
    """
    assignments, params = _assignments(fields)
    conditions = [sql.SQL("id = %s")]
    params.append(job_id)
    if statuses is not None:
        conditions.append(sql.SQL("status = ANY(%s)"))
        params.append(list(statuses))
    if run_id is not ...:
        conditions.append(sql.SQL("rq_job_id IS NOT DISTINCT FROM %s"))
        params.append(run_id)
    if min_interval is not None:
        conditions.append(sql.SQL("updated_at <= now() - make_interval(secs => %s)"))
        params.append(min_interval)
    query = sql.SQL("UPDATE training_jobs SET {} WHERE {} "
                    "RETURNING id, status, cancel_requested, version").format(
        assignments, sql.SQL(" AND ").join(conditions))
    with conn.cursor() as cur:
        cur.execute(query, params)
        row = cur.fetchone()
        return dict(row) if row else None


def job_state(conn: Connection, job_id: int) -> dict | None:
    """(status, cancel_requested, rq_job_id) of a job: the cheap check of a running job."""
    with conn.cursor() as cur:
        cur.execute("SELECT status, cancel_requested, rq_job_id FROM training_jobs WHERE id = %s", (job_id,))
        row = cur.fetchone()
        return dict(row) if row else None


def start_run(conn: Connection, job_id: int, worker_name: str | None, rq_job_id: str | None) -> dict | None:
    """Mark a queued job running under this worker; None if it is not startable.

    Only a queued row whose run is this one (`rq_job_id`, when given) starts, so a duplicate
    or stale delivery of a run never trains the job twice.
    """
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE training_jobs
                  SET status = 'running', worker_name = %s, rq_job_id = COALESCE(%s, rq_job_id),
                      started_at = COALESCE(started_at, now()), finished_at = NULL,
                      error_message = NULL, heartbeat_at = now(), attempts = attempts + 1
                WHERE id = %s AND status = 'queued' AND NOT cancel_requested
                  AND (%s::text IS NULL OR rq_job_id IS NOT DISTINCT FROM %s)
            RETURNING *""",
            (worker_name, rq_job_id, job_id, rq_job_id, rq_job_id))
        row = cur.fetchone()
        return dict(row) if row else None


def keep_seed(conn: Connection, job_id: int, seed: int) -> dict | None:
    """Record the seed a search drew as `result.seed`, beside what `result` holds; returns the row."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE training_jobs
                  SET result = COALESCE(result, '{}'::jsonb) || jsonb_build_object('seed', %s::bigint)
                WHERE id = %s
            RETURNING *""",
            (int(seed), job_id))
        row = cur.fetchone()
        return dict(row) if row else None


def request_cancel(conn: Connection, job_id: int) -> dict | None:
    """Flag a job for stopping; a queued one stops at once. Returns the row or None."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE training_jobs
                  SET cancel_requested = true,
                      status = CASE WHEN status = 'queued' THEN 'stopped' ELSE status END,
                      finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END
                WHERE id = %s
            RETURNING *""",
            (job_id,))
        row = cur.fetchone()
        return dict(row) if row else None


def end_interrupted_run(conn: Connection, job_id: int, run_id: str | None, reason: str) -> dict | None:
    """A run died without writing its end: `stopped` if a stop was asked for, else `failed`.

    Idempotent, and only for this run of a still-running job.
    """
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE training_jobs
                  SET status = CASE WHEN cancel_requested THEN 'stopped' ELSE 'failed' END,
                      error_message = CASE WHEN cancel_requested THEN NULL ELSE %s END,
                      finished_at = now(), eta_seconds = NULL, estimated_completion = NULL
                WHERE id = %s AND status = 'running' AND rq_job_id IS NOT DISTINCT FROM %s
            RETURNING *""",
            (reason, job_id, run_id))
        row = cur.fetchone()
        return dict(row) if row else None


def silent_running_jobs(conn: Connection, silent_seconds: float) -> list[dict]:
    """Running jobs without a heartbeat for `silent_seconds`, locked for this transaction
    (rows another reconciler holds are skipped)."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT id, worker_name, rq_job_id, cancel_requested,
                      extract(epoch FROM now() - heartbeat_at) AS silent_seconds
                 FROM training_jobs
                WHERE status = 'running'
                  AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => %s))
                ORDER BY id FOR UPDATE SKIP LOCKED""",
            (silent_seconds,))
        return [dict(row) for row in cur.fetchall()]


def slow_stops(conn: Connection, grace_seconds: float) -> list[dict]:
    """(id, rq_job_id) of running jobs asked to stop whose row has not changed for `grace_seconds`."""
    with conn.cursor() as cur:
        cur.execute("""SELECT id, rq_job_id FROM training_jobs
                        WHERE status = 'running' AND cancel_requested
                          AND updated_at < now() - make_interval(secs => %s)""", (grace_seconds,))
        return [dict(row) for row in cur.fetchall()]


def waiting_jobs(conn: Connection, older_than_seconds: float) -> list[dict]:
    """Queued jobs created at least `older_than_seconds` ago, locked for this transaction."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT id, rq_job_id FROM training_jobs
                WHERE status = 'queued' AND NOT cancel_requested
                  AND updated_at < now() - make_interval(secs => %s)
                ORDER BY id FOR UPDATE SKIP LOCKED""",
            (older_than_seconds,))
        return [dict(row) for row in cur.fetchall()]


def list_jobs(conn: Connection, *, status: str | None = None, batch_id: int | None = None,
              offset: int = 0, limit: int = 20) -> tuple[list[dict], int]:
    """A page of jobs, newest first, and the total matching the filters."""
    clause, params = where(("status = %s", status), ("batch_id = %s", batch_id))
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) AS n FROM training_jobs {clause}", params)
        total = int(cur.fetchone()["n"])
        cur.execute(f"SELECT * FROM training_jobs {clause} ORDER BY created_at DESC, id DESC "
                    "OFFSET %s LIMIT %s", [*params, offset, limit])
        return [dict(row) for row in cur.fetchall()], total


def delete_job(conn: Connection, job_id: int) -> bool:
    """Delete a job with its metrics and logs (cascade); its trained configurations stay."""
    with conn.cursor() as cur:
        cur.execute("DELETE FROM training_jobs WHERE id = %s", (job_id,))
        return cur.rowcount == 1


def requeue(conn: Connection, job_id: int, run_id: str, from_statuses: Iterable[str]) -> dict | None:
    """Put a job back to `queued` under a new run id (resume, or a lost queue entry)."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE training_jobs
                  SET status = 'queued', rq_job_id = %s, cancel_requested = false, finished_at = NULL,
                      error_message = NULL, worker_name = NULL, eta_seconds = NULL,
                      estimated_completion = NULL
                WHERE id = %s AND status = ANY(%s)
            RETURNING *""",
            (run_id, job_id, list(from_statuses)))
        row = cur.fetchone()
        return dict(row) if row else None


def next_job_id(conn: Connection) -> int:
    """Reserve the id of a job about to be inserted (so its run id can name it)."""
    with conn.cursor() as cur:
        cur.execute("SELECT nextval(pg_get_serial_sequence('training_jobs', 'id')) AS id")
        return int(cur.fetchone()["id"])


def delete_finished_before(conn: Connection, days: float) -> list[int]:
    """Delete jobs that ended and were created more than `days` days ago (metrics and logs
    go with them; trained configurations stay). Returns their ids."""
    with conn.cursor() as cur:
        cur.execute(
            """DELETE FROM training_jobs
                WHERE status = ANY(%s) AND created_at < now() - make_interval(days => %s)
            RETURNING id""",
            (list(TERMINAL_STATUSES), int(days)))
        return sorted(row["id"] for row in cur.fetchall())


def count_by_status(conn: Connection) -> dict[str, int]:
    """How many jobs there are of each status (every status named, 0 when none)."""
    with conn.cursor() as cur:
        cur.execute("SELECT status, count(*) AS n FROM training_jobs GROUP BY status")
        counts = {row["status"]: int(row["n"]) for row in cur.fetchall()}
    return {status: counts.get(status, 0) for status in STATUSES}


def job_ids_of_runs(conn: Connection, run_ids: Iterable[str]) -> dict[str, int]:
    """Run id → the id of the job whose current run it is (runs no job has as current are left out)."""
    with conn.cursor() as cur:
        cur.execute("SELECT rq_job_id, id FROM training_jobs WHERE rq_job_id = ANY(%s)", (list(run_ids),))
        return {row["rq_job_id"]: int(row["id"]) for row in cur.fetchall()}
