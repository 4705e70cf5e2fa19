"""Every bad input gets its 4xx in the error shape, with the bad field named; never a 500 or a traceback."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.api.support import JOBS, assert_error, job_body

TRAIN_ALL = "/api/v1/training/train-all"
UNKNOWN = f"{JOBS}/999999"


def body(**changes):
    """The small job request with some fields changed (None removes a field)."""
    fields = job_body(**changes)
    return {k: v for k, v in fields.items() if v is not None}


CASES = [
    # (name, method, url, request kwargs, status, code, field)
    ("unknown strategy", "post", JOBS, {"json": body(strategy="nope")}, 422, "VALIDATION_ERROR", "strategy"),
    ("unknown optimizer", "post", JOBS, {"json": body(optimizer="anneal")}, 422, "VALIDATION_ERROR", "optimizer"),
    ("unknown objective", "post", JOBS, {"json": body(objective="luck")}, 422, "VALIDATION_ERROR", "objective"),
    ("unknown timeframe", "post", JOBS, {"json": body(timeframe="7m")}, 422, "VALIDATION_ERROR", "timeframe"),
    ("unknown symbol", "post", JOBS, {"json": body(symbol="NOPE")}, 422, "VALIDATION_ERROR", "symbol"),
    ("symbol without candles of the timeframe", "post", JOBS, {"json": body(timeframe="1h")}, 422,
     "VALIDATION_ERROR", "symbol"),
    ("malformed symbol", "post", JOBS, {"json": body(symbol="bad symbol!")}, 422, "VALIDATION_ERROR", "symbol"),
    ("range outside the strategy's bounds", "post", JOBS,
     {"json": body(param_space={"fast": {"low": 1, "high": 30}})}, 422, "VALIDATION_ERROR", "param_space.fast"),
    ("fixed value outside the bounds", "post", JOBS, {"json": body(param_space={"fast": 60})}, 422,
     "VALIDATION_ERROR", "param_space.fast"),
    ("low > high", "post", JOBS, {"json": body(param_space={"fast": {"low": 30, "high": 10}})}, 422,
     "VALIDATION_ERROR", "param_space.fast"),
    ("empty choices", "post", JOBS, {"json": body(param_space={"fast": {"choices": []}})}, 422,
     "VALIDATION_ERROR", "param_space.fast.choices"),
    ("override of a list", "post", JOBS, {"json": body(param_space={"fast": [10, 20]})}, 422,
     "VALIDATION_ERROR", "param_space.fast"),
    ("unknown parameter", "post", JOBS, {"json": body(param_space={"nope": 3})}, 422, "VALIDATION_ERROR",
     "param_space.nope"),
    ("unknown field of an override", "post", JOBS,
     {"json": body(param_space={"fast": {"low": 5, "high": 20, "stride": 5}})}, 422, "VALIDATION_ERROR",
     "param_space.fast.stride"),
    ("grid larger than TRAD_MAX_CONFIGS", "post", JOBS,
     {"json": body(strategy="liquidity_sweep", param_space={})}, 422, "VALIDATION_ERROR", "param_space"),
    ("start before the stored candles", "post", JOBS, {"json": body(start="2000-01-01T00:00:00Z")}, 422,
     "VALIDATION_ERROR", "start"),
    ("end after the stored candles", "post", JOBS, {"json": body(end="2100-01-01T00:00:00Z")}, 422,
     "VALIDATION_ERROR", "end"),
    ("start >= end", "post", JOBS, {"json": body(start="2024-01-05T00:00:00Z", end="2024-01-02T00:00:00Z")},
     422, "VALIDATION_ERROR", None),
    ("date that is no date", "post", JOBS, {"json": body(start="yesterday")}, 422, "VALIDATION_ERROR", "start"),
    ("n_iterations of the wrong type", "post", JOBS, {"json": body(n_iterations="many")}, 422,
     "VALIDATION_ERROR", "n_iterations"),
    ("validation of the wrong type", "post", JOBS, {"json": body(validation="yes")}, 422, "VALIDATION_ERROR",
     "validation"),
    ("unknown top-level field", "post", JOBS, {"json": body(colour="red")}, 422, "VALIDATION_ERROR", "colour"),
    ("unknown nested field", "post", JOBS, {"json": body(validation={"enabled": True, "folds": 3})}, 422,
     "VALIDATION_ERROR", "validation.folds"),
    ("negative gap", "post", JOBS, {"json": body(validation={"gap_days": -1})}, 422, "VALIDATION_ERROR",
     "validation.gap_days"),
    ("over-long job_name", "post", JOBS, {"json": body(job_name="x" * 201)}, 422, "VALIDATION_ERROR", "job_name"),
    ("n_iterations 0", "post", JOBS, {"json": body(optimizer="random", n_iterations=0)}, 422,
     "VALIDATION_ERROR", "n_iterations"),
    ("n_iterations 10001", "post", JOBS, {"json": body(optimizer="random", n_iterations=10_001)}, 422,
     "VALIDATION_ERROR", "n_iterations"),
    ("missing strategy", "post", JOBS, {"json": body(strategy=None)}, 422, "VALIDATION_ERROR", "strategy"),
    ("body is an array", "post", JOBS, {"json": [1, 2]}, 422, "VALIDATION_ERROR", "body"),
    ("no body", "post", JOBS, {}, 422, "VALIDATION_ERROR", "body"),
    ("invalid JSON", "post", JOBS, {"data": '{"strategy": ', "content_type": "application/json"}, 400,
     "BAD_JSON", "body"),
    ("body that is not JSON", "post", JOBS, {"data": "strategy=sma", "content_type": "text/plain"}, 415,
     "UNSUPPORTED_MEDIA_TYPE", None),
    ("body over 1 MB", "post", JOBS,
     {"data": json.dumps({"job_name": "x" * (1024 * 1024)}), "content_type": "application/json"}, 413,
     "PAYLOAD_TOO_LARGE", None),
    ("page_size 0", "get", f"{JOBS}?page_size=0", {}, 422, "VALIDATION_ERROR", "page_size"),
    ("page_size 201", "get", f"{JOBS}?page_size=201", {}, 422, "VALIDATION_ERROR", "page_size"),
    ("page 0", "get", f"{JOBS}?page=0", {}, 422, "VALIDATION_ERROR", "page"),
    ("page not a number", "get", f"{JOBS}?page=first", {}, 422, "VALIDATION_ERROR", "page"),
    ("unknown status filter", "get", f"{JOBS}?status=done", {}, 422, "VALIDATION_ERROR", "status"),
    ("logs page_size 201", "get", "{done}/logs?page_size=201", {}, 422, "VALIDATION_ERROR", "page_size"),
    ("get an unknown job", "get", UNKNOWN, {}, 404, "NOT_FOUND", None),
    ("progress of an unknown job", "get", f"{UNKNOWN}/progress", {}, 404, "NOT_FOUND", None),
    ("stop an unknown job", "post", f"{UNKNOWN}/stop", {}, 404, "NOT_FOUND", None),
    ("delete an unknown job", "delete", UNKNOWN, {}, 404, "NOT_FOUND", None),
    ("resume an unknown job", "post", f"{UNKNOWN}/resume", {}, 404, "NOT_FOUND", None),
    ("logs of an unknown job", "get", f"{UNKNOWN}/logs", {}, 404, "NOT_FOUND", None),
    ("metrics of an unknown job", "get", f"{UNKNOWN}/metrics", {}, 404, "NOT_FOUND", None),
    ("non-integer job id", "get", f"{JOBS}/abc", {}, 404, "NOT_FOUND", None),
    ("job id beyond bigint", "get", f"{JOBS}/{2**63}", {}, 422, "VALIDATION_ERROR", "job_id"),
    ("unknown route", "get", "/api/v1/nothing", {}, 404, "NOT_FOUND", None),
    ("wrong method", "put", JOBS, {"json": {}}, 405, "METHOD_NOT_ALLOWED", None),
    ("stop a finished job", "post", "{done}/stop", {}, 409, "CONFLICT", None),
    ("resume a running job", "post", "{running}/resume", {}, 409, "CONFLICT", None),
    ("resume a succeeded job", "post", "{done}/resume", {}, 409, "CONFLICT", None),
    ("resume a queued job", "post", "{queued}/resume", {}, 409, "CONFLICT", None),
    ("train-all: symbol without candles", "post", TRAIN_ALL,
     {"json": {"symbols": ["SYN", "NOPE"], "template": {"timeframe": "5m"}}}, 422, "VALIDATION_ERROR",
     "symbols.1"),
    ("train-all: symbol in the template", "post", TRAIN_ALL, {"json": {"template": {"symbol": "SYN"}}}, 422,
     "VALIDATION_ERROR", "template.symbol"),
    ("train-all: unknown template strategy", "post", TRAIN_ALL, {"json": {"template": {"strategy": "nope"}}},
     422, "VALIDATION_ERROR", "template.strategy"),
    ("train-all: template n_iterations 0", "post", TRAIN_ALL, {"json": {"template": {"n_iterations": 0}}}, 422,
     "VALIDATION_ERROR", "template.n_iterations"),
    ("train-all: empty symbol list", "post", TRAIN_ALL, {"json": {"symbols": []}}, 422, "VALIDATION_ERROR",
     "symbols"),
    ("train-all: force not a boolean", "post", f"{TRAIN_ALL}?force=maybe", {}, 422, "VALIDATION_ERROR", "force"),
    ("NUL in job_name", "post", JOBS, {"json": body(job_name="a\x00b")}, 422, "VALIDATION_ERROR", "job_name"),
    ("line break in job_name", "post", JOBS, {"json": body(job_name="a\nb")}, 422, "VALIDATION_ERROR", "job_name"),
    ("lone surrogate in job_name", "post", JOBS, {"data": '{"job_name": "a\\ud800"}', "content_type":
     "application/json"}, 422, "VALIDATION_ERROR", "job_name"),
    ("train-all: NUL in the template's job_name", "post", TRAIN_ALL, {"json": {"template": {"job_name": "\x00"}}},
     422, "VALIDATION_ERROR", "template.job_name"),
    ("start in the year 0 in UTC", "post", JOBS, {"json": body(start="0001-01-01T00:00:00+05:00")}, 422,
     "VALIDATION_ERROR", "start"),
    ("end in the year 10000 in UTC", "post", JOBS, {"json": body(end="9999-12-31T23:59:59-05:00")}, 422,
     "VALIDATION_ERROR", "end"),
    ("start in the year 1, before the candles", "post", JOBS, {"json": body(start="0001-01-01T00:00:00-05:00")},
     422, "VALIDATION_ERROR", "start"),
    ("end in the year 9999, after the candles", "post", JOBS, {"json": body(end="9999-12-31T23:59:59+05:00")},
     422, "VALIDATION_ERROR", "end"),
    ("train-all: template start in the year 0", "post", TRAIN_ALL,
     {"json": {"template": {"start": "0001-01-01T00:00:00+14:00"}}}, 422, "VALIDATION_ERROR", "template.start"),
    ("a range of 2 candles", "post", JOBS, {"json": body(start="2024-01-01T00:00:00Z", end="2024-01-01T00:05:00Z")},
     422, "VALIDATION_ERROR", "end"),
    ("a range shorter than the slowest window", "post", JOBS,
     {"json": body(param_space={"fast": 10, "slow": 200}, start="2024-01-01T00:00:00Z", end="2024-01-01T12:00:00Z")},
     422, "VALIDATION_ERROR", "start"),
    ("a range from start to the last candle, too short", "post", JOBS, {"json": body(start="2024-01-11T09:00:00Z")},
     422, "VALIDATION_ERROR", "start"),
]


@pytest.fixture
def jobs_in_states(client, db, make_job, candles_of):
    """SYN candles and one job in each state the table refers to."""
    candles_of("SYN", 3_000)
    ids = {}
    for status in ("queued", "running", "succeeded"):
        job = make_job()
        with db.cursor() as cur:
            cur.execute("UPDATE training_jobs SET status = %s WHERE id = %s", (status, job["id"]))
        ids[status] = job["id"]
    return {"done": f"{JOBS}/{ids['succeeded']}", "running": f"{JOBS}/{ids['running']}",
            "queued": f"{JOBS}/{ids['queued']}"}


def test_the_table_is_large_enough():
    assert len(CASES) >= 25


@pytest.mark.parametrize("name, method, url, kwargs, status, code, field", CASES, ids=[c[0] for c in CASES])
def test_bad_input(client, db, jobs_in_states, name, method, url, kwargs, status, code, field):
    with db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM training_jobs")
        jobs_before = cur.fetchone()["n"]
    response = getattr(client, method)(url.format(**jobs_in_states), **kwargs)
    assert_error(response, status, code, field)
    with db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM training_jobs")
        assert cur.fetchone()["n"] == jobs_before, "a rejected request left a job behind"


def deep(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "array" else '{"a": ' * depth + "1" + "}" * depth


def test_json_nested_too_deep_is_400_on_every_post_route(client, app, jobs_in_states):
    posts = [rule.rule.replace("<int:job_id>", "1") for rule in app.url_map.iter_rules()
             if "POST" in rule.methods and rule.rule.startswith("/api/")]
    assert {JOBS, TRAIN_ALL, f"{JOBS}/1/stop", f"{JOBS}/1/resume", "/api/v1/training/cancel"} <= set(posts)
    for url in posts:
        for kind in ("array", "object"):
            for depth in (33, 1000, 100_000):
                response = client.post(url, data=deep(depth, kind), content_type="application/json")
                assert_error(response, 400, "BAD_JSON", "body")
            shallow = client.post(url, data=deep(32, kind), content_type="application/json")
            assert shallow.status_code < 500 and "BAD_JSON" not in shallow.get_data(as_text=True), url


@pytest.mark.parametrize("fields, needed", [({}, 100), ({"param_space": {"fast": 10, "slow": 200}}, 202)],
                         ids=["the workflow's minimum", "the warm-up of slow=200, a signal and its fill"])
def test_the_shortest_range_accepted_holds_one_backtest(client, candles_of, fields, needed):
    candles_of("SYN", 3_000)  # 5-minute candles from 2024-01-01T00:00Z

    def post(candles: int):
        end = (datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=5 * (candles - 1))).isoformat()
        return client.post(JOBS, json=body(start="2024-01-01T00:00:00Z", end=end, **fields))

    assert_error(post(needed - 1), 422, "VALIDATION_ERROR", "start")
    assert post(needed).status_code == 201
