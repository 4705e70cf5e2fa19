"""Stop flags belong to one run: real PostgreSQL, Redis and `trad worker` processes (and what
a row's state tells a run, without them)."""

from __future__ import annotations

import os
import pickle
import signal
import time

import pytest

from tests.conftest import STOPPABLE_CANDLES, STOPPABLE_SYMBOL, WorkerProcess, create_database, drop_database
from tests.polling import job_row as row, wait_for
from trad.db import Database, upgrade
from trad.jobs.control import create_job, stop_job
from trad.errors import Cancelled
from trad.jobs.stop_flags import StopFlag, cancel_key
from trad.jobs.queue import connect_redis
from trad.jobs.requests import JobRequest
from trad.store.candles import import_synthetic
from trad.store.metrics import job_metrics


def request(**fields) -> JobRequest:
    return JobRequest(**{"strategy": "sma_crossover", "symbol": "SYN", "timeframe": "5m", "optimizer": "random",
                         "n_iterations": 400, "min_trades": 1, "validation": {"enabled": False},
                         "param_space": {"fast": {"low": 5, "high": 45, "step": 1},
                                         "slow": {"low": 50, "high": 200, "step": 5}}, **fields})


@pytest.fixture
def redis_client(settings):
    client = connect_redis(settings)
    yield client
    client.close()


@pytest.fixture
def new_database(run_id):
    """A second database, migrated, beside the session's: a redeployment sharing the Redis."""
    name = f"trad_test_{run_id}_new"
    url = create_database(name)
    database = Database(url)
    try:
        upgrade(url)
        yield database
    finally:
        database.close()
        drop_database(name)


def stop_while_running(db, redis_client, settings, worker, job_id: int) -> dict:
    wait_for(lambda: row(db, job_id)["current_episode"] >= 5, 60, what="the job running")
    stop_job(db, redis_client, settings, job_id)
    stopped = wait_for(lambda: (r := row(db, job_id))["status"] != "running" and r, 30)
    assert stopped["status"] == "stopped", worker.output()
    return stopped


def test_a_new_database_beside_the_same_redis_runs_its_job_1(clean_db, settings, env, redis_client, candles_of,
                                                             start_worker, new_database):
    """Job 1 of the session's database is stopped while it runs, leaving its stop flag; the
    database is then replaced by a new one (ids start at 1 again) on the same Redis prefix and
    queue. The new job 1 runs to the end."""
    db = clean_db
    candles_of(STOPPABLE_SYMBOL, STOPPABLE_CANDLES)
    old = create_job(db, redis_client, settings, request(symbol=STOPPABLE_SYMBOL, n_iterations=1000))
    assert old["id"] == 1
    old_worker = start_worker()
    stopped = stop_while_running(db, redis_client, settings, old_worker, 1)
    old_worker.stop()  # the old deployment is gone; its flag stays
    assert redis_client.exists(cancel_key(settings.redis_prefix, stopped["rq_job_id"]))

    moved = settings.with_(database_url=new_database.url)
    import_synthetic(new_database, "SYN", "5m", 20_000, seed=1)
    new = create_job(new_database, redis_client, moved, request())
    assert new["id"] == 1
    worker = WorkerProcess({**env, "TRAD_DATABASE_URL": new_database.url}, f"{old_worker.name}-new")
    try:
        final = wait_for(lambda: (r := row(new_database, 1))["status"] not in ("queued", "running") and r, 90,
                         what="the new job 1 ending")
    finally:
        worker.stop()
    assert final["status"] == "succeeded", worker.output()
    with new_database.connection() as conn:
        assert len(job_metrics(conn, 1)) == final["total_episodes"] == 400


@pytest.mark.slow
def test_the_reconciler_kills_a_run_that_does_not_stop(db, settings, redis_client, candles_of, start_worker,
                                                       record_property):
    """The backstop: a work horse that cannot see its flag (frozen here with SIGSTOP) is killed
    by another worker's reconciliation STOP_GRACE seconds after the stop, and the job ends
    `stopped`."""
    candles_of(STOPPABLE_SYMBOL, STOPPABLE_CANDLES)
    job = create_job(db, redis_client, settings, request(symbol=STOPPABLE_SYMBOL, n_iterations=1000))
    worker = start_worker()
    wait_for(lambda: row(db, job["id"])["current_episode"] >= 5, 60, what="the job running")
    horse = worker.horse_pids()
    assert len(horse) == 1
    os.kill(horse[0], signal.SIGSTOP)
    asked = time.monotonic()
    stop_job(db, redis_client, settings, job["id"])
    start_worker()  # idle, so it reconciles (at start and every 10 s)
    final = wait_for(lambda: (r := row(db, job["id"]))["status"] != "running" and r, 45, every=0.5,
                     what="the frozen run ending")
    assert final["status"] == "stopped", worker.output()
    took = time.monotonic() - asked
    assert 10 <= took < 45
    record_property("figure", f"the frozen run ended stopped {took:.1f} s after the stop request")
    assert "killed horse" in worker.output()


@pytest.mark.parametrize("state, reason", [
    (None, "the job was deleted"),
    ({"rq_job_id": "newer-run", "status": "running", "cancel_requested": False}, "another run took over the job"),
    ({"rq_job_id": "this-run", "status": "failed", "cancel_requested": False}, "the job is failed"),
    ({"rq_job_id": "this-run", "status": "running", "cancel_requested": True}, "stop requested"),
])
def test_the_row_says_why_a_run_stops(state, reason):
    flag = StopFlag(1, run_id="this-run", interval=0)
    with pytest.raises(Cancelled, match=reason):
        flag.check(lambda: flag.judge(state))
    with pytest.raises(Cancelled, match=reason):  # and it stays stopped
        flag.check(lambda: False)


def test_a_running_row_of_this_run_goes_on_and_a_copy_keeps_the_run_not_its_state():
    flag = StopFlag(1, redis_url="redis://127.0.0.1:1/0", redis_prefix="p:", run_id="this-run", interval=0)
    assert not flag.judge({"rq_job_id": "this-run", "status": "running", "cancel_requested": False})
    flag.reason = "stop requested"
    copy = pickle.loads(pickle.dumps(flag))
    assert (copy.job_id, copy.redis_url, copy.redis_prefix, copy.run_id) == (1, "redis://127.0.0.1:1/0", "p:", "this-run")
    assert copy.reason is None
