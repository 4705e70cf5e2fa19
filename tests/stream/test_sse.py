"""SSE against a real `trad serve` (gunicorn + gevent), real PostgreSQL and real workers."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests

from tests.conftest import add_job
from tests.stream.reader import StreamReader
from trad.jobs.control import create_job
from trad.jobs.queue import connect_redis
from trad.jobs.requests import JobRequest
from trad.store.jobs import get_job


def row(db, job_id) -> dict:
    with db.connection() as conn:
        return get_job(conn, job_id)


def request(**fields) -> JobRequest:
    return JobRequest(**{"strategy": "sma_crossover", "symbol": "SYN", "timeframe": "5m", "optimizer": "grid",
                         "validation": {"enabled": False}, **fields})


@pytest.fixture
def web(start_web):
    return start_web()


def test_headers_retry_and_snapshot(web, make_job, clean_db):
    jobs = [make_job(job_name=f"snap {i}") for i in range(3)]
    reader = StreamReader(f"{web.url}/api/v1/training-jobs/stream")
    reader.wait_for(lambda e: e[3]["id"] == jobs[-1]["id"])
    assert reader.response.getheader("Content-Type").startswith("text/event-stream")
    assert reader.response.getheader("Cache-Control") == "no-cache"
    assert reader.response.getheader("X-Accel-Buffering") == "no"
    assert reader.lines[0] == "retry: 3000"
    assert reader.ids() == sorted(j["version"] for j in jobs)
    reader.close()


def test_a_psql_update_reaches_the_client_in_under_a_second(web, make_job, pg_url, clean_db):
    job = make_job()
    reader = StreamReader(f"{web.url}/api/v1/training-jobs/stream")
    reader.wait_for(lambda e: e[3]["id"] == job["id"])
    sent = time.monotonic()
    subprocess.run(["psql", pg_url, "-q", "-c", f"UPDATE training_jobs SET job_name = 'by hand' WHERE id = {job['id']}"],
                   check=True)
    arrived = reader.wait_for(lambda e: e[3].get("job_name") == "by hand", timeout=5)
    assert arrived[0] - sent < 1.0
    reader.close()


def test_a_running_job_arrives_in_version_order_and_its_stream_closes(web, db, settings, candles_of, start_worker,
                                                                    clean_db):
    candles_of("SYN", 20_000)
    job = create_job(db, connect_redis(settings), settings, request())
    reader = StreamReader(f"{web.url}/api/v1/training-jobs/{job['id']}/stream")
    start_worker()
    assert reader.ended.wait(60), "the per-job stream did not close"
    ids = reader.ids()
    assert ids == sorted(set(ids)) and len(ids) >= 3
    statuses = [e[3]["status"] for e in reader.events]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded" and "running" in statuses
    assert reader.events[-1][3]["progress"] == 100.0


def test_replay_after_a_reconnect_misses_nothing(web, db, settings, candles_of, start_worker, clean_db):
    candles_of("BIG", 300_000)
    candles_of("SYN", 20_000)
    redis = connect_redis(settings)
    job = create_job(db, redis, settings, JobRequest(strategy="rsi_reversion", symbol="BIG", timeframe="5m",
                                                     optimizer="random", n_iterations=12, min_trades=1, seed=4,
                                                     validation={"enabled": False}))
    other = create_job(db, redis, settings, request(job_name="other"))
    start_worker()
    first = StreamReader(f"{web.url}/api/v1/training-jobs/stream")
    first.wait_for(lambda e: e[3]["id"] == job["id"] and e[3]["status"] == "running", timeout=60)
    first.close()
    last_seen = first.ids()[-1]
    time.sleep(1.5)  # changes happen while the client is away
    with db.cursor() as cur:
        cur.execute("DELETE FROM training_jobs WHERE id = %s", (other["id"],))
    second = StreamReader(f"{web.url}/api/v1/training-jobs/stream", last_event_id=last_seen)
    second.wait_for(lambda e: e[3]["id"] == job["id"] and e[3]["status"] == "succeeded", timeout=120)
    # The deletion committed just before the reconnect: it comes in the replay, or live a moment
    # later when the listener had not read it yet (the job may have finished before either).
    second.wait_for(lambda e: e[1] == "deleted" and e[3]["id"] == other["id"], timeout=15)
    ids = second.ids()
    assert ids == sorted(ids) and ids[0] > last_seen
    final = row(db, job["id"])
    latest = [e[3] for e in second.events if e[1] == "job" and e[3]["id"] == job["id"]][-1]
    assert latest["version"] == final["version"] and latest["progress"] == 100.0
    second.close()


def test_unknown_job_stream_is_a_404_in_the_error_shape(web):
    response = requests.get(f"{web.url}/api/v1/training-jobs/987654321/stream", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.slow
def test_the_stream_survives_a_postgresql_restart(private_services, private_processes):
    db = private_services.db
    job = add_job(db)
    web = private_processes.web()
    reader = StreamReader(f"{web.url}/api/v1/training-jobs/stream")
    reader.wait_for(lambda e: e[3]["id"] == job["id"])
    private_services.restart_postgresql()
    for _ in range(100):
        try:
            with db.cursor() as cur:
                cur.execute("UPDATE training_jobs SET job_name = 'after restart' WHERE id = %s", (job["id"],))
            break
        except Exception:
            time.sleep(0.1)
    reader.wait_for(lambda e: e[3].get("job_name") == "after restart", timeout=15)
    assert not reader.ended.is_set()
    reader.close()


def test_a_filtered_streams_replay_delivers_the_job_that_left_the_filter(web, make_job, db, clean_db):
    leaving, staying, other = (make_job(job_name=name, status="running") for name in ("leaving", "staying", "other"))
    first = StreamReader(f"{web.url}/api/v1/training-jobs/stream?status=running")
    first.wait_for(lambda e: e[3]["id"] == other["id"])
    first.close()
    with db.cursor() as cur:  # while the client is away, a job succeeds
        cur.execute("UPDATE training_jobs SET status = 'succeeded' WHERE id = %s RETURNING version", (leaving["id"],))
        left = cur.fetchone()["version"]
    again = StreamReader(f"{web.url}/api/v1/training-jobs/stream?status=running", last_event_id=first.ids()[-1])
    arrived = again.wait_for(lambda e: e[3]["id"] == leaving["id"])
    assert arrived[2] == left and arrived[3]["status"] == "succeeded"
    with db.cursor() as cur:  # and after the reconnect, live: a job the new stream never sent leaves the filter
        cur.execute("UPDATE training_jobs SET status = 'failed' WHERE id = %s", (staying["id"],))
    assert again.wait_for(lambda e: e[3]["id"] == staying["id"])[3]["status"] == "failed"
    again.close()


def test_a_jobs_own_stream_whose_client_has_its_final_row_ends_at_once(web, make_job):
    job = make_job(status="succeeded")
    reader = StreamReader(f"{web.url}/api/v1/training-jobs/{job['id']}/stream", last_event_id=job["version"])
    assert reader.ended.wait(5) and reader.events == []


def test_a_jobs_own_stream_resumed_at_its_newest_row_sends_only_what_follows(web, make_job, db):
    job = make_job(status="running")
    reader = StreamReader(f"{web.url}/api/v1/training-jobs/{job['id']}/stream", last_event_id=job["version"])
    time.sleep(0.5)
    assert reader.events == [] and not reader.ended.is_set()
    with db.cursor() as cur:
        cur.execute("UPDATE training_jobs SET status = 'succeeded' WHERE id = %s", (job["id"],))
    assert reader.ended.wait(5), "the stream did not end after the job's terminal state"
    assert [e[3]["status"] for e in reader.events] == ["succeeded"]


def test_the_last_of_a_quick_run_of_changes_arrives_at_once(web, make_job, db, clean_db):
    job = make_job()
    reader = StreamReader(f"{web.url}/api/v1/training-jobs/stream")
    reader.wait_for(lambda e: e[3]["id"] == job["id"])
    with db.cursor() as cur:  # commits back to back: their NOTIFYs arrive while the listener reads
        for episode in range(1, 301):
            cur.execute("UPDATE training_jobs SET current_episode = %s WHERE id = %s", (episode, job["id"]))
            cur.connection.commit()
    committed = time.monotonic()
    arrived = reader.wait_for(lambda e: e[3].get("current_episode") == 300, timeout=10)
    assert arrived[0] - committed < 1.0
    reader.close()
