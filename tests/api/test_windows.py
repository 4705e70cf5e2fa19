"""Walk-forward windows at job creation: asked-for windows must leave a fold, defaults fit the candles."""

from __future__ import annotations

from tests.api.support import JOBS, assert_error, job_body, wait_until_complete


def with_validation(**validation) -> dict:
    return {"enabled": True, "candidates": 2, **validation}


def test_windows_that_leave_no_fold_are_refused_naming_the_fields_and_the_range(client, candles_of):
    candles_of("DAYS69", 20_000)  # 5-minute candles from 2024-01-01 over 69.4 days
    response = client.post(JOBS, json=job_body(symbol="DAYS69", validation=with_validation(
        train_window_days=90, test_window_days=30)))
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert [d["field"] for d in error["details"]] == ["validation.train_window_days", "validation.test_window_days"]
    issue = error["details"][0]["issue"]
    assert "train 90 + gap 0 + test 30 days leave no walk-forward fold" in issue
    assert "the 69.44 days of DAYS69 5m candles (2024-01-01 00:00 to 2024-03-10 10:35 UTC)" in issue
    assert "train 27, test 9, gap 0 would give 4 folds" in issue

    narrowed = client.post(JOBS, json=job_body(symbol="DAYS69", start="2024-02-01", end="2024-02-11",
                                               validation=with_validation(gap_days=12)))
    error = assert_error(narrowed, 422, "VALIDATION_ERROR", "validation.gap_days")
    assert "the 10 days of DAYS69 5m candles between start and end (2024-02-01 00:00 to 2024-02-11 00:00 UTC)" \
        in error["message"]


def test_windows_need_not_fit_when_validation_is_off(client, candles_of):
    candles_of("DAYS69", 20_000)
    created = client.post(JOBS, json=job_body(symbol="DAYS69", validation={
        "enabled": False, "train_window_days": 90, "test_window_days": 30}))
    assert created.status_code == 201, created.get_json()


def test_default_windows_fit_the_candles_and_give_at_least_three_folds(client, candles_of, start_worker):
    candles_of("DAYS10", 3_000)  # 10.4 days
    candles_of("DAYS69", 20_000)
    jobs = {symbol: client.post(JOBS, json=job_body(symbol=symbol, validation=with_validation())).get_json()
            for symbol in ("DAYS10", "DAYS69")}
    windows = {symbol: {k: job["config"]["validation"][k] for k in ("train_window_days", "test_window_days", "gap_days")}
               for symbol, job in jobs.items()}
    assert windows == {"DAYS10": {"train_window_days": 3, "test_window_days": 1, "gap_days": 0},
                       "DAYS69": {"train_window_days": 27, "test_window_days": 9, "gap_days": 0}}
    worker = start_worker()
    for symbol, job in jobs.items():
        wait_until_complete(client, job["id"])
        final = client.get(f"{JOBS}/{job['id']}").get_json()
        assert final["status"] == "succeeded", worker.output()
        validation = final["result"]["validation"]
        assert "skipped" not in validation and len(validation["folds"]) >= 3, (symbol, validation)
