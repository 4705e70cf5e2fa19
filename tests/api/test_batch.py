"""Batch training over HTTP: train-all with skips, its progress, cancelling it, the symbols with candles."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from tests.api.support import JOBS, assert_error, job_body, wait_for
from trad.store.candles import candle_summary
from trad.store.configs import insert_configuration

TRAIN_ALL = "/api/v1/training/train-all"
PROGRESS = "/api/v1/training/progress"
CANCEL = "/api/v1/training/cancel"
PROGRESS_KEYS = {"batch_id", "cancel_mode", "training_in_progress", "current_symbol", "total_symbols", "completed_symbols",
                 "remaining_symbols", "progress_percent", "results", "timing", "cancelling", "started_at",
                 "message", "last_training_run"}


def template(**fields) -> dict:
    """The quick job request as a batch template (no symbol)."""
    body = job_body(**fields)
    del body["symbol"]
    return body


def make_current(db, symbol: str, strategy: str, timeframe: str = "5m") -> None:
    """Store a trained configuration that covers the symbol's newest candle."""
    with db.transaction() as conn:
        last = next(r["last"] for r in candle_summary(conn, symbol) if r["timeframe"] == timeframe)
        insert_configuration(conn, strategy=strategy, symbol=symbol, timeframe=timeframe, params={},
                             objective="sharpe", score=1.0, metrics={}, validation=None, training_job_id=None,
                             data_start=None, data_end=last)


def progress(client) -> dict:
    body = client.get(PROGRESS).get_json()
    assert set(body) == PROGRESS_KEYS and set(body["results"]) == {"successful", "failed", "skipped", "stopped"}
    return body


@pytest.fixture
def three_symbols(db, candles_of):
    def make(candles: int) -> list[str]:
        for seed, symbol in enumerate(("AAA", "BBB", "CCC"), start=1):
            candles_of(symbol, candles, seed=seed)
        return ["AAA", "BBB", "CCC"]

    return make


def test_without_a_batch_progress_is_idle(client):
    body = progress(client)
    assert body["training_in_progress"] is False and body["timing"] is None and body["total_symbols"] == 0
    assert body["results"] == {"successful": 0, "failed": 0, "skipped": 0, "stopped": 0}
    assert body["last_training_run"] is None and body["batch_id"] is None
    assert client.post(CANCEL).get_json() == {"success": False, "message": "no batch training is running"}


def test_a_batch_trains_every_symbol_not_yet_current(client, db, three_symbols, start_worker):
    three_symbols(3_000)
    make_current(db, "AAA", "sma_crossover")
    started = client.post(TRAIN_ALL, json={"template": template()})
    assert started.status_code == 202, started.get_json()
    batch = started.get_json()
    assert batch["skipped"] == ["AAA"] and [j["symbol"] for j in batch["jobs"]] == ["BBB", "CCC"]
    assert batch["total_symbols"] == 3 and batch["timeframe"] == "5m" and batch["failed"] == []
    for job in batch["jobs"]:
        assert client.get(f"{JOBS}/{job['job_id']}").get_json()["batch_id"] == batch["batch_id"]

    waiting = progress(client)
    assert waiting["training_in_progress"] is True and waiting["cancelling"] is False
    assert (waiting["total_symbols"], waiting["completed_symbols"], waiting["remaining_symbols"]) == (3, 1, 2)
    assert waiting["progress_percent"] == pytest.approx(33.3, abs=0.1) and waiting["timing"] is not None
    datetime.fromisoformat(waiting["started_at"])
    assert_error(client.post(TRAIN_ALL, json={"template": template()}), 409, "CONFLICT")

    start_worker()
    done = wait_for(lambda: (p := progress(client))["training_in_progress"] is False and p, 60, every=0.3)
    assert done["results"] == {"successful": 2, "failed": 0, "skipped": 1, "stopped": 0}
    assert done["batch_id"] == batch["batch_id"]
    assert (done["completed_symbols"], done["remaining_symbols"], done["progress_percent"]) == (3, 0, 100.0)
    assert done["timing"]["eta_seconds"] == 0 and done["message"].startswith("Finished")
    datetime.fromisoformat(done["last_training_run"])

    again = client.post(TRAIN_ALL, json={"template": template()}).get_json()
    assert again["jobs"] == [] and sorted(again["skipped"]) == ["AAA", "BBB", "CCC"]
    assert again["status"] == "succeeded" and progress(client)["results"]["skipped"] == 3
    forced = client.post(f"{TRAIN_ALL}?force=true", json={"symbols": ["BBB"], "template": template()}).get_json()
    assert [j["symbol"] for j in forced["jobs"]] == ["BBB"] and forced["skipped"] == []


def test_cancelling_a_batch_stops_its_remaining_jobs(client, db, three_symbols, start_worker):
    three_symbols(20_000)
    make_current(db, "AAA", "rsi_reversion")
    long = template(strategy="rsi_reversion", optimizer="random", n_iterations=2000, seed=1, param_space={})
    batch = client.post(TRAIN_ALL, json={"template": long}).get_json()
    assert batch["skipped"] == ["AAA"] and len(batch["jobs"]) == 2
    worker = start_worker()
    running = wait_for(lambda: (p := progress(client))["current_symbol"] and p, 60)
    assert running["current_symbol"] in ("BBB", "CCC") and 33.3 <= running["progress_percent"] < 100

    cancelled = client.post(CANCEL).get_json()
    assert cancelled["success"] is True and str(batch["batch_id"]) in cancelled["message"]
    right_after = progress(client)
    assert right_after["cancelling"] or not right_after["training_in_progress"]
    final = wait_for(lambda: (p := progress(client))["training_in_progress"] is False and p, 15, every=0.2)
    assert final["cancelling"] is False and final["message"].startswith("Cancelled"), worker.output()
    assert final["results"] == {"successful": 0, "failed": 0, "skipped": 1, "stopped": 2}
    jobs = [client.get(f"{JOBS}/{j['job_id']}").get_json() for j in batch["jobs"]]
    assert [j["status"] for j in jobs] == ["stopped", "stopped"]
    assert sum(j["started_at"] is None for j in jobs) == 1  # the queued one never ran
    assert client.post(CANCEL).get_json()["success"] is False


