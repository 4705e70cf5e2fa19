"""Results over HTTP on real PostgreSQL, Redis and RQ: the winner's stored backtest (trades paged and
as CSV, folds, the candles of the chart), trained configurations (also of deleted jobs), the
analysis of a search, and ad-hoc backtests run by a real worker."""

from __future__ import annotations

import csv
import io
import math
import time

import numpy as np
import pandas as pd
import pytest
from rq import Queue, Worker
from rq.registry import CanceledJobRegistry, FinishedJobRegistry

from tests.api.support import JOBS, assert_error, wait_for
from trad.jobs.backtests import backtest_queue
from trad.store.candles import load_frame
from trad.store.configs import insert_configuration
from trad.training.results import run_configuration
from trad.jobs.runner import run_training

GRID = {"fast": {"choices": [5, 10, 20]}, "slow": {"choices": [30, 60, 90, 120]}}
VALIDATION = {"train_window_days": 20, "test_window_days": 10}
BACKTESTS = "/api/v1/backtests"
CONFIGURATIONS = "/api/v1/trained-configurations"


def trained_job(make_job, settings, candles_of, **config) -> dict:
    """A grid of 12 sma_crossover configurations on 20,000 5-minute candles, trained and validated here."""
    candles_of("SYN", 20_000)
    job = make_job(config={"param_space": GRID, "min_trades": 1, "validation": VALIDATION, **config})
    final = run_training(job["id"], settings)
    assert final["status"] == "succeeded", final["error_message"]
    return final


def full_backtest(db, params: dict) -> tuple[pd.DataFrame, object]:
    """The candles and the backtest of `params` on them, computed here for comparison."""
    data = load_frame(db, "SYN", "5m")
    return data, run_configuration(data, "sma_crossover", params, {})[1]


def test_the_winner_is_stored_with_its_trades_curves_and_folds(client, db, settings, make_job, candles_of):
    final = trained_job(make_job, settings, candles_of)
    answer = client.get(f"{JOBS}/{final['id']}/backtest?page_size=5")
    assert answer.status_code == 200, answer.get_json()
    view = answer.get_json()
    data, result = full_backtest(db, final["best_params"])
    assert view["kind"] == "trained" and view["training_job_id"] == final["id"] and view["job_exists"]
    assert final["result"]["backtest_stored"] is True  # the page asks for the backtest only then
    assert view["params"] == final["best_params"] and view["score"] == pytest.approx(final["best_score"])
    assert view["metrics"]["n_trades"] == len(result.trades) == view["trades"]["meta"]["total"]
    assert view["candles"] == len(data) == 20_000 and "overview" not in view

    equity = np.asarray(view["equity"]["equity"])
    assert 100 < len(equity) <= 2_000 and len(view["equity"]["time"]) == len(view["equity"]["drawdown"]) == len(equity)
    assert equity.max() == pytest.approx(result.equity.max()) and equity.min() == pytest.approx(result.equity.min())
    assert max(view["equity"]["drawdown"]) == pytest.approx(result.metrics["max_drawdown"], abs=1e-6)

    first_page = view["trades"]["items"]
    assert [t["number"] for t in first_page] == [1, 2, 3, 4, 5]
    assert first_page[0]["entry_price"] == result.trades["entry_price"].iloc[0]
    assert pd.Timestamp(first_page[0]["exit_time"]) == result.trades["exit_time"].iloc[0]
    second = client.get(f"{JOBS}/{final['id']}/backtest?page_size=5&page=2").get_json()["trades"]
    assert [t["number"] for t in second["items"]] == [6, 7, 8, 9, 10] and second["meta"]["page"] == 2

    folds = final["result"]["validation"]["folds"]
    assert [f["fold"] for f in view["folds"]] == [f["fold"] for f in folds] and len(folds) >= 3
    for fold, validated in zip(view["folds"], folds):
        assert fold["params"] == validated["params"] and fold["metrics"]["n_trades"] == validated["out_of_sample_trades"]
        assert fold["metrics"]["total_return"] == pytest.approx(validated["out_of_sample_return"])
        assert fold["equity"]["time"][0] >= pd.Timestamp(fold["test_start"]).timestamp()
        trades = client.get(f"{JOBS}/{final['id']}/backtest?fold={fold['fold']}&page_size=200").get_json()["trades"]
        assert trades["fold"] == fold["fold"] and trades["meta"]["total"] == fold["metrics"]["n_trades"]
        assert all(fold["test_start"] <= t["entry_time"] < fold["test_end"] for t in trades["items"])


