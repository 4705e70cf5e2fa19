"""JobProgress against a real database and Redis: throttling, pickling, faults, cancellation."""

from __future__ import annotations

import pickle
import time
import uuid
from concurrent.futures import ProcessPoolExecutor

import pytest

from trad.errors import Cancelled
from trad.jobs.progress import JobProgress
from trad.jobs.stop_flags import cancel_key
from trad.optimize import Evaluation
from trad.store.jobs import get_job, start_run
from trad.store.logs import job_logs
from trad.store.metrics import job_metrics
from trad.training.steps import DATA_COLLECTION, OPTIMIZATION


@pytest.fixture
def running_job(db, make_job):
    """A job row already marked running under a run id, as the workflow leaves it."""
    job = make_job(rq_job_id=f"trad-test-run-{uuid.uuid4().hex[:12]}")
    with db.transaction() as conn:
        return start_run(conn, job["id"], "test-worker", None)


def make_callback(settings, job, **options) -> JobProgress:
    options = {"interval": 0.5, "redis_url": settings.redis_url, "redis_prefix": settings.redis_prefix,
               "run_id": job["rq_job_id"], **options}
    return JobProgress(job["id"], settings.database_url, **options)


def row(db, job_id) -> dict:
    with db.connection() as conn:
        return get_job(conn, job_id)


def kill_progress_connections(db, job_id) -> int:
    with db.cursor() as cur:
        cur.execute("SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity "
                    "WHERE application_name = %s", (f"trad-progress-{job_id}",))
        return cur.fetchone()["n"]


def evaluation(i: int, score: float = 1.0) -> Evaluation:
    return Evaluation(i, {"fast": 10, "slow": 20 + i}, score, {"n_trades": 7, "sharpe": score}, 12.5)


def test_state_changes_are_written_at_once(db, settings, running_job):
    callback = make_callback(settings, running_job, interval=60)
    callback.start()
    callback.enter_step(DATA_COLLECTION, {"symbol": "SYN"})
    stored = row(db, running_job["id"])
    assert (stored["current_stage"], stored["step_number"], stored["total_steps"]) == (DATA_COLLECTION, 1, 4)
    callback.enter_step(OPTIMIZATION)
    stored = row(db, running_job["id"])
    assert (stored["current_stage"], stored["progress"]) == (OPTIMIZATION, 25.0)


def test_progress_within_a_step_is_throttled_but_never_lost(db, settings, running_job, job_audit):
    callback = make_callback(settings, running_job, interval=0.5)
    callback.enter_step(OPTIMIZATION)
    started = time.monotonic()
    for i in range(1, 401):
        callback.step_progress(i / 4, current_episode=i)
        time.sleep(0.005)
    elapsed = time.monotonic() - started
    updates = len(job_audit(running_job["id"]))
    assert updates <= 1 + elapsed / 0.5 + 1  # the forced step write + one per interval
    assert callback.flush()
    stored = row(db, running_job["id"])
    assert stored["current_episode"] == 400 and stored["step_percentage"] == 100.0
    assert stored["progress"] == pytest.approx(75.0)


def test_progress_never_decreases_in_the_row(db, settings, running_job):
    callback = make_callback(settings, running_job, interval=0)
    callback.enter_step(OPTIMIZATION)
    callback.step_progress(80)
    callback.step_progress(40)  # a late report of an earlier state
    assert row(db, running_job["id"])["progress"] == pytest.approx(65.0)


def test_pickles_before_and_after_writing(db, settings, running_job):
    callback = make_callback(settings, running_job)
    copy = pickle.loads(pickle.dumps(callback))
    callback.enter_step(OPTIMIZATION)
    callback.record_evaluation(evaluation(1))
    callback.log("something")
    copy = pickle.loads(pickle.dumps(callback))
    assert copy._conn is None and copy._metrics == [] and copy._logs == []
    assert copy.job_id == running_job["id"] and copy.step == callback.step


def _report_from_child(callback: JobProgress, iteration: int) -> int:
    callback.record_evaluation(evaluation(iteration, score=2.5))
    callback.step_progress(50, current_episode=iteration)
    assert callback.flush()
    return callback.writes


