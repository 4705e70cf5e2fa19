"""Training jobs over HTTP, run by real RQ workers on real PostgreSQL and Redis."""

from __future__ import annotations

import time
from datetime import datetime

from rq.job import Job, JobStatus

from tests.api.support import JOBS, assert_error, job_body, wait_for, wait_until_complete


def metrics_rows(db, job_id: int) -> list[dict]:
    with db.cursor() as cur:
        cur.execute("SELECT iteration, params FROM training_metrics WHERE job_id = %s ORDER BY iteration", (job_id,))
        return [dict(r) for r in cur.fetchall()]


def test_a_created_job_runs_on_a_worker_to_success(client, db, candles_of, start_worker):
    candles_of("SYN", 3_000)
    created = client.post(JOBS, json=job_body(job_name="first"))
    assert created.status_code == 201, created.get_json()
    job = created.get_json()
    assert job["status"] == "queued" and job["job_name"] == "first" and job["config"]["min_trades"] == 0
    assert isinstance(job["config"], dict) and isinstance(job["step_details"], dict)
    datetime.fromisoformat(job["created_at"])
    assert created.headers["Location"] == f"{JOBS}/{job['id']}"

    worker = start_worker()
    progress = wait_until_complete(client, job["id"])
    final = client.get(f"{JOBS}/{job['id']}").get_json()
    assert final["status"] == "succeeded", worker.output()
    assert progress["percentage"] == 100.0 and progress["error_message"] is None
    assert progress["current_iteration"] == progress["total_iterations"] == 4
    assert set(progress) == {"job_id", "status", "percentage", "current_step", "step_number", "total_steps",
                             "step_percentage", "step_details", "started_at", "updated_at", "estimated_completion",
                             "eta_seconds", "current_iteration", "total_iterations", "best_score", "current_score",
                             "best_params", "is_complete", "error_message", "candles_processed", "total_candles",
                             "backtest_stage"}

    metrics = client.get(f"{JOBS}/{job['id']}/metrics").get_json()
    assert metrics["iterations"] == [1, 2, 3, 4] and len(metrics["params"]) == 4
    valid = [s for s in metrics["score"] if s is not None]
    assert metrics["best_score"][-1] == max(valid) == final["best_score"]
    assert all(a is None or b >= a for a, b in zip(metrics["best_score"], metrics["best_score"][1:]))

    logs = client.get(f"{JOBS}/{job['id']}/logs?page_size=2").get_json()
    assert len(logs["logs"]) == 2 and logs["meta"]["total"] >= 2 and logs["meta"]["page_size"] == 2
    assert set(logs["logs"][0]) == {"timestamp", "level", "message"}
    datetime.fromisoformat(logs["logs"][0]["timestamp"])


def long_body(**fields) -> dict:
    """A job that runs for about a minute: 2,000 random rsi_reversion episodes on 100,000 candles."""
    return job_body(symbol="LONG", strategy="rsi_reversion", optimizer="random", n_iterations=2000, seed=1,
                    param_space={}, **fields)


def test_jobs_are_listed_newest_first_in_pages_and_by_status(client, candles_of):
    candles_of("SYN", 3_000)
    ids = [client.post(JOBS, json=job_body(job_name=f"job {i}")).get_json()["id"] for i in range(5)]
    for job_id in ids[:2]:
        assert client.post(f"{JOBS}/{job_id}/stop").get_json()["status"] == "stopped"

    first = client.get(f"{JOBS}?page_size=2").get_json()
    assert first["meta"] == {"page": 1, "page_size": 2, "total": 5, "total_pages": 3, "offset": 0, "limit": 2}
    assert [j["id"] for j in first["items"]] == ids[::-1][:2]
    last = client.get(f"{JOBS}?page=3&page_size=2").get_json()
    assert [j["id"] for j in last["items"]] == [ids[0]]
    assert client.get(f"{JOBS}?page=4&page_size=2").get_json()["items"] == []
    default = client.get(JOBS).get_json()
    assert default["meta"]["page_size"] == 20 and len(default["items"]) == 5

    stopped = client.get(f"{JOBS}?status=stopped").get_json()
    assert sorted(j["id"] for j in stopped["items"]) == sorted(ids[:2]) and stopped["meta"]["total"] == 2
    queued = client.get(f"{JOBS}?status=queued&page_size=200").get_json()
    assert {j["status"] for j in queued["items"]} == {"queued"} and queued["meta"]["total"] == 3
    assert client.get(f"{JOBS}?status=failed").get_json()["meta"] == {"page": 1, "page_size": 20, "total": 0,
                                                                     "total_pages": 0, "offset": 0, "limit": 20}


