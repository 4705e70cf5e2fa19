"""SQL of `training_metrics`: one row per evaluated configuration of a job."""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as plain_cursor
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


# The running best over every earlier iteration of the job (valid, finite scores only: in PostgreSQL
# NaN sorts above Infinity, so `< 'Infinity'` leaves out both), computed before the page is cut.
_RUNNING_BEST = """
    SELECT r.iteration, r.score, r.valid, m.params::text AS params, m.duration_ms, r.best_score
      FROM (SELECT iteration, score, valid,
                   max(score) FILTER (WHERE valid AND score > '-Infinity' AND score < 'Infinity')
                       OVER (ORDER BY iteration) AS best_score
              FROM training_metrics WHERE job_id = %(job_id)s) r
      JOIN training_metrics m ON m.job_id = %(job_id)s AND m.iteration = r.iteration"""


def metric_page(conn: Connection, job_id: int, after_iteration: int | None = None, limit: int | None = None,
                offset: int = 0) -> list[dict]:
    """Evaluations of a job by iteration, each with `best_score`, the best valid score of the job up
    to it (over all earlier iterations, not just the page's).

    With `after_iteration`: the first `limit` after it (all when None), for a client that catches
    up. Without: the latest `limit` after skipping the newest `offset`, in iteration order.
    """
    params = {"job_id": job_id, "after": after_iteration, "limit": limit, "offset": offset}
    if after_iteration is not None:
        query = f"{_RUNNING_BEST} WHERE r.iteration > %(after)s ORDER BY r.iteration LIMIT %(limit)s"
    else:
        query = (f"SELECT * FROM ({_RUNNING_BEST} ORDER BY r.iteration DESC LIMIT %(limit)s OFFSET %(offset)s) "
                 "page ORDER BY iteration")
    with conn.cursor(cursor_factory=plain_cursor) as cur:  # tuples, and the params' JSON parsed at once:
        cur.execute(query, params)                          # 10,000 rows in ~60 ms instead of ~250 ms
        found = cur.fetchall()
    parsed = json.loads(f"[{','.join(row[3] for row in found)}]")
    return [{"iteration": row[0], "score": row[1], "valid": row[2], "params": values, "duration_ms": row[4],
             "best_score": row[5]} for row, values in zip(found, parsed)]


def metric_state(conn: Connection, job_id: int) -> dict | None:
    """In one snapshot: whether the job exists, its evaluation count, and `unbroken_through`, the
    last iteration of the unbroken run 1…K of recorded ones (0 when iteration 1 is missing)."""
    with conn.cursor() as cur:
        cur.execute("""
            SELECT agg.total,
                   CASE WHEN agg.total = agg.last_iteration THEN agg.last_iteration
                        WHEN agg.first_iteration <> 1 THEN 0
                        ELSE (SELECT min(m.iteration) FROM training_metrics m
                               WHERE m.job_id = j.id
                                 AND NOT EXISTS (SELECT 1 FROM training_metrics n
                                                  WHERE n.job_id = j.id AND n.iteration = m.iteration + 1))
                   END AS unbroken_through
              FROM training_jobs j,
                   LATERAL (SELECT count(*) AS total, coalesce(max(iteration), 0) AS last_iteration,
                                   min(iteration) AS first_iteration
                              FROM training_metrics WHERE job_id = j.id) agg
             WHERE j.id = %s""", (job_id,))
        row = cur.fetchone()
        return dict(row) if row else None


def count_metrics(conn: Connection, job_id: int) -> int:
    """How many evaluations a job has recorded."""
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM training_metrics WHERE job_id = %s", (job_id,))
        return int(cur.fetchone()["n"])


def search_evaluations(conn: Connection, job_id: int) -> dict[str, list]:
    """A job's evaluations as columns, by iteration: iteration, score, valid, params (no metrics)."""
    with conn.cursor() as cur:
        cur.execute("""SELECT coalesce(array_agg(iteration ORDER BY iteration), '{}') AS iteration,
                              coalesce(array_agg(score ORDER BY iteration), '{}') AS score,
                              coalesce(array_agg(valid ORDER BY iteration), '{}') AS valid,
                              coalesce(jsonb_agg(params ORDER BY iteration), '[]') AS params
                         FROM training_metrics WHERE job_id = %s""", (job_id,))
        return dict(cur.fetchone())