def test_cancelling_after_the_current_job_lets_it_finish_and_starts_no_other(client, three_symbols, start_worker):
    three_symbols(20_000)
    body = template(strategy="rsi_reversion", optimizer="random", n_iterations=150, seed=1, param_space={})
    batch = client.post(TRAIN_ALL, json={"template": body}).get_json()
    assert [j["symbol"] for j in batch["jobs"]] == ["AAA", "BBB", "CCC"]
    assert_error(client.post(f"{CANCEL}?mode=later"), 422, "VALIDATION_ERROR", "mode")
    worker = start_worker()
    wait_for(lambda: progress(client)["current_symbol"] == "AAA", 60)

    cancelled = client.post(f"{CANCEL}?mode=after_current").get_json()
    assert cancelled["success"] is True, cancelled
    assert cancelled["message"].endswith("stopped 2 queued jobs; 1 running jobs finish first"), cancelled
    during = progress(client)
    assert during["cancel_mode"] == "after_current" or not during["training_in_progress"]
    final = wait_for(lambda: (p := progress(client))["training_in_progress"] is False and p, 60, every=0.3)
    assert final["results"] == {"successful": 1, "failed": 0, "skipped": 0, "stopped": 2}, worker.output()
    assert final["message"].startswith("Cancelled") and final["cancel_mode"] is None
    jobs = {j["symbol"]: client.get(f"{JOBS}/{j['job_id']}").get_json() for j in batch["jobs"]}
    assert jobs["AAA"]["status"] == "succeeded" and jobs["AAA"]["progress"] == 100
    assert [(jobs[s]["status"], jobs[s]["started_at"]) for s in ("BBB", "CCC")] == [("stopped", None)] * 2


def test_a_cancel_now_overrides_a_cancel_after_the_current_job_never_the_reverse(client, db, three_symbols):
    three_symbols(300)
    batch = client.post(TRAIN_ALL, json={"template": template()}).get_json()
    running = batch["jobs"][0]["job_id"]  # as if a worker had started it (no worker runs here)
    with db.cursor() as cur:
        cur.execute("UPDATE training_jobs SET status = 'running', started_at = now() WHERE id = %s", (running,))
    after = client.post(f"{CANCEL}?mode=after_current").get_json()
    assert after["message"] == f"batch {batch['batch_id']} cancelling: stopped 2 queued jobs; 1 running jobs finish first"
    assert (progress(client)["cancel_mode"], progress(client)["results"]["stopped"]) == ("after_current", 2)
    assert client.get(f"{JOBS}/{running}").get_json()["cancel_requested"] is False

    now = client.post(CANCEL).get_json()
    assert now["message"] == f"batch {batch['batch_id']} cancelling: asked 1 jobs to stop"
    assert client.get(f"{JOBS}/{running}").get_json()["cancel_requested"] is True
    client.post(f"{CANCEL}?mode=after_current")
    assert progress(client)["cancel_mode"] == "now"


def test_symbols_list_their_candles_per_timeframe(client, candles_of):
    candles_of("AAA", 500, "5m")
    candles_of("AAA", 200, "1h")
    candles_of("BBB", 300, "5m")
    body = client.get("/api/v1/training/symbols").get_json()
    assert [s["symbol"] for s in body["symbols"]] == ["AAA", "BBB"]
    aaa = {t["timeframe"]: t for t in body["symbols"][0]["timeframes"]}
    assert aaa["5m"]["candles"] == 500 and aaa["1h"]["candles"] == 200
    assert datetime.fromisoformat(aaa["5m"]["first"]) < datetime.fromisoformat(aaa["5m"]["last"])


def test_a_batch_defaults_to_every_symbol_of_the_commonest_timeframe(client, candles_of):
    candles_of("AAA", 300, "5m")
    candles_of("BBB", 300, "5m")
    candles_of("CCC", 300, "1h")
    batch = client.post(TRAIN_ALL, json={"template": {"optimizer": "random", "n_iterations": 2}})
    assert batch.status_code == 202, batch.get_json()
    body = batch.get_json()
    assert body["timeframe"] == "5m" and body["strategy"] == "liquidity_sweep"
    assert [j["symbol"] for j in body["jobs"]] == ["AAA", "BBB"]
    assert client.post(CANCEL).get_json()["success"] is True
    assert progress(client)["message"].startswith("Cancelled")


def test_of_two_simultaneous_batches_one_starts(app, client, three_symbols):
    three_symbols(300)
    barrier, statuses = threading.Barrier(2), []

    def start() -> None:
        own = app.test_client()
        barrier.wait()
        statuses.append(own.post(TRAIN_ALL, json={"template": template()}).status_code)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [202, 409]
    assert client.get(f"{JOBS}?page_size=200").get_json()["meta"]["total"] == 3
