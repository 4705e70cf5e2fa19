"""GET /api/v1/training/status: the workers and the job each one runs, the queue, job counts, the
running jobs and the current batch, in one answer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.api.support import wait_for
from tests.api.test_batch import CANCEL, PROGRESS_KEYS, TRAIN_ALL, template

STATUS = "/api/v1/training/status"


def test_the_status_names_each_workers_job_the_queue_and_the_batch(client, settings, candles_of, start_worker):
    candles_of("AAA", 20_000, seed=1)
    candles_of("BBB", 20_000, seed=2)
    long = template(strategy="rsi_reversion", optimizer="random", n_iterations=2000, seed=1, param_space={})
    batch = client.post(TRAIN_ALL, json={"symbols": ["AAA", "BBB"], "template": long}).get_json()
    idle = client.get(STATUS).get_json()
    assert set(idle) == {"workers", "queue", "jobs", "running_jobs", "batch"}
    assert idle["queue"] == {"name": settings.queue, "length": 2} and idle["running_jobs"] == []
    assert idle["jobs"] == {"queued": 2, "running": 0, "succeeded": 0, "failed": 0, "stopped": 0}

    worker = start_worker()
    first = batch["jobs"][0]["job_id"]
    body = wait_for(lambda: (b := client.get(STATUS).get_json())["jobs"]["running"] == 1 and b["workers"] and b, 60)
    (shown,) = [w for w in body["workers"] if w["name"] == worker.name]
    assert shown["job_id"] == first and shown["run_id"].startswith(f"trad-{first}-") and shown["state"] == "busy"
    assert abs(datetime.fromisoformat(shown["last_heartbeat"]) - datetime.now(timezone.utc)) < timedelta(seconds=60)
    assert body["queue"]["length"] == 1 and body["jobs"]["queued"] == 1
    (running,) = body["running_jobs"]
    assert (running["id"], running["symbol"], running["worker_name"]) == (first, "AAA", worker.name)
    assert set(body["batch"]) == PROGRESS_KEYS and body["batch"]["batch_id"] == batch["batch_id"]
    assert body["batch"]["training_in_progress"] is True and body["batch"]["current_symbol"] == "AAA"

    client.post(CANCEL)
    after = wait_for(lambda: (b := client.get(STATUS).get_json())["jobs"]["stopped"] == 2 and b, 30, every=0.2)
    assert after["jobs"]["running"] == 0 and after["running_jobs"] == [] and after["batch"]["results"]["stopped"] == 2
