"""Faults on real services: PostgreSQL restarted under a running job, Redis lost with queued and
running jobs, the web process restarted (gracefully and by SIGKILL) under 50 SSE clients, and
reconcilers of several workers racing for the same stale jobs. PostgreSQL and Redis are taken
down only on servers of the test's own (`private_services`), never on the shared ones.

Elsewhere already: a SIGKILLed worker and a killed work horse (tests/jobs/test_worker.py), killed
database sessions and a stop within 2 s (tests/jobs/test_run_training.py), one client's replay
and a stream across a PostgreSQL restart (tests/stream/test_sse.py).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import pytest
from rq import Worker

from tests.conftest import store_candles
from tests.reliability.conftest import finished_row, metric_iterations, row, wait_for
from tests.reliability.racers import reconcile_after
from tests.reliability.sse_clients import ClientCrowd, database_view, shows
from trad.jobs.control import create_job
from trad.jobs.queue import connect_redis, training_queue
from trad.jobs.requests import JobRequest

DEAD_WORKER = "trad-test-dead-worker"


def long_request(n_iterations: int, seed: int, **fields) -> JobRequest:
    """rsi_reversion, random search on 300,000 candles: a tenth of a second or so per episode."""
    return JobRequest(**{"strategy": "rsi_reversion", "symbol": "BIG", "timeframe": "5m", "optimizer": "random",
                         "n_iterations": n_iterations, "seed": seed, "min_trades": 1,
                         "validation": {"enabled": False}, **fields})


def small_request(name: str) -> JobRequest:
    return JobRequest(strategy="sma_crossover", symbol="SYN", timeframe="5m", optimizer="grid", job_name=name,
                      param_space={"fast": {"choices": [10, 20]}, "slow": {"choices": [50, 100, 150]}},
                      min_trades=0, validation={"enabled": False})


def assert_recorded_once(db, job_id: int) -> dict:
    """The job succeeded on one run with every evaluation recorded once: 1..total, no gap, no repeat."""
    final = row(db, job_id)
    assert final["status"] == "succeeded" and final["progress"] == 100.0, final
    assert final["attempts"] == 1 and final["finished_at"] is not None and final["error_message"] is None
    assert metric_iterations(db, job_id) == list(range(1, final["total_episodes"] + 1))
    with db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM trained_configurations WHERE training_job_id = %s", (job_id,))
        assert cur.fetchone()["n"] == 1
        cur.execute("SELECT message FROM training_logs WHERE job_id = %s ORDER BY id DESC LIMIT 1", (job_id,))
        assert cur.fetchone()["message"] == "training succeeded"
    return final


# Reconcilers racing.

def make_stale_runs(db, make_job, n: int) -> dict[int, bool]:
    """n jobs left `running` by a worker that died 10 minutes ago; every third had a stop requested."""
    stale = {}
    for i in range(n):
        job = make_job(job_name=f"stale {i}")
        asked_to_stop = i % 3 == 0
        with db.cursor() as cur:
            cur.execute("""UPDATE training_jobs SET status = 'running', worker_name = %s, rq_job_id = %s,
                                  cancel_requested = %s, started_at = now() - interval '20 minutes',
                                  heartbeat_at = now() - interval '10 minutes'
                            WHERE id = %s""", (DEAD_WORKER, f"trad-{job['id']}-dead", asked_to_stop, job["id"]))
        stale[job["id"]] = asked_to_stop
    return stale


def test_racing_reconcilers_end_each_stale_run_exactly_once(db, settings, make_job, clean_db, job_audit):
    stale = make_stale_runs(db, make_job, 30)
    context = multiprocessing.get_context("fork")
    racers = 4
    barrier, results = context.Barrier(racers), context.Queue()
    processes = [context.Process(target=reconcile_after, args=(barrier, settings, results)) for _ in range(racers)]
    for process in processes:
        process.start()
    reports = [results.get(timeout=90) for _ in processes]
    for process in processes:
        process.join(30)
    assert all("error" not in r for r in reports), reports

    ended = [job_id for r in reports for job_id in r["failed"] + r["stopped"]]
    assert sorted(ended) == sorted(stale), "each stale run is ended by exactly one reconciler"
    assert sum(1 for r in reports if r["failed"] or r["stopped"]) >= 1
    for job_id, asked_to_stop in stale.items():
        final = row(db, job_id)
        if asked_to_stop:
            assert final["status"] == "stopped" and final["error_message"] is None
            assert job_id in [j for r in reports for j in r["stopped"]]
        else:
            assert final["status"] == "failed"
            assert f"worker {DEAD_WORKER} stopped responding" in final["error_message"]
        # One UPDATE made it running (the setup), exactly one ended it.
        statuses = [a["status"] for a in job_audit(job_id)]
        assert statuses == ["running", final["status"]], statuses


# The web process restarted under connected clients.

def keep_changing(db, job_ids: list[int], stop: threading.Event) -> None:
    """A steady stream of commits to some jobs, until `stop` (about 20 a second)."""
    i = 0
    while not stop.is_set():
        with db.cursor() as cur:
            cur.execute("UPDATE training_jobs SET current_episode = %s WHERE id = %s", (i, job_ids[i % len(job_ids)]))
        i += 1
        stop.wait(0.05)


def change_while_down(db, make_job, update_id: int, delete_id: int, tag: str) -> tuple[set[int], int]:
    """An update, an insert and a deletion while no web process runs: their versions, the new job's id."""
    with db.cursor() as cur:
        cur.execute("UPDATE training_jobs SET job_name = %s WHERE id = %s RETURNING version",
                    (f"renamed while down ({tag})", update_id))
        versions = {cur.fetchone()["version"]}
        cur.execute("DELETE FROM training_jobs WHERE id = %s", (delete_id,))
        cur.execute("SELECT version FROM training_job_deletions WHERE job_id = %s", (delete_id,))
        versions.add(cur.fetchone()["version"])
    added = make_job(job_name=f"added while down ({tag})")
    return versions | {added["version"]}, added["id"]


