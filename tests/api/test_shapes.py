"""Pure pieces behind the responses: batch progress math, metric series, validation details."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from trad.api.errors import validation_details
from trad.api.jobs import metric_series
from trad.api.paging import LogQuery, MetricQuery, PageQuery
from trad.api.schemas import TrainAllRequest
from trad.jobs.requests import JobRequest
from trad.training.batch import (batch_seconds_left, choose_timeframe, final_counts, format_duration,
                                 summarize)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def batch_row(**fields) -> dict:
    row = {"id": 1, "status": "running", "symbols": ["A", "B", "C", "D"], "cancel_requested": False,
           "skipped": 1, "failed": 0, "successful": 0, "stopped": 0, "cancel_mode": None, "completed_symbols": 0,
           "message": None,
           "started_at": T0, "finished_at": None}
    return {**row, **fields}


def tally(**fields) -> dict:
    return {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "stopped": 0, "active_progress": 0.0,
            "current_symbol": None, **fields}


@pytest.mark.parametrize("seconds, text", [(None, None), (0, "0s"), (9.4, "9s"), (62, "1m 02s"),
                                           (3723, "1h 02m 03s"), (86_400, "24h 00m 00s")])
def test_durations_read_like_a_clock(seconds, text):
    assert format_duration(seconds) == text


def job(status: str, candles: int, started: float | None = None, finished: float | None = None,
        eta: float | None = None) -> dict:
    """A batch job's timing row; times in seconds after T0."""
    at = (lambda seconds: None if seconds is None else T0 + timedelta(seconds=seconds))
    return {"status": status, "candles": candles, "started_at": at(started), "finished_at": at(finished),
            "estimated_completion": at(eta)}


def test_batch_eta_needs_a_forecast_or_a_finished_job():
    now = T0 + timedelta(seconds=5)
    assert batch_seconds_left([job("running", 1000, 0), job("queued", 1000)], now) is None
    assert batch_seconds_left([job("succeeded", 1000, 0, 4)], now) == 0.0


def test_batch_eta_runs_the_queued_jobs_at_the_speed_of_the_finished_ones_by_their_candles():
    now = T0 + timedelta(seconds=25)
    jobs = [job("succeeded", 1000, 0, 20), job("running", 1000, 20.5, eta=45), job("queued", 3000)]
    # the running job's own 20 s, then 3,000 candles at 20 ms each after a 0.5 s gap
    assert batch_seconds_left(jobs, now) == pytest.approx(20 + 60 + 0.5)


def test_before_any_job_ended_the_running_jobs_forecast_sets_the_speed():
    now = T0 + timedelta(seconds=10)
    jobs = [job("running", 2000, 0, eta=40), job("queued", 1000)]
    assert batch_seconds_left(jobs, now) == pytest.approx(30 + 20 + 0.5)


def test_a_failed_job_adds_nothing_and_the_last_running_job_ends_the_batch():
    now = T0 + timedelta(seconds=30)
    jobs = [job("failed", 5000, 0, 1), job("succeeded", 1000, 2, 22), job("running", 1000, 23, eta=42)]
    assert batch_seconds_left(jobs, now) == pytest.approx(12)


def test_progress_counts_skipped_finished_and_the_running_jobs_own_progress():
    now = T0 + timedelta(seconds=100)
    jobs = [job("succeeded", 1000, 0, 40), job("running", 1000, 40.5, eta=120), job("queued", 1000)]
    body = summarize(batch_row(), tally(succeeded=1, running=1, queued=1, active_progress=50.0,
                                        current_symbol="C"), None, now, jobs)
    assert (body["completed_symbols"], body["remaining_symbols"], body["total_symbols"]) == (2, 2, 4)
    assert body["progress_percent"] == 62.5 and body["current_symbol"] == "C"
    assert body["results"] == {"successful": 1, "failed": 0, "skipped": 1, "stopped": 0} and body["batch_id"] == 1
    assert body["timing"]["elapsed_seconds"] == 100.0 and body["timing"]["eta_seconds"] == pytest.approx(20 + 40 + 0.5)
    assert body["timing"]["elapsed_formatted"] == "1m 40s" and body["training_in_progress"] is True