def test_a_running_job_stops_within_two_seconds_and_the_interval(client, settings, candles_of, start_worker):
    candles_of("LONG", 100_000)
    job = client.post(JOBS, json=long_body()).get_json()
    worker = start_worker()
    wait_for(lambda: client.get(f"{JOBS}/{job['id']}/progress").get_json()["current_iteration"] >= 2, 60)

    asked = time.monotonic()
    response = client.post(f"{JOBS}/{job['id']}/stop")
    assert response.status_code == 200 and response.get_json()["cancel_requested"] is True
    final = wait_until_complete(client, job["id"], timeout=10)
    took = time.monotonic() - asked
    assert final["status"] == "stopped", worker.output()
    assert took < 2.0 + settings.progress_interval + 0.5, took
    assert final["current_iteration"] < 2000
    assert_error(client.post(f"{JOBS}/{job['id']}/stop"), 409, "CONFLICT")


def test_a_stopped_queued_job_never_runs(client, db, redis, candles_of, start_worker):
    candles_of("SYN", 3_000)
    job = client.post(JOBS, json=job_body()).get_json()
    stopped = client.post(f"{JOBS}/{job['id']}/stop").get_json()
    assert stopped["status"] == "stopped" and stopped["finished_at"] is not None

    start_worker()
    run = Job.fetch(job["rq_job_id"], connection=redis)
    wait_for(lambda: run.get_status(refresh=True) in (JobStatus.FINISHED, JobStatus.FAILED), 30)
    after = client.get(f"{JOBS}/{job['id']}").get_json()
    assert after["status"] == "stopped" and after["started_at"] is None and after["attempts"] == 0
    assert metrics_rows(db, job["id"]) == []
    assert client.get(f"{JOBS}/{job['id']}/metrics").get_json()["iterations"] == []


def test_a_deleted_job_is_gone_with_its_metrics_and_logs_but_not_its_configuration(client, db, candles_of,
                                                                                   start_worker):
    candles_of("SYN", 3_000)
    job = client.post(JOBS, json=job_body()).get_json()
    start_worker()
    assert wait_until_complete(client, job["id"])["status"] == "succeeded"
    assert metrics_rows(db, job["id"])

    response = client.delete(f"{JOBS}/{job['id']}")
    assert response.status_code == 204 and response.get_data() == b""
    for suffix in ("", "/progress", "/logs", "/metrics"):
        assert_error(client.get(f"{JOBS}/{job['id']}{suffix}"), 404, "NOT_FOUND")
    assert_error(client.delete(f"{JOBS}/{job['id']}"), 404, "NOT_FOUND")
    with db.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM training_metrics WHERE job_id = %(id)s) AS metrics, "
                    "(SELECT count(*) FROM training_logs WHERE job_id = %(id)s) AS logs, "
                    "(SELECT count(*) FROM trained_configurations WHERE symbol = 'SYN') AS configurations",
                    {"id": job["id"]})
        counts = cur.fetchone()
    assert (counts["metrics"], counts["logs"]) == (0, 0) and counts["configurations"] == 1


def test_a_queued_job_is_deleted_and_never_runs(client, db, redis, candles_of, start_worker):
    candles_of("SYN", 3_000)
    job = client.post(JOBS, json=job_body()).get_json()
    assert client.delete(f"{JOBS}/{job['id']}").status_code == 204
    start_worker()
    run = Job.fetch(job["rq_job_id"], connection=redis)
    wait_for(lambda: run.get_status(refresh=True) in (JobStatus.FINISHED, JobStatus.FAILED), 30)
    assert_error(client.get(f"{JOBS}/{job['id']}"), 404, "NOT_FOUND")
    assert metrics_rows(db, job["id"]) == []


def test_a_resumed_job_evaluates_no_configuration_twice(client, db, candles_of, start_worker):
    candles_of("LONG", 100_000)
    grid = {"fast": {"low": 5, "high": 50, "step": 5}, "slow": {"low": 20, "high": 200, "step": 5}}
    job = client.post(JOBS, json=job_body(symbol="LONG", param_space=grid)).get_json()
    worker = start_worker()
    wait_for(lambda: len(metrics_rows(db, job["id"])) >= 5, 60)
    assert client.post(f"{JOBS}/{job['id']}/stop").status_code == 200
    assert wait_until_complete(client, job["id"], timeout=10)["status"] == "stopped", worker.output()
    done_before = len(metrics_rows(db, job["id"]))

    resumed = client.post(f"{JOBS}/{job['id']}/resume")
    assert resumed.status_code == 200 and resumed.get_json()["status"] == "queued"
    final = wait_until_complete(client, job["id"], timeout=90)
    assert final["status"] == "succeeded", worker.output()
    rows = metrics_rows(db, job["id"])
    params = {tuple(sorted(r["params"].items())) for r in rows}
    assert len(rows) == len(params) == final["total_iterations"] > done_before
    assert [r["iteration"] for r in rows] == list(range(1, len(rows) + 1))
