"""SQL of `training_logs`: a job's log lines."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from psycopg2.extensions import connection as Connection
from psycopg2.extras import execute_values


def insert_logs(conn: Connection, job_id: int, lines: Iterable[tuple[datetime, str, str]]) -> int:
    """Insert (timestamp, level, message) lines of a job."""
    values = [(job_id, ts, level, message) for ts, level, message in lines]
    if not values:
        return 0
    with conn.cursor() as cur:
        execute_values(cur, "INSERT INTO training_logs (job_id, ts, level, message) VALUES %s",
                       values, page_size=500)
        return len(values)


def job_logs(conn: Connection, job_id: int, offset: int = 0, limit: int = 100) -> list[dict]:
    """A page of a job's log lines, oldest first."""
    with conn.cursor() as cur:
        cur.execute("""SELECT ts AS timestamp, level, message FROM training_logs
                        WHERE job_id = %s ORDER BY id OFFSET %s LIMIT %s""", (job_id, offset, limit))
        return [dict(row) for row in cur.fetchall()]


def count_logs(conn: Connection, job_id: int) -> int:
    """How many log lines a job has."""
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM training_logs WHERE job_id = %s", (job_id,))
        return int(cur.fetchone()["n"])
