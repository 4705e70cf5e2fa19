"""Access rules with TRAD_API_TOKEN set: every route that reads or changes jobs (the whole /api
tree, both SSE streams, /rq and everything under it) answers 401 in the error shape without the
token and works with it; the comparison is constant-time; the token never reaches a log; the web
server binds 127.0.0.1 unless TRAD_HOST says otherwise.

Health and strategies stay behind the token too: health names the workers and the job each one
runs. Only the dashboard page, its static files and icon, /docs and /openapi.json are open:
they hold no job data (the page asks for the token before it loads any).
"""

from __future__ import annotations

import hmac
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.api.support import assert_error
from tests.conftest import ProcessLogs, free_port
from tests.reliability.conftest import wait_for
from trad.api import close_app, create_app
from trad.jobs.queue import enqueue_run, new_run_id, training_queue

TOKEN = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
WRONG = "tok-00000000000000000000000000000000"
PUBLIC = re.compile(r"^/$|^/favicon\.ico$|^/openapi\.json$|^/docs(/|$)|^/redoc$|^/static/")
JOBS = "/api/v1/training-jobs"


@pytest.fixture
def guarded_app(settings, redis):
    app = create_app(settings.with_(api_token=TOKEN))
    app.config["TESTING"] = True
    yield app
    close_app(app)
    training_queue(redis, settings).empty()


def concrete_url(rule, job_id: int, run_id: str, queue: str) -> str:
    """A URL of the rule with every variable filled in."""
    values = {"job_id": job_id if "int:job_id" in rule.rule else run_id, "instance_number": 0,
              "queue_name": queue, "registry_name": "finished", "per_page": 10, "order": "asc", "page": 1,
              "filename": "css/bootstrap.min.css", "backtest_id": 1}
    url = rule.rule
    for name in rule.arguments:
        url = re.sub(r"<(?:[a-z]+:)?%s>" % name, str(values[name]), url)
    return url


def protected_routes(app) -> list[tuple[str, str]]:
    """(method, rule) of every route that is not explicitly public."""
    routes = []
    for rule in app.url_map.iter_rules():
        if PUBLIC.match(rule.rule):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, rule))
    return routes


def test_every_route_but_the_open_pages_needs_the_token(guarded_app, make_job, clean_db, settings, redis):
    routes = protected_routes(guarded_app)
    rules = {rule.rule for _, rule in routes}
    # The routes the issue names are all among them: jobs, both streams, batch, health, /rq.
    assert {f"{JOBS}", f"{JOBS}/<int:job_id>", f"{JOBS}/stream", f"{JOBS}/<int:job_id>/stream",
            "/api/v1/training/train-all", "/api/v1/training/progress", "/api/v1/training/cancel",
            "/api/v1/training/symbols", "/api/v1/health", "/rq/"} <= rules
    assert all(r.startswith(("/api/", "/rq/")) for r in rules), sorted(rules)
    assert len(routes) >= 35

    client = guarded_app.test_client()

    def fresh_url(rule) -> str:
        """The rule's URL on a new queued job with a run in Redis (stop, delete and requeue use them up)."""
        job = make_job()
        run = enqueue_run(redis, settings, job["id"], new_run_id(job["id"]))
        return concrete_url(rule, job["id"], run.id, settings.queue)

    answered = {}
    for method, rule in routes:
        url = fresh_url(rule)
        for how in ({}, {"headers": {"Authorization": f"Bearer {WRONG}"}}, {"query_string": {"token": WRONG}},
                    {"headers": {"Authorization": TOKEN}}, {"headers": {"Authorization": f"Basic {TOKEN}"}},
                    {"cookie": WRONG}):
            response = send(client, method, url, how)
            assert_error(response, 401, "UNAUTHORIZED")
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="trad"'
            assert TOKEN not in response.get_data(as_text=True)
        answered[f"{method} {rule.rule}"] = statuses = []
        for how in ({"headers": {"Authorization": f"Bearer {TOKEN}"}}, {"query_string": {"token": TOKEN}},
                    {"cookie": TOKEN}):
            response = send(client, method, fresh_url(rule), how)
            statuses.append(response.status_code)
            assert response.status_code != 401 and response.status_code < 500, (method, url, response.status_code)
    works = [f"GET {JOBS}", f"GET {JOBS}/<int:job_id>", f"GET {JOBS}/<int:job_id>/progress",
             f"GET {JOBS}/<int:job_id>/logs", f"GET {JOBS}/<int:job_id>/metrics", f"GET {JOBS}/stream",
             f"GET {JOBS}/<int:job_id>/stream", f"POST {JOBS}/<int:job_id>/stop", f"DELETE {JOBS}/<int:job_id>",
             "GET /api/v1/training/progress", "GET /api/v1/training/symbols", "POST /api/v1/training/cancel",
             "GET /api/v1/health", "GET /api/v1/training/status", "GET /api/v1/strategies", "GET /rq/",
             "GET /rq/<int:instance_number>/data/queues.json", "GET /rq/<int:instance_number>/view/job/<job_id>",
             "POST /rq/job/<job_id>/delete"]
    for route in works:
        assert all(s in (200, 204) for s in answered[route]), (route, answered[route])


