"""SQL of `trained_configurations`: the saved winners of training jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from psycopg2.extensions import connection as Connection
from trad.store import SafeJson as Json
from trad.store.filters import where


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
    clause, params = where(("symbol = %s", symbol), ("timeframe = %s", timeframe), ("strategy = %s", strategy))
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM trained_configurations {clause} ORDER BY created_at DESC, id DESC LIMIT 1", params)
        row = cur.fetchone()
        return dict(row) if row else None


def job_configurations(conn: Connection, job_id: int) -> list[dict]:
    """Configurations saved by one job."""
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM trained_configurations WHERE training_job_id = %s ORDER BY id", (job_id,))
        return [dict(row) for row in cur.fetchall()]


def list_configurations(conn: Connection, *, symbol: str | None = None, strategy: str | None = None,
                        timeframe: str | None = None, offset: int = 0, limit: int = 20) -> tuple[list[dict], int]:
    """A page of trained configurations, newest first, with the job that made them (its id kept by
    the stored backtest after the job is deleted), whether that job still exists, and the backtest."""
    clause, params = where(("tc.symbol = %s", symbol), ("tc.strategy = %s", strategy), ("tc.timeframe = %s", timeframe))
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) AS n FROM trained_configurations tc {clause}", params)
        total = int(cur.fetchone()["n"])
        cur.execute(f"""
            SELECT tc.*, b.id AS backtest_id, coalesce(tc.training_job_id, b.training_job_id) AS job_id,
                   tc.training_job_id IS NOT NULL AS job_exists
              FROM trained_configurations tc
              LEFT JOIN LATERAL (SELECT id, training_job_id FROM backtests
                                  WHERE trained_configuration_id = tc.id ORDER BY id DESC LIMIT 1) b ON true
              {clause}
             ORDER BY tc.created_at DESC, tc.id DESC OFFSET %s LIMIT %s""", [*params, offset, limit])
        return [dict(row) for row in cur.fetchall()], total