@pytest.mark.slow
def test_fifty_sse_clients_miss_no_change_across_web_restarts(start_web, make_job, db, clean_db):
    jobs = [make_job(job_name=f"watched {i}") for i in range(5)]
    web = start_web()
    crowd = ClientCrowd(web.port, 50)
    stop_changes = threading.Event()
    changer = threading.Thread(target=keep_changing, args=(db, [j["id"] for j in jobs[:3]], stop_changes))
    try:
        first = database_view(db)
        crowd.wait_until(lambda c: shows(c, first), 30, "the first rows")
        changer.start()
        time.sleep(1)

        web.stop(graceful=True)  # a deploy: SIGTERM, gunicorn's graceful shutdown
        crowd.wait_until(lambda c: c.drops >= 1, 15, "stream dropped")
        down_versions, added = change_while_down(db, make_job, jobs[3]["id"], jobs[4]["id"], "deploy")
        time.sleep(1)
        web.start()
        crowd.wait_until(lambda c: c.connects >= 2, 30, "reconnected after the deploy")
        time.sleep(1)

        os.killpg(web.process.pid, signal.SIGKILL)  # a crash
        web.process.wait(10)
        web.stop()
        crowd.wait_until(lambda c: c.drops >= 2, 15, "stream dropped by the crash")
        crash_versions, _ = change_while_down(db, make_job, jobs[3]["id"], added, "crash")
        time.sleep(1)
        web.start()
        crowd.wait_until(lambda c: c.connects >= 3, 30, "reconnected after the crash")
        time.sleep(1)
        stop_changes.set()
        changer.join(10)
        final = database_view(db)
        crowd.wait_until(lambda c: shows(c, final), 20, "the database's rows")
    finally:
        stop_changes.set()
        crowd.stop()

    assert len(final) == 5 and jobs[4]["id"] not in final and added not in final
    assert final[jobs[3]["id"]]["job_name"] == "renamed while down (crash)"
    for client in crowd.clients:
        assert client.bad_statuses == [] and client.connects == 3
        assert client.versions == sorted(set(client.versions)), "an event repeated or out of order"
        assert down_versions | crash_versions <= set(client.versions), "a change made while down was missed"
        assert jobs[4]["id"] in client.deleted and added in client.deleted
        assert client.jobs == final


# PostgreSQL restarted under a running job.

def progress_session(db, job_id: int) -> int | None:
    """The backend pid of the job's progress connection (its JobProgress in the work horse)."""
    with db.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (f"trad-progress-{job_id}",))
        found = cur.fetchone()
        return found["pid"] if found else None