def test_a_cancelling_batch_has_no_eta_and_a_finished_one_reads_its_stored_counts():
    cancelling = summarize(batch_row(cancel_requested=True, cancel_mode="after_current"), tally(running=1, stopped=2),
                           None, T0 + timedelta(seconds=5))
    assert cancelling["cancelling"] is True and cancelling["timing"]["eta_seconds"] is None
    assert cancelling["cancel_mode"] == "after_current" and cancelling["results"]["stopped"] == 2
    assert cancelling["message"] == "Cancelling after the current jobs: waiting for 1 running jobs to finish"
    finished = summarize(batch_row(status="succeeded", successful=3, stopped=1, completed_symbols=4, message="Finished",
                                   finished_at=T0 + timedelta(seconds=30)), tally(), T0, T0 + timedelta(days=1))
    assert finished["training_in_progress"] is False and finished["progress_percent"] == 100.0
    assert finished["timing"]["elapsed_seconds"] == 30.0 and finished["timing"]["eta_seconds"] == 0.0
    assert finished["results"] == {"successful": 3, "failed": 0, "skipped": 1, "stopped": 1}
    assert finished["cancel_mode"] is None
    assert finished["last_training_run"] == T0


def test_final_counts_name_the_outcome():
    assert final_counts(batch_row(), tally(succeeded=3))["status"] == "succeeded"
    failed = final_counts(batch_row(failed=1, message="D: Redis is not reachable"), tally(succeeded=1, failed=1))
    assert failed["status"] == "failed" and failed["failed"] == 2 and "Redis" in failed["message"]
    cancelled = final_counts(batch_row(cancel_requested=True), tally(succeeded=1, stopped=1))
    assert cancelled["status"] == "cancelled" and cancelled["completed_symbols"] == 3 and cancelled["stopped"] == 1
    assert "1 symbols not trained" in cancelled["message"]


def test_the_default_timeframe_is_the_one_most_symbols_have():
    summary = [{"symbol": "A", "timeframe": "5m", "candles": 10}, {"symbol": "B", "timeframe": "5m", "candles": 10},
               {"symbol": "A", "timeframe": "1h", "candles": 500}, {"symbol": "C", "timeframe": "1d", "candles": 9}]
    assert choose_timeframe(summary, None) == "5m"
    assert choose_timeframe(summary, ["A"]) == "1h"
    assert choose_timeframe(summary, ["Z"]) is None


def test_metric_series_are_the_page_rows_as_columns():
    rows = [{"iteration": i, "score": s, "valid": v, "params": {"x": i}, "duration_ms": 1.0, "best_score": b}
            for i, s, v, b in [(1, None, False, None), (2, 0.5, True, 0.5), (4, 9.0, False, 0.5)]]
    series = metric_series(rows)
    assert series["iterations"] == [1, 2, 4] and series["valid"] == [False, True, False]
    assert series["best_score"] == [None, 0.5, 0.5] and series["params"][2] == {"x": 4}
    assert metric_series([])["best_score"] == []


def test_page_meta_counts_pages_in_both_styles():
    assert PageQuery().meta(0) == {"page": 1, "page_size": 20, "total": 0, "total_pages": 0, "offset": 0, "limit": 20}
    assert PageQuery(page=2).meta(41)["total_pages"] == 3 and PageQuery(page=3, page_size=10).rows == (20, 10)
    assert PageQuery(limit=50, offset=0).meta(120) == {"page": 1, "page_size": 50, "total": 120, "total_pages": 3,
                                                       "offset": 0, "limit": 50}
    assert PageQuery(offset=45).meta(120)["page"] == 3 and PageQuery(offset=45).rows == (45, 20)
    assert LogQuery().rows == (0, 100) and LogQuery(limit=5).rows == (0, 5)


def test_metric_pages_count_back_from_the_newest():
    assert MetricQuery().rows == (0, None) and MetricQuery(limit=100, offset=100).rows == (100, 100)
    assert MetricQuery(page_size=100).rows == (0, 100) and MetricQuery(page=3, page_size=100).rows == (200, 100)
    assert MetricQuery(page=2).rows == (0, 0)  # page 1 of "all" holds everything


def errors_of(model, data) -> list[dict]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return validation_details(caught.value)


def test_union_errors_come_from_the_branch_the_input_fits():
    base = {"strategy": "sma_crossover", "symbol": "A", "timeframe": "5m", "optimizer": "grid"}
    assert errors_of(JobRequest, {**base, "param_space": {"fast": {"low": 5}}}) == [
        {"field": "param_space.fast.high", "issue": "required"}]
    assert errors_of(JobRequest, {**base, "param_space": {"fast": {"choices": [{"a": 1}]}}})[0]["field"] == \
        "param_space.fast.choices.0"
    assert errors_of(TrainAllRequest, {"template": {"validation": {"gap_days": "x"}}}) == [
        {"field": "template.validation.gap_days",
         "issue": "Input should be a valid number, unable to parse string as a number"}]
