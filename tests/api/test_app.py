"""The app around the endpoints: health, outages, the access token, the spec and docs, unexpected errors."""

from __future__ import annotations

import re

from tests.api.support import JOBS, assert_error, job_body, wait_for

CLOSED_REDIS = "redis://127.0.0.1:1/0"
TOKEN = "s3cret-token"


def test_health_names_database_redis_workers_and_queue(client, settings, start_worker):
    body = client.get("/api/v1/health").get_json()
    assert set(body) == {"status", "database", "redis", "workers", "queue"}
    assert body["status"] == "ok" and body["database"]["ok"] and body["redis"]["ok"]
    assert body["database"]["latency_ms"] >= 0 and body["queue"] == {"name": settings.queue, "length": 0}

    worker = start_worker()
    # Listed from its registration on; "starting" until RQ has recorded its first state.
    (seen,) = wait_for(lambda: [w for w in client.get("/api/v1/health").get_json()["workers"]
                                if w["name"] == worker.name and w["state"] != "starting"], 60)
    assert set(seen) == {"name", "state", "current_job", "last_heartbeat"} and seen["state"] in ("idle", "started", "busy")


def test_without_redis_create_is_503_and_leaves_no_row(make_app, db, clean_db, candles_of):
    candles_of("SYN", 3_000)
    client = make_app(redis_url=CLOSED_REDIS).test_client()
    assert_error(client.post(JOBS, json=job_body()), 503, "SERVICE_UNAVAILABLE")
    with db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM training_jobs")
        assert cur.fetchone()["n"] == 0
    assert_error(client.post("/api/v1/training/train-all", json={"template": {"timeframe": "5m"}}), 503,
                 "SERVICE_UNAVAILABLE")
    with db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM training_batches")
        assert cur.fetchone()["n"] == 0

    response = client.get("/api/v1/health")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "degraded"
    assert body["redis"] == {"ok": False, "latency_ms": None} and body["database"]["ok"] is True
    assert body["workers"] == [] and body["queue"]["length"] is None
    assert_error(client.get("/api/v1/training/status"), 503, "SERVICE_UNAVAILABLE")


def test_without_postgresql_reads_are_503(make_app, settings):
    client = make_app(database_url="postgresql://postgres@127.0.0.1:1/none").test_client()
    assert_error(client.get(JOBS), 503, "SERVICE_UNAVAILABLE")
    assert_error(client.get("/api/v1/training/progress"), 503, "SERVICE_UNAVAILABLE")
    response = client.get("/api/v1/health")
    assert response.status_code == 503 and response.get_json()["database"] == {"ok": False, "latency_ms": None}