def send(client, method: str, url: str, how: dict):
    """One request with the token placed as `how` says (headers, query_string or cookie); body not read."""
    if "cookie" in how:
        client.set_cookie("trad_token", how["cookie"])
    try:
        response = client.open(url, method=method, buffered=False,
                               **{k: v for k, v in how.items() if k != "cookie"})
        response.close()  # a stream is not read to its end
        return response
    finally:
        client.delete_cookie("trad_token")


def test_the_open_pages_hold_no_job_data(guarded_app, make_job, clean_db):
    job = make_job(job_name="secret-job-name-4711")
    client = guarded_app.test_client()
    for url in ("/", "/favicon.ico", "/openapi.json", "/docs/", "/docs/redoc", "/static/app.js"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "secret-job-name-4711" not in response.get_data(as_text=True)
        assert f'"id": {job["id"]}' not in response.get_data(as_text=True)


def test_the_token_is_compared_in_constant_time(guarded_app, monkeypatch):
    import trad.api.hooks as hooks

    calls, real = [], hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hooks.hmac, "compare_digest", spy)
    client = guarded_app.test_client()
    for presented in (TOKEN, WRONG, TOKEN[:-1], TOKEN + "x", "x"):
        client.get("/api/v1/strategies", headers={"Authorization": f"Bearer {presented}"})
    # Every presented token, of any length, went through compare_digest against the real one.
    assert calls == [(p.encode(), TOKEN.encode()) for p in (TOKEN, WRONG, TOKEN[:-1], TOKEN + "x", "x")]
    # And no other code compares the token by hand.
    package = Path(hooks.__file__).resolve().parent.parent
    uses = [f"{p.relative_to(package)}: {line.strip()}" for p in package.rglob("*.py")
            for line in p.read_text().splitlines() if "api_token" in line and ("==" in line or "!=" in line)]
    assert uses == []


def read_stream_start(response, needle: str, timeout: float = 10) -> str:
    """Read an SSE response until `needle` appears (or fail)."""
    seen, end = "", time.monotonic() + timeout
    for chunk in response.iter_content(chunk_size=None, decode_unicode=True):
        seen += chunk
        if needle in seen or time.monotonic() > end:
            break
    response.close()
    assert needle in seen, seen[:500]
    return seen


def test_streams_need_the_token_and_take_it_from_header_query_or_cookie(start_web, make_job, clean_db):
    web = start_web(extra_env={"TRAD_API_TOKEN": TOKEN})
    job = make_job(job_name="streamed")
    for path in (f"{JOBS}/stream", f"{JOBS}/{job['id']}/stream"):
        refused = requests.get(f"{web.url}{path}", timeout=5)
        assert refused.status_code == 401 and refused.headers["Content-Type"].startswith("application/json")
        assert set(refused.json()["error"]) == {"code", "message", "details", "trace_id"}
        assert requests.get(f"{web.url}{path}?token={WRONG}", timeout=5).status_code == 401
        for how in ({"params": {"token": TOKEN}}, {"headers": {"Authorization": f"Bearer {TOKEN}"}},
                    {"cookies": {"trad_token": TOKEN}}):
            response = requests.get(f"{web.url}{path}", stream=True, timeout=10, **how)
            assert response.status_code == 200, how
            assert response.headers["Content-Type"].startswith("text/event-stream")
            read_stream_start(response, '"streamed"')


