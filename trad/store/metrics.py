"""SQL of `training_metrics`: one row per evaluated configuration of a job."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from psycopg2.extensions import connection as Connection
from psycopg2.extras import execute_values

from trad.store import SafeJson as Json


def insert_metrics(conn: Connection, job_id: int, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert evaluations (iteration, score, valid, params, metrics, duration_ms); re-sent ones are ignored."""
    values = [(job_id, r["iteration"], r["score"], r["valid"], Json(r["params"]), Json(r["metrics"]),
               r["duration_ms"]) for r in rows]
    if not values:
        return 0
    with conn.cursor() as cur:
        execute_values(cur, """
            INSERT INTO training_metrics (job_id, iteration, score, valid, params, metrics, duration_ms)
            VALUES %s ON CONFLICT (job_id, iteration) DO NOTHING""", values, page_size=500)
        return cur.rowcount


def job_metrics(conn: Connection, job_id: int) -> list[dict]:
    """Every evaluation of a job, by iteration."""
    with conn.cursor() as cur:
        cur.execute("""SELECT iteration, score, valid, params, metrics, duration_ms, created_at
                         FROM training_metrics WHERE job_id = %s ORDER BY iteration""", (job_id,))
        return [dict(row) for row in cur.fetchall()]


def count_metrics(conn: Connection, job_id: int) -> int:
    """How many evaluations a job has recorded."""
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM training_metrics WHERE job_id = %s", (job_id,))
        return int(cur.fetchone()["n"])