def test_the_token_guards_the_api_and_rq_but_not_the_docs(make_app, clean_db):
    client = make_app(api_token=TOKEN).test_client()
    error = assert_error(client.get(JOBS), 401, "UNAUTHORIZED")
    assert TOKEN not in error["message"]
    assert_error(client.get(JOBS, headers={"Authorization": "Bearer wrong"}), 401, "UNAUTHORIZED")
    assert_error(client.get("/api/v1/nothing"), 401, "UNAUTHORIZED")
    assert client.get(JOBS, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get(f"{JOBS}?token={TOKEN}").status_code == 200
    client.set_cookie("trad_token", TOKEN)
    assert client.get(JOBS).status_code == 200
    client.delete_cookie("trad_token")

    assert_error(client.get("/rq/"), 401, "UNAUTHORIZED")
    assert client.get("/rq/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/docs", follow_redirects=True).status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/").status_code == 200


def test_every_response_names_its_trace_id(client):
    ok, missing = client.get(JOBS), client.get(f"{JOBS}/12345")
    assert re.fullmatch(r"[0-9a-f]{32}", ok.headers["X-Trace-Id"])
    assert missing.headers["X-Trace-Id"] == missing.get_json()["error"]["trace_id"] != ok.headers["X-Trace-Id"]


def test_an_unexpected_error_is_a_500_with_only_the_trace_id(make_app, caplog):
    app = make_app()

    @app.get("/api/v1/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/api/v1/boom")
    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert "secret internals" not in response.get_data(as_text=True) and error["details"] == []
    logged = [r for r in caplog.records if error["trace_id"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_openapi_documents_every_endpoint(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    expected = {
        "/api/v1/training-jobs": {"get", "post"}, "/api/v1/training-jobs/{job_id}": {"get", "delete"},
        "/api/v1/training-jobs/{job_id}/progress": {"get"}, "/api/v1/training-jobs/{job_id}/stop": {"post"},
        "/api/v1/training-jobs/{job_id}/resume": {"post"}, "/api/v1/training-jobs/{job_id}/logs": {"get"},
        "/api/v1/training-jobs/{job_id}/metrics": {"get"}, "/api/v1/training/train-all": {"post"},
        "/api/v1/training/progress": {"get"}, "/api/v1/training/cancel": {"post"},
        "/api/v1/training/symbols": {"get"}, "/api/v1/training/status": {"get"}, "/api/v1/health": {"get"},
        "/api/v1/training-jobs/ws": {"get"}, "/api/v1/training-jobs/{job_id}/ws": {"get"},
        "/api/v1/strategies": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    schemas = spec["components"]["schemas"]
    assert {"JobRequest", "JobRow", "JobPage", "JobProgress", "BatchProgress", "Health", "ErrorBody"} <= set(schemas)
    assert "201" in paths["/api/v1/training-jobs"]["post"]["responses"]


def test_openapi_documents_both_event_streams(app, client):
    paths = client.get("/openapi.json").get_json()["paths"]
    every, one = paths["/api/v1/training-jobs/stream"]["get"], paths["/api/v1/training-jobs/{job_id}/stream"]["get"]
    for operation, statuses in ((every, {"200", "401", "422", "503"}), (one, {"200", "401", "404", "422", "503"})):
        assert statuses <= set(operation["responses"])
        assert list(operation["responses"]["200"]["content"]) == ["text/event-stream"]
        assert operation["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
        assert operation["security"] == [{"bearer": []}]
    params = lambda operation: {(p["in"], p["name"]) for p in operation["parameters"]}
    assert params(every) == {("query", "status"), ("query", "batch_id"), ("query", "last_event_id"),
                             ("header", "Last-Event-ID")}
    assert params(one) == {("path", "job_id"), ("query", "last_event_id"), ("header", "Last-Event-ID")}
    served = {rule.rule: rule.endpoint for rule in app.url_map.iter_rules() if rule.rule.endswith("/stream")}
    assert served == {"/api/v1/training-jobs/stream": "stream.stream_all_jobs",
                      "/api/v1/training-jobs/<int:job_id>/stream": "stream.stream_one_job"}


def test_openapi_documents_the_websocket_feed_and_its_messages(app, client):
    spec = client.get("/openapi.json").get_json()
    every, one = spec["paths"]["/api/v1/training-jobs/ws"]["get"], spec["paths"]["/api/v1/training-jobs/{job_id}/ws"]["get"]
    for operation in (every, one):
        assert {"101", "401", "403", "422", "426"} <= set(operation["responses"])
        assert operation["responses"]["101"]["content"]["application/json"]["schema"]["$ref"].endswith("/FeedMessage")
        client_messages = {d["properties"]["type"]["const"]
                           for d in operation["x-client-messages"]["$defs"].values()}
        assert client_messages == {"ping", "resume"} and "pong" in operation["description"]
    assert {(p["in"], p["name"]) for p in every["parameters"] if p["in"] != "header"} == {("query", "status"),
                                                                                           ("query", "batch_id")}
    kinds = [spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]["properties"]["type"]["const"]
             for ref in spec["components"]["schemas"]["FeedMessage"]["anyOf"]]
    assert kinds == ["connected", "job", "deleted", "reset", "pong", "error"]
    served = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.endswith("/ws")}
    assert served == {"/api/v1/training-jobs/ws", "/api/v1/training-jobs/<int:job_id>/ws"}


def test_swagger_ui_is_served_offline(client):
    redirect = client.get("/docs")
    assert redirect.status_code in (301, 302, 308)
    page = client.get("/docs", follow_redirects=True)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "swagger-ui" in html.lower()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and not [a for a in assets if re.match(r"(https?:)?//", a)]
    for asset in assets:
        assert client.get(f"/docs/{asset}").status_code == 200, asset
    assert client.get("/docs/openapi.json").get_json()["openapi"].startswith("3.1")


def test_redoc_is_served_offline_with_a_policy_that_keeps_it_on_this_server(client):
    redirect = client.get("/redoc")
    assert redirect.status_code in (301, 302, 308) and redirect.headers["Location"].endswith("/docs/redoc")
    page = client.get("/redoc", follow_redirects=True)
    html = re.sub(r"<!--.*?-->", "", page.get_data(as_text=True), flags=re.S)
    assert page.status_code == 200 and "Redoc.init" in html and '"openapi.json"' in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and not [a for a in assets if re.match(r"(https?:)?//", a)]
    for asset in assets:
        assert client.get(f"/docs/{asset}").status_code == 200, asset
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy and "https:" not in policy
    assert client.get("/docs/").headers["Content-Security-Policy"] == policy


def test_strategies_describe_their_parameter_spaces(client):
    body = client.get("/api/v1/strategies").get_json()
    names = [s["name"] for s in body["strategies"]]
    assert {"liquidity_sweep", "sma_crossover", "rsi_reversion"} <= set(names)
    sma = next(s for s in body["strategies"] if s["name"] == "sma_crossover")
    assert sma["defaults"] == {"fast": 10, "slow": 50}
    fast = next(p for p in sma["params"] if p["name"] == "fast")
    assert (fast["type"], fast["low"], fast["high"], fast["default"]) == ("int", 5, 50, 10)
    assert body["optimizers"] == ["grid", "random", "bayesian"] and "5m" in body["timeframes"]
    assert "sharpe" in body["objectives"]


def test_strategies_report_the_grid_step_a_search_uses(client):
    from trad.optimize import build_search_space
    from trad.strategies import get_strategy

    for strategy in client.get("/api/v1/strategies").get_json()["strategies"]:
        space = {d.name: d for d in build_search_space(get_strategy(strategy["name"]))}
        for param in strategy["params"]:
            assert param["step"] == space[param["name"]].grid_step, (strategy["name"], param["name"])


def test_job_rows_carry_every_column_of_the_table(client, db, candles_of):
    from trad.api.schemas import JobRow

    with db.cursor() as cur:
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'training_jobs'")
        columns = {r["column_name"] for r in cur.fetchall()}
    assert set(JobRow.model_fields) == columns
