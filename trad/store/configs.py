"""SQL of `trained_configurations`: the saved winners of training jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from psycopg2.extensions import connection as Connection
from trad.store import SafeJson as Json


def insert_configuration(conn: Connection, *, strategy: str, symbol: str, timeframe: str,
                         params: Mapping[str, Any], objective: str, score: float | None,
                         metrics: Mapping[str, Any], validation: Mapping[str, Any] | None,
                         training_job_id: int | None, data_start: datetime | None,
                         data_end: datetime | None) -> dict:
    """Save a trained configuration; returns its row."""
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO trained_configurations
                   (strategy, symbol, timeframe, params, objective, score, metrics, validation,
                    training_job_id, data_start, data_end)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *""",
            (strategy, symbol, timeframe, Json(dict(params)), objective, score, Json(dict(metrics)),
             Json(dict(validation)) if validation is not None else None, training_job_id,
             data_start, data_end))
        return dict(cur.fetchone())


def latest_configuration(conn: Connection, symbol: str, timeframe: str | None = None,
                         strategy: str | None = None) -> dict | None:
    """The newest trained configuration of a symbol (optionally of one timeframe and strategy)."""
    query = "SELECT * FROM trained_configurations WHERE symbol = %s"
    params: list[Any] = [symbol]
    if timeframe is not None:
        query += " AND timeframe = %s"
        params.append(timeframe)
    if strategy is not None:
        query += " AND strategy = %s"
        params.append(strategy)
    with conn.cursor() as cur:
        cur.execute(query + " ORDER BY created_at DESC, id DESC LIMIT 1", params)
        row = cur.fetchone()
        return dict(row) if row else None


def job_configurations(conn: Connection, job_id: int) -> list[dict]:
    """Configurations saved by one job."""
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM trained_configurations WHERE training_job_id = %s ORDER BY id", (job_id,))
        return [dict(row) for row in cur.fetchall()]