def test_every_trade_comes_as_csv(client, db, settings, make_job, candles_of):
    final = trained_job(make_job, settings, candles_of)
    answer = client.get(f"{JOBS}/{final['id']}/backtest?format=csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    _, result = full_backtest(db, final["best_params"])
    assert len(rows) == len(result.trades) and [int(r["number"]) for r in rows] == list(range(1, len(rows) + 1))
    assert [float(r["pnl"]) for r in rows] == result.trades["pnl"].tolist()  # exact, not rounded
    assert {r["exit_reason"] for r in rows} <= {"signal", "end"}  # sma_crossover: no stop, no target
    fold = client.get(f"{JOBS}/{final['id']}/backtest?format=csv&fold=2")
    assert fold.status_code == 200 and "fold-2" in fold.headers["Content-Disposition"]


def test_a_deleted_jobs_configuration_keeps_its_backtest(client, settings, make_job, candles_of):
    final = trained_job(make_job, settings, candles_of)
    before = client.get(f"{JOBS}/{final['id']}/backtest").get_json()
    assert client.delete(f"{JOBS}/{final['id']}").status_code == 204
    assert client.get(f"{JOBS}/{final['id']}").status_code == 404

    listed = client.get(CONFIGURATIONS).get_json()["items"]
    assert len(listed) == 1
    item = listed[0]
    assert item["job_id"] == final["id"] and item["job_exists"] is False and item["backtest_id"] == before["id"]
    assert item["walk_forward"]["folds"] == len(before["folds"])
    stored = client.get(f"{BACKTESTS}/{item['backtest_id']}").get_json()
    assert stored["job_exists"] is False and stored["metrics"] == before["metrics"]
    assert stored["equity"] == before["equity"] and stored["trades"] == before["trades"]
    assert client.get(f"{JOBS}/{final['id']}/backtest").get_json()["id"] == before["id"]
    window = client.get(f"{BACKTESTS}/{item['backtest_id']}/candles").get_json()
    assert window["time"] and window["trades"]


def test_the_chart_gets_candles_by_range_with_the_trades_open_in_it(client, db, settings, make_job, candles_of):
    final = trained_job(make_job, settings, candles_of)
    backtest_id = client.get(f"{JOBS}/{final['id']}/backtest").get_json()["id"]
    data, result = full_backtest(db, final["best_params"])
    times = data["timestamp"]

    def window(first: int, last: int, max_bars: int) -> dict:
        start, end = times.iloc[first].isoformat(), times.iloc[last].isoformat()
        answer = client.get(f"{BACKTESTS}/{backtest_id}/candles", query_string={"start": start, "end": end,
                                                                                 "max_bars": max_bars})
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    whole = window(0, 19_999, 1_500)  # the stored overview, merged again
    assert whole["per_bar"] == 20 and len(whole["time"]) == 1_000
    assert max(whole["high"]) == data["high"].max() and min(whole["low"]) == data["low"].min()
    day = window(5_000, 5_287, 1_500)  # the candles themselves
    assert day["per_bar"] == 1 and day["close"] == data["close"].iloc[5_000:5_288].tolist()
    merged = window(8_000, 9_999, 1_000)  # 2,000 candles in 1,000 bars, merged by PostgreSQL
    assert merged["per_bar"] == 2 and merged["seconds_per_bar"] == 600 and len(merged["time"]) == 1_000
    pairs = data.iloc[8_000:10_000]
    assert merged["high"] == pairs["high"].to_numpy().reshape(-1, 2).max(axis=1).tolist()
    assert merged["open"] == pairs["open"].iloc[::2].tolist() and merged["close"] == pairs["close"].iloc[1::2].tolist()

    open_then = result.trades[(result.trades["exit_time"] >= times.iloc[8_000])
                              & (result.trades["entry_time"] <= times.iloc[9_999])]
    assert [t["number"] for t in merged["trades"]] == [i + 1 for i in open_then.index] and merged["trades_complete"]
    assert merged["trades"][0]["entry_time"] == open_then["entry_time"].iloc[0].timestamp()


def test_trained_configurations_are_listed_newest_first_by_filter_and_page(client, db):
    summary = {"folds": [{"fold": 1}, {"fold": 2}], "scored_folds": 2, "mean_out_of_sample_score": 0.5,
               "std_out_of_sample_score": 0.1, "mean_in_sample_score": 1.5, "degradation": 1.0}
    start, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-03-01", tz="UTC")
    with db.transaction() as conn:
        for symbol, strategy, score in [("AAA", "sma_crossover", 1.0), ("BBB", "sma_crossover", 2.0),
                                        ("AAA", "rsi_reversion", 3.0), ("CCC", "sma_crossover", None)]:
            insert_configuration(conn, strategy=strategy, symbol=symbol, timeframe="5m", params={"x": 1},
                                 objective="sharpe", score=score, metrics={"n_trades": 9},
                                 validation=summary if symbol != "CCC" else None, training_job_id=None,
                                 data_start=start, data_end=end)
    page = client.get(f"{CONFIGURATIONS}?page_size=2").get_json()
    assert [i["symbol"] for i in page["items"]] == ["CCC", "AAA"] and page["meta"] == {
        "page": 1, "page_size": 2, "total": 4, "total_pages": 2, "offset": 0, "limit": 2}
    assert page["items"][0]["walk_forward"] is None and page["items"][0]["backtest_id"] is None
    walk_forward = page["items"][1]["walk_forward"]
    assert walk_forward["folds"] == 2 and walk_forward["degradation"] == 1.0 and walk_forward["skipped"] is None
    assert page["items"][1]["data_start"].startswith("2024-01-01")
    by_symbol = client.get(f"{CONFIGURATIONS}?symbol=AAA").get_json()["items"]
    assert [i["strategy"] for i in by_symbol] == ["rsi_reversion", "sma_crossover"]
    assert [i["score"] for i in client.get(f"{CONFIGURATIONS}?strategy=sma_crossover&timeframe=5m&page=2&page_size=2")
            .get_json()["items"]] == [1.0]
    assert client.get(f"{CONFIGURATIONS}?timeframe=1h").get_json()["meta"]["total"] == 0
    assert_error(client.get(f"{CONFIGURATIONS}?page_size=500"), 422, "VALIDATION_ERROR", "page_size")
    assert_error(client.get(f"{CONFIGURATIONS}?timeframe=7m"), 422, "VALIDATION_ERROR", "timeframe")


def test_missing_and_unfinished_results_are_refused_in_shape(client, make_job, candles_of, settings):
    assert_error(client.get(f"{JOBS}/999/backtest"), 404, "NOT_FOUND")
    assert_error(client.get(f"{JOBS}/999/analysis"), 404, "NOT_FOUND")
    assert_error(client.get(f"{BACKTESTS}/999"), 404, "NOT_FOUND")
    assert_error(client.get(f"{BACKTESTS}/999/candles"), 404, "NOT_FOUND")
    queued = make_job()
    assert_error(client.get(f"{JOBS}/{queued['id']}/backtest"), 409, "CONFLICT")
    final = trained_job(make_job, settings, candles_of)
    url = f"{JOBS}/{final['id']}/backtest"
    assert_error(client.get(f"{url}?fold=99"), 422, "VALIDATION_ERROR", "fold")
    assert_error(client.get(f"{url}?format=xml"), 422, "VALIDATION_ERROR", "format")
    assert_error(client.get(f"{url}?page=0"), 422, "VALIDATION_ERROR", "page")
    backtest_id = client.get(url).get_json()["id"]
    assert_error(client.get(f"{BACKTESTS}/{backtest_id}/candles?start=2024-02-01&end=2024-01-01"), 422,
                 "VALIDATION_ERROR", "end")
    assert_error(client.get(f"{BACKTESTS}/{backtest_id}/candles?max_bars=9"), 422, "VALIDATION_ERROR", "max_bars")


def test_the_analysis_of_a_grid_shows_each_parameter_and_the_score_grid(client, db, settings, make_job, candles_of):
    final = trained_job(make_job, settings, candles_of, validation={"enabled": False})
    answer = client.get(f"{JOBS}/{final['id']}/analysis")
    assert answer.status_code == 200, answer.get_json()
    analysis = answer.get_json()
    metrics = client.get(f"{JOBS}/{final['id']}/metrics").get_json()
    scored = [(p, s) for p, s, v in zip(metrics["params"], metrics["score"], metrics["valid"])
              if v and s is not None and math.isfinite(s)]
    assert analysis["evaluations"] == 12 and analysis["scored"] == len(scored) >= 10
    slices = {s["name"]: s for s in analysis["slices"]}
    assert [b["value"] for b in slices["fast"]["bins"]] == [5, 10, 20] and slices["fast"]["kind"] == "values"
    assert sum(b["count"] for b in slices["slow"]["bins"]) == len(scored)
    assert {i["name"] for i in analysis["importance"]} == {"fast", "slow"}
    assert all(0 <= i["share"] <= 1 for i in analysis["importance"]) and 0 <= analysis["unexplained"] <= 1

    grid = analysis["heatmap"]
    assert {grid["x"], grid["y"]} == {"fast", "slow"}
    for params, score in scored:  # a full grid: one configuration per cell
        row, column = grid["y_values"].index(params[grid["y"]]), grid["x_values"].index(params[grid["x"]])
        assert grid["best"][row][column] == pytest.approx(score) and grid["count"][row][column] == 1
    assert len(analysis["points"]["iteration"]) == len(scored)
    assert client.get(f"{JOBS}/{make_job()['id']}/analysis").get_json()["heatmap"] is None


def test_an_adhoc_backtest_runs_on_a_worker_and_is_kept(client, db, redis, settings, candles_of, start_worker):
    candles_of("SYN", 20_000)
    start_worker()
    wait_for(lambda: Worker.all(queue=backtest_queue(redis, settings)), 30, what="a worker serving backtests")
    body = {"strategy": "sma_crossover", "symbol": "SYN", "timeframe": "5m", "params": {"fast": 8, "slow": 40},
            "start": "2024-01-10T00:00:00Z", "end": "2024-02-10T00:00:00Z", "fee_rate": 0.001}
    answer = client.post(BACKTESTS, json=body)
    assert answer.status_code == 201, answer.get_json()
    view = answer.get_json()
    assert answer.headers["Location"] == f"{BACKTESTS}/{view['id']}" and view["kind"] == "adhoc"
    assert view["training_job_id"] is None and view["folds"] == [] and view["settings"]["fee_rate"] == 0.001
    data = load_frame(db, "SYN", "5m", pd.Timestamp(body["start"]), pd.Timestamp(body["end"]))
    _, result = run_configuration(data, "sma_crossover", body["params"], {"fee_rate": 0.001})
    assert view["candles"] == len(data) and view["metrics"]["total_return"] == result.metrics["total_return"]
    assert view["trades"]["meta"]["total"] == len(result.trades)
    assert client.get(view and f"{BACKTESTS}/{view['id']}").get_json()["metrics"] == view["metrics"]


@pytest.mark.parametrize("change, field", [({"strategy": "nope"}, "strategy"),
                                           ({"params": {"fast": 500}}, "params.fast"),
                                           ({"params": {"fast": 50, "slow": 20}}, "params"),
                                           ({"symbol": "NONE"}, "symbol"),
                                           ({"start": "1999-01-01"}, "start"),
                                           ({"surprise": 1}, "surprise")])
def test_a_bad_backtest_request_is_422_naming_the_field(client, candles_of, change, field):
    candles_of("SYN", 20_000)
    body = {"strategy": "sma_crossover", "symbol": "SYN", "timeframe": "5m", **change}
    assert_error(client.post(BACKTESTS, json=body), 422, "VALIDATION_ERROR", field)


def test_backtests_beyond_the_bounds_are_refused(make_app, settings, redis, candles_of, run_id):
    candles_of("SYN", 20_000)
    body = {"strategy": "sma_crossover", "symbol": "SYN", "timeframe": "5m"}
    small = make_app(backtest_max_candles=10_000).test_client()
    error = assert_error(small.post(BACKTESTS, json=body), 422, "VALIDATION_ERROR", "symbol")
    assert "more than 10,000 candles" in error["message"]
    assert small.post(BACKTESTS, json={**body, "end": "2024-01-20"}).status_code != 422  # 5,473 candles: within

    queue = f"trad-test-{run_id}-bounds"  # no worker serves it
    unserved = make_app(queue=queue, backtest_max_pending=2).test_client()
    assert_error(unserved.post(BACKTESTS, json=body), 503, "SERVICE_UNAVAILABLE")
    waiting = Queue(f"{queue}-backtests", connection=redis)
    try:
        for _ in range(2):
            waiting.enqueue("trad.jobs.backtests.run_backtest", {})
        answer = unserved.post(BACKTESTS, json=body)
        assert_error(answer, 429, "TOO_MANY_REQUESTS")
        assert answer.headers["Retry-After"] == "5" and waiting.count == 2
    finally:
        waiting.empty()


def test_a_backtest_no_free_worker_takes_in_time_is_503_and_withdrawn(client, make_app, redis, settings, candles_of,
                                                                     start_worker):
    from tests.api.test_jobs import long_body

    candles_of("SYN", 20_000)
    candles_of("LONG", 100_000)
    worker = start_worker()
    busy = client.post(JOBS, json=long_body()).get_json()  # the only worker trains for about a minute
    wait_for(lambda: client.get(f"{JOBS}/{busy['id']}").get_json()["status"] == "running", 30,
             what="the worker running the long job")
    impatient = make_app(backtest_wait=2).test_client()
    queue = backtest_queue(redis, settings)
    withdrawn, finished = CanceledJobRegistry(queue=queue), FinishedJobRegistry(queue=queue)
    before = (withdrawn.count, finished.count)  # earlier tests' runs
    started = time.monotonic()
    answer = impatient.post(BACKTESTS, json={"strategy": "sma_crossover", "symbol": "SYN", "timeframe": "5m"})
    error = assert_error(answer, 503, "SERVICE_UNAVAILABLE")
    assert "within 2 s" in error["message"] and 2 <= time.monotonic() - started < 6
    assert queue.count == 0 and withdrawn.count == before[0] + 1  # it will not run after its caller gave up
    client.post(f"{JOBS}/{busy['id']}/stop")
    wait_for(lambda: client.get(f"{JOBS}/{busy['id']}").get_json()["status"] == "stopped", 30, what="the stop")
    assert (withdrawn.count, finished.count) == (before[0] + 1, before[1]), worker.output()
