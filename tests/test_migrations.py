"""The schema: psql and `trad db upgrade` agree, triggers bump versions and notify."""

from __future__ import annotations

import json
import select
import subprocess
from pathlib import Path

import psycopg2
import pytest

from tests.conftest import create_database, drop_database
from trad.db import applied_migrations, connect, list_migrations, upgrade

ROOT = Path(__file__).resolve().parent.parent


def migrate_with_psql(url: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "migrate.sh"), url], check=True,
                   capture_output=True, text=True)


def schema_of(url: str) -> str:
    dump = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "--no-privileges", url],
                          check=True, capture_output=True, text=True).stdout
    return "\n".join(line for line in dump.splitlines()
                     if line.strip() and not line.startswith("--") and "restrict" not in line)


def recorded(url: str) -> list[str]:
    conn = connect(url)
    try:
        return sorted(applied_migrations(conn))
    finally:
        conn.close()


@pytest.fixture
def scratch_databases(run_id):
    names = [f"trad_test_{run_id}_a", f"trad_test_{run_id}_b"]
    urls = [create_database(name) for name in names]
    yield urls
    for name in names:
        drop_database(name)


def test_psql_then_runner_equals_runner_then_psql(scratch_databases):
    by_psql_first, by_runner_first = scratch_databases
    all_names = [m.name for m in list_migrations()]

    migrate_with_psql(by_psql_first)
    assert upgrade(by_psql_first) == []  # nothing left to apply: a no-op

    assert upgrade(by_runner_first) == all_names
    migrate_with_psql(by_runner_first)  # files are idempotent
    assert upgrade(by_runner_first) == []

    assert schema_of(by_psql_first) == schema_of(by_runner_first)
    assert recorded(by_psql_first) == recorded(by_runner_first) == sorted(all_names)


def test_every_table_of_the_design_exists(pg_url):
    conn = connect(pg_url)
    with conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        tables = {row["table_name"] for row in cur.fetchall()}
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'training_jobs'")
        columns = {row["column_name"] for row in cur.fetchall()}
    conn.close()
    assert {"training_jobs", "training_metrics", "training_logs", "trained_configurations",
            "candles", "training_batches", "training_progress", "schema_migrations"} <= tables
    assert {"id", "job_name", "status", "strategy", "symbol", "timeframe", "optimizer", "objective",
            "config", "batch_id", "rq_job_id", "progress", "current_stage", "step_number",
            "total_steps", "step_percentage", "step_details", "current_episode", "total_episodes",
            "current_score", "best_score", "best_params", "current_reward", "current_loss",
            "candles_processed", "total_candles", "backtest_stage", "created_at", "started_at",
            "updated_at", "finished_at", "estimated_completion", "cancel_requested",
            "error_message", "result", "worker_name", "heartbeat_at", "version"} <= columns


def insert_job(cur, name="job") -> dict:
    cur.execute("""INSERT INTO training_jobs (job_name, strategy, symbol, timeframe, optimizer)
                   VALUES (%s, 'sma_crossover', 'TEST', '5m', 'grid') RETURNING id, version""", (name,))
    return cur.fetchone()


def wait_for_notifies(conn, count: int, timeout: float = 2.0) -> list[dict]:
    events = []
    while len(events) < count:
        if select.select([conn], [], [], timeout) == ([], [], []):
            break
        conn.poll()
        while conn.notifies:
            events.append(json.loads(conn.notifies.pop(0).payload))
    return events


def test_update_bumps_version_and_notifies(clean_db, pg_url):
    listener = connect(pg_url, autocommit=True)
    listener.cursor().execute("LISTEN training_jobs")
    with clean_db.cursor() as cur:
        job = insert_job(cur)
    with clean_db.cursor() as cur:
        cur.execute("UPDATE training_jobs SET progress = 12.5 WHERE id = %s RETURNING version", (job["id"],))
        updated = cur.fetchone()["version"]
    events = wait_for_notifies(listener, 2)
    listener.close()
    assert updated > job["version"]
    assert events == [{"op": "insert", "id": job["id"], "version": job["version"]},
                      {"op": "update", "id": job["id"], "version": updated}]


def test_heartbeat_only_update_is_not_a_change(clean_db, pg_url):
    with clean_db.cursor() as cur:
        job = insert_job(cur)
    listener = connect(pg_url, autocommit=True)
    listener.cursor().execute("LISTEN training_jobs")
    with clean_db.cursor() as cur:
        cur.execute("UPDATE training_jobs SET heartbeat_at = now() WHERE id = %s RETURNING version",
                    (job["id"],))
        assert cur.fetchone()["version"] == job["version"]
    assert wait_for_notifies(listener, 1, timeout=0.5) == []
    listener.close()


def test_delete_leaves_a_tombstone_with_a_new_version(clean_db, pg_url):
    with clean_db.cursor() as cur:
        job = insert_job(cur)
    listener = connect(pg_url, autocommit=True)
    listener.cursor().execute("LISTEN training_jobs")
    with clean_db.cursor() as cur:
        cur.execute("DELETE FROM training_jobs WHERE id = %s", (job["id"],))
        cur.execute("SELECT version FROM training_job_deletions WHERE job_id = %s", (job["id"],))
        tombstone = cur.fetchone()["version"]
    events = wait_for_notifies(listener, 1)
    listener.close()
    assert tombstone > job["version"]
    assert events == [{"op": "delete", "id": job["id"], "version": tombstone}]


def test_a_psql_update_notifies_too(clean_db, pg_url):
    with clean_db.cursor() as cur:
        job = insert_job(cur)
    listener = connect(pg_url, autocommit=True)
    listener.cursor().execute("LISTEN training_jobs")
    subprocess.run(["psql", pg_url, "-q", "-c",
                    f"UPDATE training_jobs SET job_name = 'renamed' WHERE id = {job['id']}"], check=True)
    events = wait_for_notifies(listener, 1)
    listener.close()
    assert [e["id"] for e in events] == [job["id"]]


def test_progress_view_has_the_progress_shape(clean_db):
    with clean_db.cursor() as cur:
        job = insert_job(cur)
        cur.execute("SELECT * FROM training_progress WHERE job_id = %s", (job["id"],))
        row = cur.fetchone()
    assert {"job_id", "percentage", "current_step", "step_number", "total_steps", "step_percentage",
            "step_details", "started_at", "updated_at", "estimated_completion", "current_iteration",
            "total_iterations", "best_score", "current_score", "best_params", "is_complete",
            "error_message", "candles_processed", "total_candles", "backtest_stage"} <= set(row)
    assert row["is_complete"] is False


def test_bad_rows_are_refused_by_the_schema(clean_db):
    with pytest.raises(psycopg2.errors.CheckViolation):
        with clean_db.cursor() as cur:
            cur.execute("""INSERT INTO training_jobs (job_name, strategy, symbol, timeframe, optimizer, status)
                           VALUES ('x', 's', 'T', '5m', 'grid', 'exploded')""")
