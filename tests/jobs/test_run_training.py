"""run_training end to end on real PostgreSQL (and Redis for stop requests): the row claimed,
progress written by JobProgress, the trained configuration committed with the job's end.
The workflow's own steps are tested without a database in tests/training/test_workflow.py."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import STOPPABLE_CANDLES, STOPPABLE_SYMBOL
from tests.polling import job_row as row, wait_for
from trad.jobs.runner import run_training
from trad.jobs.stop_flags import cancel_key
from trad.store.configs import job_configurations
from trad.store.jobs import request_cancel
from trad.store.logs import job_logs
from trad.store.metrics import job_metrics
from trad.strategies import get_strategy

RUN_JOB = "import sys; from trad.jobs.runner import run_training; run_training(int(sys.argv[1]))"



def metrics_of(db, job_id) -> list[dict]:
    with db.connection() as conn:
        return job_metrics(conn, job_id)



def test_a_job_succeeds_with_everything_recorded(db, settings, make_job, candles_of, job_audit):
    candles_of("SYN", 20_000)
    job = make_job(optimizer="random", strategy="liquidity_sweep",
                   config={"n_iterations": 12, "seed": 3, "min_trades": 1,
                           "validation": {"train_window_days": 20, "test_window_days": 10}})
    final = run_training(job["id"], settings)

    assert final["status"] == "succeeded" and final["progress"] == 100.0
    assert final["current_stage"] == "Save Configuration" and final["step_number"] == 4
    assert final["finished_at"] is not None and final["error_message"] is None
    space = get_strategy("liquidity_sweep").param_space
    for name, value in final["best_params"].items():
        assert space[name].low <= value <= space[name].high
    metrics = metrics_of(db, job["id"])
    assert [m["iteration"] for m in metrics] == list(range(1, 13))
    assert final["best_score"] == max(m["score"] for m in metrics if m["score"] is not None)
    with db.connection() as conn:
        saved = job_configurations(conn, job["id"])
        logs = [line["message"] for line in job_logs(conn, job["id"], limit=1000)]
    assert len(saved) == 1 and saved[0]["params"] == final["best_params"]
    assert saved[0]["validation"]["folds"] and final["result"]["validation"]["folds"]
    assert any("step 2/4: Optimization" in m for m in logs) and logs[-1] == "training succeeded"
    progress = [r["progress"] for r in job_audit(job["id"])]
    assert progress == sorted(progress) and progress[-1] == 100.0


def test_parallel_job_writes_at_most_one_update_per_interval(db, settings, make_job, candles_of, job_audit):
    candles_of("SYN", 20_000)
    job = make_job(optimizer="grid", config={"n_jobs": 2, "param_space": {"fast": {"low": 5, "high": 40, "step": 1},
                                                                          "slow": {"low": 50, "high": 200, "step": 10}},
                                             "validation": {"enabled": False}})
    started = time.monotonic()
    final = run_training(job["id"], settings)
    duration = time.monotonic() - started
    assert final["status"] == "succeeded" and final["total_episodes"] == 36 * 16
    updates = len(job_audit(job["id"]))
    state_changes = 1 + 3 + 1  # start, three steps, success
    assert updates <= duration / settings.progress_interval + state_changes + 2
    assert len(metrics_of(db, job["id"])) == 36 * 16


def test_without_validation_three_steps_reach_exactly_100(settings, make_job, candles_of):
    candles_of("SYN", 20_000)
    final = run_training(make_job(config={"validation": {"enabled": False},
                                          "param_space": {"fast": {"choices": [5, 10]}, "slow": {"choices": [50, 100]}}})["id"],
                         settings)
    assert (final["status"], final["progress"], final["total_steps"]) == ("succeeded", 100.0, 3)


def test_a_stopped_job_is_not_started(db, settings, make_job):
    job = make_job()
    with db.transaction() as conn:
        request_cancel(conn, job["id"])
    assert run_training(job["id"], settings)["status"] == "stopped"
    assert metrics_of(db, job["id"]) == []


def start_in_subprocess(env, job_id: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUN_JOB, str(job_id)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_stop_mid_run_ends_stopped_within_2_s_keeping_the_best(db, settings, env, make_job, candles_of,
                                                               redis, n_jobs):
    candles_of("BIG", 300_000)
    job = make_job(symbol="BIG", optimizer="random", strategy="rsi_reversion", rq_job_id=f"trad-test-stop-{n_jobs}",
                   config={"n_iterations": 5000, "n_jobs": n_jobs, "seed": 1, "min_trades": 1,
                           "validation": {"enabled": False}})
    worker = start_in_subprocess(env, job["id"])
    try:
        wait_for(lambda: (row(db, job["id"])["current_episode"] or 0) >= 3, timeout=60)
        asked = time.monotonic()
        with db.transaction() as conn:
            request_cancel(conn, job["id"])
        redis.set(cancel_key(settings.redis_prefix, job["rq_job_id"]), 1, ex=600)
        final = wait_for(lambda: (r := row(db, job["id"]))["status"] != "running" and r, timeout=10, every=0.02)
        stopped_after = time.monotonic() - asked
        assert worker.wait(timeout=20) == 0, worker.stdout.read()
    finally:
        worker.kill()
    assert final["status"] == "stopped"
    assert stopped_after < 2.0
    recorded = metrics_of(db, job["id"])
    assert len(recorded) >= 3 and final["result"]["evaluations"] == len(recorded)
    best = max(m["score"] for m in recorded if m["score"] is not None)
    assert final["best_score"] == pytest.approx(best) and final["result"]["best_score"] == pytest.approx(best)
    assert final["progress"] < 100


@pytest.mark.slow
def test_killed_database_connections_do_not_fail_the_job(db, settings, env, make_job, candles_of):
    candles_of("BIG", 300_000)
    job = make_job(symbol="BIG", optimizer="random", strategy="rsi_reversion",
                   config={"n_iterations": 200, "seed": 2, "min_trades": 1, "validation": {"enabled": False}})
    worker = start_in_subprocess(env, job["id"])
    kills_while_running = 0
    try:
        wait_for(lambda: (row(db, job["id"])["current_episode"] or 0) >= 3, timeout=60)
        # Kill the job's progress connection three times while it runs; each kill waits for the
        # callback to have reconnected (it does so at its next write, every 0.5 s here).
        deadline = time.monotonic() + 60
        while kills_while_running < 3 and row(db, job["id"])["status"] == "running" \
                and time.monotonic() < deadline:
            with db.cursor() as cur:
                cur.execute("SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity "
                            "WHERE application_name = %s", (f"trad-progress-{job['id']}",))
                killed = cur.fetchone()["n"]
            if killed and row(db, job["id"])["status"] == "running":
                kills_while_running += 1
            time.sleep(0.2)
        assert worker.wait(timeout=120) == 0, worker.stdout.read()
    finally:
        worker.kill()
    assert kills_while_running >= 2
    final = row(db, job["id"])
    assert final["status"] == "succeeded" and final["progress"] == 100.0
    assert [m["iteration"] for m in metrics_of(db, job["id"])] == list(range(1, 201))


def test_resume_runs_only_what_is_missing(db, settings, env, make_job, candles_of, redis):
    candles_of(STOPPABLE_SYMBOL, STOPPABLE_CANDLES)
    job = make_job(symbol=STOPPABLE_SYMBOL, optimizer="grid",
                   config={"param_space": {"fast": {"low": 5, "high": 45, "step": 1},
                                           "slow": {"low": 50, "high": 200, "step": 5}},
                           "validation": {"enabled": False}})
    worker = start_in_subprocess(env, job["id"])
    try:
        wait_for(lambda: (row(db, job["id"])["current_episode"] or 0) >= 30, timeout=60)
        with db.transaction() as conn:
            request_cancel(conn, job["id"])
        assert worker.wait(timeout=30) == 0
    finally:
        worker.kill()
    stopped = row(db, job["id"])
    done_before = len(metrics_of(db, job["id"]))
    assert stopped["status"] == "stopped" and 30 <= done_before < stopped["total_episodes"]
    with db.cursor() as cur:  # what the resume endpoint does to the row
        cur.execute("UPDATE training_jobs SET status = 'queued', cancel_requested = false WHERE id = %s",
                    (job["id"],))
    final = run_training(job["id"], settings)
    recorded = metrics_of(db, job["id"])
    assert final["status"] == "succeeded" and final["progress"] == 100.0
    assert len(recorded) == final["total_episodes"] == 41 * 31
    assert len({tuple(sorted(m["params"].items())) for m in recorded}) == len(recorded)
