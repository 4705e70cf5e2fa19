"""The final state of a job that ends during a PostgreSQL outage reaches its row within seconds
of the database's return (real PostgreSQL, Redis and `trad worker`)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg2
import pytest

from tests.conftest import ADMIN_URL, STOPPABLE_CANDLES, STOPPABLE_SYMBOL
from tests.polling import job_row as row, wait_for
from trad.jobs.control import create_job
from trad.jobs.queue import connect_redis
from trad.jobs.requests import JobRequest
from trad.store.metrics import job_metrics


@contextmanager
def admin():
    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    try:
        yield conn.cursor()
    finally:
        conn.close()


def refuse_connections(name: str) -> int:
    """The database refuses new sessions (superusers too) and its open sessions are ended."""
    with admin() as cur:
        cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        return cur.fetchone()[0]


# Long enough for the progress writes' backoff (0.5 s doubling) to be waiting 16 s between tries
# by the end: a terminal write retried at that pace lands up to 16 s after the database is back.
OUTAGE = 20.0


def allow_connections(name: str) -> None:
    with admin() as cur:
        cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@pytest.mark.slow
def test_the_final_state_is_written_within_5_s_of_postgresql_coming_back(db, settings, candles_of, start_worker,
                                                                          record_property):
    """The outage: the job's database refuses every new session and its open sessions are
    terminated (`ALLOW_CONNECTIONS false` + `pg_terminate_backend`, from the admin database).
    To the job this is what a PostgreSQL restart or a network cut that resets connections is:
    every connection it holds dies and every reconnect is refused by the server, until it is
    allowed again — while the shared server, and every other database on it, keeps running.

    The job is mid-search when the database goes; it finishes its search and asks to write
    `succeeded` while the database is still away, and the database stays away OUTAGE seconds,
    until the progress writes' backoff has grown to 16 s. Then it comes back and the time
    until the row says `succeeded` is measured.
    """
    name = urlsplit(settings.database_url).path.lstrip("/")
    candles_of(STOPPABLE_SYMBOL, STOPPABLE_CANDLES)  # the search goes on for seconds after the cut
    redis_client = connect_redis(settings)
    job = create_job(db, redis_client, settings, JobRequest(
        strategy="sma_crossover", symbol=STOPPABLE_SYMBOL, timeframe="5m", optimizer="random", n_iterations=600,
        min_trades=1, validation={"enabled": False},
        param_space={"fast": {"low": 5, "high": 45, "step": 1}, "slow": {"low": 50, "high": 200, "step": 5}}))
    redis_client.close()
    worker = start_worker()
    wait_for(lambda: row(db, job["id"])["current_episode"] >= 50, 60, what="the search running")
    try:
        cut = time.monotonic()
        assert refuse_connections(name) >= 1  # at least the job's own progress connection
        with pytest.raises(psycopg2.OperationalError, match="not currently accepting connections"):
            psycopg2.connect(settings.database_url)  # as postgres, a superuser: refused too
        wait_for(lambda: "training succeeded" in worker.output(), 120, every=0.5,
                 what="the job ending during the outage")
        ended = time.monotonic() - cut
        time.sleep(max(0.0, cut + OUTAGE - time.monotonic()))
        down = time.monotonic() - cut
    finally:
        allow_connections(name)
    back = time.monotonic()
    final = wait_for(lambda: (r := row(db, job["id"]))["status"] != "running" and r, 60, every=0.05,
                     what="the final state on the row")
    written_after = time.monotonic() - back
    output = worker.output()
    assert "progress not written, will retry" in output and "not currently accepting connections" in output
    assert final["status"] == "succeeded" and final["progress"] == 100.0
    assert down >= OUTAGE and ended < down
    assert written_after < 5.0, f"written {written_after:.1f} s after the database came back"
    with db.connection() as conn:
        assert [m["iteration"] for m in job_metrics(conn, job["id"])] == list(range(1, 601))
    record_property("figure", f"job ended {ended:.1f} s into a {down:.1f} s outage; final state written "
                              f"{written_after:.2f} s after the database came back")
