"""SQL of the `training_progress` view: the per-job progress shape of the API."""

from __future__ import annotations

from psycopg2.extensions import connection as Connection


def job_progress(conn: Connection, job_id: int) -> dict | None:
    """The progress row of a job, or None."""
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM training_progress WHERE job_id = %s", (job_id,))
        row = cur.fetchone()
        return dict(row) if row else None