@pytest.mark.slow
def test_a_postgresql_restart_mid_job_loses_no_evaluation(private_services, private_processes):
    db, settings = private_services.db, private_services.settings
    store_candles(db, "BIG", 300_000)
    job = create_job(db, connect_redis(settings), settings, long_request(200, seed=11))
    worker = private_processes.worker()
    wait_for(lambda: (row(db, job["id"])["current_episode"] or 0) >= 20, 90, what="twenty episodes done")
    session_before = wait_for(lambda: progress_session(db, job["id"]), 10, what="the job's session")
    restart_seconds = private_services.restart_postgresql()
    during = row(db, job["id"])
    assert during["status"] == "running" and during["current_episode"] < 200, "the restart came too late"
    session_after = wait_for(lambda: progress_session(db, job["id"]), 30, what="the job reconnected")

    final = finished_row(db, job["id"], 180)
    assert final["status"] == "succeeded", worker.output()[-3000:]
    assert_recorded_once(db, job["id"])
    assert final["total_episodes"] == 200
    with db.cursor() as cur:
        cur.execute("SELECT pg_postmaster_start_time() AS restarted")
        restarted = cur.fetchone()["restarted"]
        cur.execute("SELECT count(*) AS n FROM training_metrics WHERE job_id = %s AND created_at > %s",
                    (job["id"], restarted))
        written_after = cur.fetchone()["n"]
    assert final["started_at"] < restarted < final["finished_at"], "the server restarted while the job ran"
    assert session_after != session_before and written_after > 0, "the job reconnected and went on writing"
    assert f"job {job['id']}: progress not written, will retry" in worker.output()  # and said so
    assert restart_seconds < 30


# Redis lost with a running and two queued jobs.

@pytest.mark.slow
def test_lost_redis_loses_no_job_and_runs_none_twice(private_services, private_processes):
    db, settings = private_services.db, private_services.settings
    store_candles(db, "BIG", 300_000)
    store_candles(db, "SYN", 20_000)
    redis = connect_redis(settings)
    running = create_job(db, redis, settings, long_request(180, seed=12))
    worker = private_processes.worker()
    wait_for(lambda: (row(db, running["id"])["current_episode"] or 0) >= 3, 90, what="the long job running")
    queued = [create_job(db, redis, settings, small_request(f"queued {i}")) for i in range(2)]
    assert training_queue(redis, settings).count == 2

    with private_services.redis_lost(down_seconds=4):
        pass
    assert training_queue(redis, settings).count == 0, "Redis came back empty"

    final = finished_row(db, running["id"], 180)
    assert final["status"] == "succeeded", worker.output()[-3000:]
    assert_recorded_once(db, running["id"])
    for job in queued:
        assert finished_row(db, job["id"], 120)["status"] == "succeeded", worker.output()[-3000:]
    time.sleep(2)  # a second delivery, were there one, would have started by now
    for job in queued:
        assert_recorded_once(db, job["id"])
        assert f"job {job['id']} was queued but missing from Redis: enqueued again" in worker.output()
    assert worker.process.poll() is None, "the worker survived the outage"
    listed = [w.name for w in Worker.all(queue=training_queue(redis, settings))]
    assert listed == [worker.name], "the worker is known to Redis again (health, /rq)"


@pytest.mark.slow
def test_a_job_that_ends_while_redis_is_down_is_recorded_and_its_worker_stays(private_services,
                                                                              private_processes):
    db, settings = private_services.db, private_services.settings
    store_candles(db, "BIG", 300_000)
    redis = connect_redis(settings)
    job = create_job(db, redis, settings, long_request(120, seed=3))
    worker = private_processes.worker()
    wait_for(lambda: (row(db, job["id"])["current_episode"] or 0) >= 1, 90, what="the job running")
    with private_services.redis_lost(down_seconds=0):  # Redis comes back only after the body
        assert row(db, job["id"])["status"] == "running", "the job ended before Redis went down"
        final = finished_row(db, job["id"], 60)
    assert final["status"] == "succeeded", worker.output()[-3000:]
    assert_recorded_once(db, job["id"])
    wait_for(lambda: [w.name for w in Worker.all(queue=training_queue(redis, settings))] == [worker.name], 40,
             what="the worker registered again")
    assert worker.process.poll() is None, worker.output()[-3000:]