def requests_carrying_the_token(url: str, job_id: int) -> int:
    """Requests with the token in every place it can go, good and bad ones; returns how many."""
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    sent = 0
    for path in (JOBS, f"{JOBS}/{job_id}", f"{JOBS}/{job_id}/progress", f"{JOBS}/987654", f"{JOBS}?page=0",
                 f"{JOBS}?page_size=x", "/api/v1/health", "/api/v1/nothing", "/rq/", "/rq/0/data/queues.json"):
        for how in ({"headers": bearer}, {"params": {"token": TOKEN}}, {"cookies": {"trad_token": TOKEN}}):
            requests.get(f"{url}{path}", timeout=10, **how)
            sent += 1
    for how in ({"headers": bearer}, {"params": {"token": TOKEN}}):
        requests.post(f"{url}{JOBS}", data="{not json", timeout=10,
                      headers={"Content-Type": "application/json", **how.get("headers", {})},
                      params=how.get("params"))
        requests.post(f"{url}{JOBS}", json={"strategy": "nope"}, timeout=10, **how)
        requests.post(f"{url}{JOBS}/{job_id}/stop", timeout=10, **how)
        sent += 3
    stream = requests.get(f"{url}{JOBS}/stream", params={"token": TOKEN}, stream=True, timeout=10)
    read_stream_start(stream, "event: job")
    return sent + 1


def start_serve(env: dict[str, str], *args: str, host: str = "127.0.0.1") -> tuple[subprocess.Popen, int, Path]:
    """`trad serve` with extra arguments, its output to a file; waits until it answers."""
    port = free_port()
    log = ProcessLogs.path(f"trad-web-reliability-{port}")
    process = subprocess.Popen([sys.executable, "-m", "trad", "serve", "--port", str(port), *args], env=env,
                               stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)

    def answers() -> bool:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            assert process.poll() is None, log.read_text()
            return False

    wait_for(answers, 30, what="trad serve listening")
    return process, port, log


def stop_serve(process: subprocess.Popen) -> None:
    import os
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)  # gunicorn's quick shutdown
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.mark.parametrize("access_log", [False, True], ids=["default", "access-log"])
def test_the_token_never_reaches_the_web_servers_log(env, make_job, clean_db, access_log):
    # Redis unreachable: health, stop and /rq log warnings, so the app's own logging is exercised too.
    server_env = {**{k: v for k, v in env.items() if k != "TRAD_HOST"}, "TRAD_API_TOKEN": TOKEN,
                  "TRAD_REDIS_URL": "redis://127.0.0.1:1/0"}
    process, port, log = start_serve(server_env, *(["--access-log"] if access_log else []))
    try:
        assert listening_addresses(port) == {"127.0.0.1"}  # no TRAD_HOST: loopback only
        job = make_job()
        sent = requests_carrying_the_token(f"http://127.0.0.1:{port}", job["id"])
        assert sent >= 35
        time.sleep(0.5)
    finally:
        stop_serve(process)
    output = log.read_text()
    assert "Redis" in output  # the app did log about these requests
    if access_log:
        assert output.count(f"GET {JOBS}") >= 10  # ...and so did the access log, without the query string
    assert TOKEN not in output
    assert TOKEN[4:20] not in output


def listening_addresses(port: int) -> set[str]:
    """Addresses with a listening TCP socket on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state != "0A" or int(hex_port, 16) != port:
                continue
            raw = bytes.fromhex(address)
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def test_the_web_server_binds_where_trad_host_says(env):
    # Without TRAD_HOST it binds 127.0.0.1 only: checked by the log tests above, on their servers.
    # Another loopback address proves TRAD_HOST is honoured without exposing anything.
    process, port, _ = start_serve({**env, "TRAD_HOST": "127.0.0.2"}, host="127.0.0.2")
    try:
        assert listening_addresses(port) == {"127.0.0.2"}
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        stop_serve(process)


# Malformed HTTP: gunicorn answers it before the app, and used to log the raw request line.

MALFORMED = [  # (request bytes with the token where gunicorn's parser stops, expected status)
    (b"GET %s?token=%s HTTP/1.1 junk\r\nHost: t\r\n\r\n", 400),
    (b"GET %s?token=%s HTTP/9.9\r\nHost: t\r\n\r\n", 400),
    (b"G\x00T %s?token=%s HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"GET %s?token=%s HTTP/1.1\r\nHost: t\r\nBad Header: Bearer %s\r\n\r\n", 400),
    (b"GET %s?token=%s HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n Bearer %s\r\n\r\n", 400),
    (b"GET %s?token=%s&pad=" + b"x" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    (b"GET %s?token=%s HTTP/1.1\r\nHost: t\r\n" + b"X-Pad: y\r\n" * 200 + b"\r\n", 431),
    (b"POST %s?token=%s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json"
     b"\r\n\r\nzz%s\r\n", 400),
    (b"POST %s?token=%s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, %s\r\n\r\n", 400),
]


def exchange(port: int, raw: bytes) -> tuple[int, dict, str]:
    """Send raw bytes, read the whole answer (the server closes); status, headers, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return int(lines[0].split()[1]), headers, body.decode()