def test_a_copy_in_a_child_process_reaches_the_database(db, settings, running_job):
    callback = make_callback(settings, running_job, interval=0)
    callback.enter_step(OPTIMIZATION)
    with ProcessPoolExecutor(max_workers=1) as pool:
        assert pool.submit(_report_from_child, callback, 7).result(timeout=60) >= 1
    stored = row(db, running_job["id"])
    assert stored["current_episode"] == 7 and stored["progress"] == pytest.approx(50.0)
    with db.connection() as conn:
        assert [m["iteration"] for m in job_metrics(conn, running_job["id"])] == [7]
    # the parent's own connection still works after the child used its copy
    callback.step_progress(60)
    assert callback.flush() and row(db, running_job["id"])["progress"] == pytest.approx(55.0)


def _hammer(callback: JobProgress, seconds: float) -> int:
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        i += 1
        callback.step_progress(min(100, i / 10), current_episode=i)
        time.sleep(0.002)
    return callback.writes


def test_one_update_per_interval_across_processes(db, settings, running_job, job_audit):
    callback = make_callback(settings, running_job, interval=0.5)
    callback.enter_step(OPTIMIZATION)
    forced = len(job_audit(running_job["id"]))
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = [pool.submit(_hammer, callback, 3.0) for _ in range(2)]
        writes = sum(f.result(timeout=60) for f in results)
    elapsed = time.monotonic() - started
    updates = len(job_audit(running_job["id"])) - forced
    assert updates == writes
    assert updates <= elapsed / 0.5 + 1


def test_metrics_and_logs_are_flushed_with_the_writes(db, settings, running_job):
    callback = make_callback(settings, running_job, interval=60)
    callback.enter_step(OPTIMIZATION)
    for i in range(1, 6):
        callback.record_evaluation(evaluation(i, score=i / 10))
        callback.log(f"episode {i}")
    callback.record_evaluation(evaluation(3))  # re-sent after a lost acknowledgement: ignored
    assert callback.flush()
    with db.connection() as conn:
        metrics = job_metrics(conn, running_job["id"])
        logs = job_logs(conn, running_job["id"])
    assert [m["iteration"] for m in metrics] == [1, 2, 3, 4, 5]
    assert metrics[0]["params"] == {"fast": 10, "slow": 21} and metrics[0]["duration_ms"] == 12.5
    assert [line["message"] for line in logs][-5:] == [f"episode {i}" for i in range(1, 6)]


def test_a_database_outage_never_raises_and_loses_nothing(db, settings, running_job):
    callback = make_callback(settings, running_job, interval=0)
    callback.enter_step(OPTIMIZATION)
    assert kill_progress_connections(db, running_job["id"]) == 1
    callback.record_evaluation(evaluation(1))
    callback.step_progress(30, current_episode=1)  # this write fails: kept, no exception
    assert callback.failed_writes == 1
    time.sleep(0.6)  # past the first backoff
    callback.record_evaluation(evaluation(2))
    callback.step_progress(40, current_episode=2)
    stored = row(db, running_job["id"])
    assert stored["current_episode"] == 2 and stored["progress"] == pytest.approx(45.0)
    with db.connection() as conn:
        assert [m["iteration"] for m in job_metrics(conn, running_job["id"])] == [1, 2]


def test_the_final_state_is_retried_until_written(db, settings, running_job):
    callback = make_callback(settings, running_job, interval=0)
    callback.enter_step(OPTIMIZATION)
    kill_progress_connections(db, running_job["id"])
    callback.finish("succeeded", result={"best_score": 1.5})
    stored = row(db, running_job["id"])
    assert (stored["status"], stored["progress"], stored["result"]) == ("succeeded", 100.0, {"best_score": 1.5})
    assert stored["finished_at"] is not None


def test_a_redis_flag_cancels_within_the_check_interval(db, settings, running_job, redis):
    callback = make_callback(settings, running_job, interval=60)
    callback.enter_step(OPTIMIZATION)
    redis.set(cancel_key(settings.redis_prefix, running_job["rq_job_id"]), 1, ex=60)
    time.sleep(0.3)
    with pytest.raises(Cancelled):
        callback.step_progress(10)


def test_a_flag_of_another_run_of_the_same_job_id_changes_nothing(db, settings, running_job, redis):
    """Left by an earlier run of the job, or by job 1 of another database sharing this Redis."""
    callback = make_callback(settings, running_job, interval=60)
    callback.enter_step(OPTIMIZATION)
    for other in (str(running_job["id"]), f"trad-{running_job['id']}-0123456789ab"):
        redis.set(cancel_key(settings.redis_prefix, other), 1, ex=60)
    for _ in range(8):
        time.sleep(0.1)
        callback.step_progress(10)
    assert callback.flush() and row(db, running_job["id"])["status"] == "running"


