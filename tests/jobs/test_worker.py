"""Real RQ workers: runs, crashes, lost queues and reconciliation."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest

from tests.polling import job_row as row, wait_for
from trad.jobs.control import create_job, stop_job
from trad.jobs.queue import connect_redis, enqueue_run, training_queue
from trad.jobs.reconcile import reconcile
from trad.jobs.requests import JobRequest
from trad.store.jobs import next_job_id, insert_job
from trad.store.metrics import job_metrics




def request(**fields) -> JobRequest:
    return JobRequest(**{"strategy": "sma_crossover", "symbol": "SYN", "timeframe": "5m", "optimizer": "grid",
                         "validation": {"enabled": False}, **fields})


def long_request() -> JobRequest:
    return JobRequest(strategy="rsi_reversion", symbol="BIG", timeframe="5m", optimizer="random",
                      n_iterations=2000, min_trades=1, seed=1, validation={"enabled": False})


@pytest.fixture
def redis_client(settings):
    client = connect_redis(settings)
    yield client
    client.close()


def test_a_worker_runs_a_created_job(db, settings, redis_client, candles_of, start_worker):
    candles_of("SYN", 20_000)
    job = create_job(db, redis_client, settings, request())
    worker = start_worker()
    final = wait_for(lambda: (r := row(db, job["id"]))["status"] in ("succeeded", "failed") and r, 60)
    assert final["status"] == "succeeded", worker.output()
    assert final["worker_name"] == worker.name and final["rq_job_id"] == job["rq_job_id"]
    assert final["progress"] == 100.0 and final["attempts"] == 1


def test_a_killed_work_horse_is_recorded_at_once(db, settings, redis_client, candles_of, start_worker):
    candles_of("BIG", 300_000)
    job = create_job(db, redis_client, settings, long_request())
    worker = start_worker()
    wait_for(lambda: (row(db, job["id"])["current_episode"] or 0) >= 2, 60)
    horse = worker.horse_pids()
    assert len(horse) == 1
    subprocess.run(["kill", "-9", str(horse[0])], check=True)
    final = wait_for(lambda: (r := row(db, job["id"]))["status"] != "running" and r, 20)
    assert final["status"] == "failed"
    assert "work horse" in final["error_message"] and worker.name in final["error_message"]


@pytest.mark.slow
def test_a_killed_worker_fails_its_job_within_60_s_of_a_new_worker(db, settings, redis_client, candles_of,
                                                                     start_worker):
    candles_of("BIG", 300_000)
    job = create_job(db, redis_client, settings, long_request())
    crashed = start_worker()
    wait_for(lambda: (row(db, job["id"])["current_episode"] or 0) >= 2, 60)
    crashed.kill(signal.SIGKILL)  # worker and work horse, as when a machine dies
    started = time.monotonic()
    start_worker()
    final = wait_for(lambda: (r := row(db, job["id"]))["status"] != "running" and r, 60, every=0.5)
    assert time.monotonic() - started < 60
    assert final["status"] == "failed"
    assert f"worker {crashed.name} stopped responding" in final["error_message"]
    assert "resume" in final["error_message"]


def test_queued_jobs_lost_with_redis_run_once_each(db, settings, redis_client, candles_of, start_worker):
    candles_of("SYN", 20_000)
    jobs = [create_job(db, redis_client, settings, request(job_name=f"lost {i}")) for i in range(3)]
    # Redis loses everything it held for these jobs (what FLUSHALL does to them).
    lost = [f"rq:job:{job['rq_job_id']}" for job in jobs] + [f"rq:queue:{settings.queue}"]
    assert redis_client.delete(*lost) == 4
    start_worker()  # its reconciliation finds them once they have waited QUEUED_GRACE seconds
    for job in jobs:
        final = wait_for(lambda: (r := row(db, job["id"]))["status"] in ("succeeded", "failed") and r, 90)
        assert final["status"] == "succeeded" and final["attempts"] == 1
        with db.connection() as conn:
            metrics = job_metrics(conn, job["id"])
        assert len(metrics) == final["total_episodes"]
    assert training_queue(redis_client, settings).count == 0


def test_two_reconcilers_requeue_a_lost_job_once(db, settings, redis_client, candles_of):
    candles_of("SYN", 20_000)
    with db.transaction() as conn:
        job_id = next_job_id(conn)
        insert_job(conn, id=job_id, job_name="orphan", strategy="sma_crossover", symbol="SYN", timeframe="5m",
                   optimizer="grid", config={"validation": {"enabled": False}})
    reports, barrier = [], threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        reports.append(reconcile(db, connect_redis(settings), settings, queued_grace=0))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r.requeued) for r in reports) == [0, 1]
    queue = training_queue(redis_client, settings)
    assert queue.count == 1 and queue.job_ids == [row(db, job_id)["rq_job_id"]]
    queue.empty()


def test_a_duplicate_delivery_does_not_train_twice(db, settings, redis_client, candles_of, start_worker):
    candles_of("SYN", 20_000)
    job = create_job(db, redis_client, settings, request())
    enqueue_run(redis_client, settings, job["id"], "trad-stale-run")  # a run id the row does not hold
    start_worker()
    final = wait_for(lambda: (r := row(db, job["id"]))["status"] == "succeeded" and r, 60)
    wait_for(lambda: training_queue(redis_client, settings).count == 0, 30)
    time.sleep(1)
    assert row(db, job["id"])["attempts"] == final["attempts"] == 1


def test_a_queued_job_stopped_before_a_worker_starts_never_runs(db, settings, redis_client, candles_of,
                                                                 start_worker):
    candles_of("SYN", 20_000)
    job = create_job(db, redis_client, settings, request())
    assert stop_job(db, redis_client, settings, job["id"])["status"] == "stopped"
    start_worker()
    wait_for(lambda: training_queue(redis_client, settings).count == 0, 30)
    time.sleep(1)
    final = row(db, job["id"])
    assert final["status"] == "stopped" and final["attempts"] == 0 and final["started_at"] is None
    with db.connection() as conn:
        assert job_metrics(conn, job["id"]) == []