def test_malformed_http_is_answered_in_the_error_shape_and_never_logs_the_token(env, clean_db):
    from tests.reliability.test_bad_input import error_shape_problem

    process, port, log = start_serve({**env, "TRAD_API_TOKEN": TOKEN}, "--access-log")
    try:
        for template, status in MALFORMED:
            raw = template.replace(b"%s", JOBS.encode(), 1).replace(b"%s", TOKEN.encode())
            answered, headers, body = exchange(port, raw)
            assert answered == status, (raw[:80], answered, body)
            assert error_shape_problem(answered, headers.get("x-trace-id"), body) is None, body
            assert TOKEN not in body
    finally:
        stop_serve(process)
    output = log.read_text()
    assert output.count("invalid request from 127.0.0.1") >= len(MALFORMED) - 1  # the bad chunk is the app's 400
    assert TOKEN not in output and TOKEN[4:20] not in output


# Cross-origin state changes: the cookie (or, with no token, nothing) goes with a form POST from
# another port or a sibling subdomain; those are refused, the dashboard's own requests are not.

FOREIGN = [{"Origin": "http://localhost:9999"}, {"Origin": "http://evil.localhost"}, {"Origin": "null"},
           {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"},
           {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost"}]
OWN = [{"Sec-Fetch-Site": "same-origin"}, {"Origin": "http://localhost"}, {}]  # {}: curl, no page


def state_changes(client, job_id: int) -> list[tuple[str, str]]:
    return [("POST", f"{JOBS}/{job_id}/stop"), ("POST", f"{JOBS}/{job_id}/resume"), ("DELETE", f"{JOBS}/{job_id}"),
            ("POST", "/api/v1/training/cancel"), ("POST", JOBS)]


def test_a_state_change_from_another_origin_with_the_cookie_is_refused(guarded_app, make_job, clean_db):
    client = guarded_app.test_client()
    client.set_cookie("trad_token", TOKEN)
    job = make_job(status="running")
    for method, url in state_changes(client, job["id"]):
        for headers in FOREIGN:
            response = client.open(url, method=method, headers=headers, json={})
            assert_error(response, 403, "FORBIDDEN")
    row = client.get(f"{JOBS}/{job['id']}").get_json()
    assert (row["status"], row["cancel_requested"]) == ("running", False)  # nothing happened to it
    with_bearer = client.post(f"{JOBS}/{job['id']}/stop", headers={"Authorization": f"Bearer {TOKEN}",
                                                                    "Sec-Fetch-Site": "cross-site"})
    assert with_bearer.status_code == 200 and with_bearer.get_json()["cancel_requested"] is True
    for headers in OWN:
        resumable = make_job(status="stopped")
        assert client.post(f"{JOBS}/{resumable['id']}/resume", headers=headers).status_code == 200, headers
        assert client.delete(f"{JOBS}/{resumable['id']}", headers=headers).status_code == 204, headers


def test_without_a_token_a_page_of_another_origin_changes_nothing_either(app, make_job, clean_db):
    client = app.test_client()
    job = make_job(status="stopped")
    for headers in FOREIGN:
        assert_error(client.delete(f"{JOBS}/{job['id']}", headers=headers), 403, "FORBIDDEN")
    assert client.delete(f"{JOBS}/{job['id']}", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 204


def test_rq_dashboards_requeue_and_delete_refuse_other_origins(guarded_app, make_job, clean_db, settings, redis):
    client = guarded_app.test_client()
    client.set_cookie("trad_token", TOKEN)
    job = make_job()
    run = enqueue_run(redis, settings, job["id"], new_run_id(job["id"]))
    requeue_all = f"/rq/requeue/{settings.queue}"
    for headers in [*FOREIGN, {}]:  # a GET carries no Origin: without Sec-Fetch-Site it proves nothing
        assert_error(client.get(requeue_all, headers=headers), 403, "FORBIDDEN")
    assert client.get(requeue_all, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    for headers in FOREIGN:
        for url in (f"/rq/job/{run.id}/delete", f"/rq/job/{run.id}/requeue", f"/rq/queue/{settings.queue}/compact",
                    f"/rq/queue/{settings.queue}/queued/empty", requeue_all):
            assert_error(client.post(url, headers=headers), 403, "FORBIDDEN")
    assert run.exists(run.id, connection=redis)
    assert client.post(f"/rq/job/{run.id}/delete", headers={"Sec-Fetch-Site": "same-origin"}).get_json() == \
        {"status": "OK"}