def test_the_row_flag_cancels_when_redis_is_absent(db, settings, running_job):
    callback = make_callback(settings, running_job, interval=60, redis_url="redis://127.0.0.1:1/0")
    callback.enter_step(OPTIMIZATION)
    with db.cursor() as cur:
        cur.execute("UPDATE training_jobs SET cancel_requested = true WHERE id = %s", (running_job["id"],))
    started = time.monotonic()
    with pytest.raises(Cancelled):
        while time.monotonic() - started < 5:
            callback.step_progress(10)
            time.sleep(0.05)
    assert time.monotonic() - started < 2.0


def test_a_deleted_job_cancels(db, settings, running_job):
    callback = make_callback(settings, running_job, interval=0)
    callback.enter_step(OPTIMIZATION)
    with db.cursor() as cur:
        cur.execute("DELETE FROM training_jobs WHERE id = %s", (running_job["id"],))
    callback.record_evaluation(evaluation(1))
    with pytest.raises(Cancelled, match="deleted"):
        for _ in range(3):
            callback.step_progress(20)
    callback.finish("stopped")  # nowhere to write: returns instead of retrying forever


def test_a_stale_run_cannot_overwrite_a_newer_one(db, settings, running_job):
    with db.cursor() as cur:
        cur.execute("UPDATE training_jobs SET rq_job_id = 'newer-run' WHERE id = %s", (running_job["id"],))
    callback = make_callback(settings, running_job, interval=0, run_id="older-run")
    with pytest.raises(Cancelled, match="another run"):
        callback.enter_step(OPTIMIZATION)
    assert row(db, running_job["id"])["current_stage"] is None


def search_call(callback, finished: int, total: int, fraction: float, score: float | None) -> None:
    """One call of the optimizer's job callback: `finished` episodes, the next one `fraction` done."""
    candles = 20_000
    callback(finished, total, score, {
        "progress": (finished + fraction) / total, "episode": finished + 1,
        "candles_processed": int(fraction * candles), "total_candles": candles, "stage": "trades",
        "episode_progress": fraction, "in_flight": [{"episode": finished + 1}],
        "evaluation": evaluation(finished, score) if score is not None else None,
        "episode_optimizer_seconds": 0.0, "optimizer_seconds": 0.0, "best_score": None})


def test_the_row_carries_the_forecast_and_the_episode_reward_or_loss(db, settings, running_job, caplog):
    callback = make_callback(settings, running_job, interval=0.2)
    callback.plan(processes=1, validation_work=0, save_work=0)
    callback.enter_step(OPTIMIZATION)
    assert row(db, running_job["id"])["eta_seconds"] is None  # no signal yet
    started = time.monotonic()
    finished = 0
    with caplog.at_level("INFO", logger="trad.jobs.progress"):
        while time.monotonic() - started < 1.6:  # one episode per 0.1 s, of 40
            for fraction in (0.3, 0.6):
                time.sleep(0.03)
                search_call(callback, finished, 40, fraction, None)
            time.sleep(0.04)
            finished += 1
            search_call(callback, finished, 40, 0.0, -0.5 if finished % 2 else 0.8)
    assert callback.flush()
    stored = row(db, running_job["id"])
    left = (40 - finished) * 0.1
    assert stored["eta_seconds"] == pytest.approx(left, rel=0.35)
    with db.cursor() as cur:
        cur.execute("SELECT extract(epoch FROM estimated_completion - now()) AS s FROM training_jobs "
                    "WHERE id = %s", (running_job["id"],))
        assert float(cur.fetchone()["s"]) == pytest.approx(stored["eta_seconds"], abs=0.5)
    reward, loss = (0.0, 0.5) if finished % 2 else (0.8, 0.0)
    assert (stored["current_score"], stored["current_reward"], stored["current_loss"]) == \
        (pytest.approx(-0.5 if finished % 2 else 0.8), reward, loss)
    lines = [r.getMessage() for r in caplog.records if "ETA" in r.getMessage()]
    assert lines and "(Optimization " in lines[-1] and " episode " in lines[-1]
    assert "/40 · candle " in lines[-1] and "/20,000 (" in lines[-1] and "[trades] · ETA " in lines[-1]
