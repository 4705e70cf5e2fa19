"""The WebSocket job feed against a real `trad serve` (gunicorn + gevent), real PostgreSQL and a real
worker: connected, every change in version order, ping/pong, resume, reset, the token and origin
rules, pings unanswered, a job's feed closing after its end."""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.conftest import WebProcess
from tests.stream.test_sse import request
from tests.stream.ws_client import Refused, WebSocket
from trad.jobs.control import create_job
from trad.jobs.queue import connect_redis

PING_INTERVAL = 1.0
TOKEN = "feed-token-5e4d3c2b1a"
FEED = "/api/v1/training-jobs/ws"


@pytest.fixture(scope="module")
def web(env):
    """One server for the module, pinging every second (the default is 15 s)."""
    server = WebProcess({**env, "TRAD_WS_PING_INTERVAL": str(PING_INTERVAL)})
    yield server
    server.stop()


def ws_url(web, path: str = FEED) -> str:
    return web.url.replace("http://", "ws://") + path


def until(feed: WebSocket, wanted) -> list[dict]:
    """Messages up to the first one `wanted` takes (the server's history may still show jobs of
    earlier tests in a snapshot: they are skipped)."""
    seen = []
    for message in feed.messages():
        seen.append(message)
        if wanted(message):
            return seen
    raise AssertionError(f"not among {len(seen)} messages: {[m['type'] for m in seen]}")


def reply(feed: WebSocket, sent: dict | bytes) -> dict:
    """The server's answer to a message (job changes meanwhile skipped)."""
    if isinstance(sent, bytes):
        feed.send_frame(0x1, sent)
    else:
        feed.send(sent)
    return until(feed, lambda m: m["type"] not in ("job", "deleted"))[-1]


def of_job(job_id: int):
    return lambda m: m["type"] == "job" and m["job"]["id"] == job_id


def test_a_job_feed_shows_its_changes_in_version_order_and_closes_after_the_end(web, db, settings, candles_of,
                                                                                  start_worker, clean_db, job_audit):
    candles_of("SYN", 20_000)
    job = create_job(db, connect_redis(settings), settings, request())
    feed = WebSocket(ws_url(web, f"{FEED[:-3]}/{job['id']}/ws"))
    connected = feed.receive()
    assert connected == {"type": "connected", "version": job["version"]}
    start_worker()
    rows = [m for m in feed.messages(timeout=60)]
    assert feed.close_code == 1000 and feed.close_reason == "the job has ended", [(m["version"], m["job"]["status"]) for m in rows]
    assert {m["type"] for m in rows} == {"job"} and all(m["job"]["id"] == job["id"] for m in rows)
    versions = [m["version"] for m in rows]
    assert versions == sorted(set(versions)) and versions == [m["job"]["version"] for m in rows]
    statuses = [m["job"]["status"] for m in rows]
    assert statuses[0] == "queued" and "running" in statuses and statuses[-1] == "succeeded"
    changes = [r["version"] for r in job_audit(job["id"])]
    assert set(versions[1:]) <= set(changes) and versions[-1] == changes[-1]
    assert rows[-1]["job"]["progress"] == 100.0
    feed.close()
    again = WebSocket(ws_url(web, f"{FEED[:-3]}/{job['id']}/ws"))  # a job that has ended: its row, then the close
    assert [m["type"] for m in again.messages()] == ["connected", "job"] and again.close_code == 1000
    again.close()


def test_ping_is_answered_pong_and_anything_else_error(web, make_job, clean_db):
    job = make_job()
    feed = WebSocket(ws_url(web))
    assert feed.receive()["type"] == "connected"
    until(feed, of_job(job["id"]))
    assert reply(feed, {"type": "ping"}) == {"type": "pong"}
    for wrong in (b"not json", b"[1]", {"type": "resume", "after": -1}, {"type": "resume", "after": "7"}, {"type": "x"}):
        assert reply(feed, wrong)["type"] == "error", wrong
    assert reply(feed, {"type": "ping"}) == {"type": "pong"}
    feed.close()


def test_resume_replays_every_change_after_a_version_deletions_included(web, db, make_job, clean_db):
    kept, gone = make_job(job_name="kept"), make_job(job_name="gone")
    feed = WebSocket(ws_url(web))
    seen = feed.receive()["version"]
    until(feed, of_job(gone["id"]))
    with db.cursor() as cur:  # changes the client will ask for again
        cur.execute("UPDATE training_jobs SET job_name = 'renamed' WHERE id = %s", (kept["id"],))
        cur.execute("DELETE FROM training_jobs WHERE id = %s", (gone["id"],))
    live = [feed.receive(), feed.receive()]
    assert [m["type"] for m in live] == ["job", "deleted"]
    added = make_job(job_name="added")
    assert feed.receive()["job"]["id"] == added["id"]

    feed.send({"type": "resume", "after": seen})
    replay = [feed.receive(), feed.receive(), feed.receive()]
    assert [(m["type"], m.get("id") or m["job"]["id"]) for m in replay] == [
        ("job", kept["id"]), ("deleted", gone["id"]), ("job", added["id"])]
    assert replay[0]["job"]["job_name"] == "renamed" and [m["version"] for m in replay] == sorted(
        m["version"] for m in replay)
    with db.cursor() as cur:
        cur.execute("UPDATE training_jobs SET job_name = 'after' WHERE id = %s RETURNING version", (added["id"],))
        version = cur.fetchone()["version"]
    live = feed.receive()
    assert (live["type"], live["version"], live["job"]["version"], live["job"]["job_name"]) == ("job", version, version,
                                                                                            "after")

    reset = reply(feed, {"type": "resume", "after": version + 1000})  # a version this database never issued
    assert reset["type"] == "reset" and reset["reason"] == "unknown" and reset["version"] == version
    feed.close()


def test_a_client_that_stops_answering_pings_is_closed(web, clean_db):
    silent, lively = WebSocket(ws_url(web), answer_pings=False), WebSocket(ws_url(web))
    started = time.monotonic()
    assert silent.receive()["type"] == "connected" and lively.receive()["type"] == "connected"
    while silent.close_code is None and time.monotonic() - started < 4 * PING_INTERVAL:
        silent.receive(timeout=0.05)  # a snapshot, then the end
        lively.receive(timeout=0.05)  # read on: its pings are answered
    assert silent.close_code == 1008 and silent.pings == 1
    assert time.monotonic() - started <= 2 * PING_INTERVAL + 1.5
    while time.monotonic() - started < 5 * PING_INTERVAL:
        lively.receive(timeout=0.1)
    assert lively.close_code is None and lively.pings >= 4
    assert reply(lively, {"type": "ping"}) == {"type": "pong"}
    silent.close()
    lively.close()


def test_a_request_that_is_no_websocket_handshake_is_refused_in_the_error_shape(web, clean_db):
    plain = requests.get(f"{web.url}{FEED}", timeout=5)
    assert plain.status_code == 426 and plain.headers["Upgrade"] == "websocket"
    assert plain.json()["error"]["code"] == "UPGRADE_REQUIRED"
    for path, status, field in ((f"{FEED}?status=lost", 422, "status"), (f"{FEED}?colour=red", 422, "colour"),
                                (f"{FEED[:-3]}/987654321/ws", 404, None)):
        with pytest.raises(Refused) as refused:
            WebSocket(ws_url(web, path))
        error = json.loads(refused.value.body)["error"]
        assert refused.value.status == status and (field is None or field in [d["field"] for d in error["details"]])


def test_the_feed_needs_the_token_and_refuses_other_origins(env, make_job, clean_db):
    server = WebProcess({**env, "TRAD_API_TOKEN": TOKEN})
    try:
        url, origin = ws_url(server), server.url
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "trad_token=wrong"}):
            with pytest.raises(Refused) as refused:
                WebSocket(url, headers)
            assert refused.value.status == 401 and "UNAUTHORIZED" in refused.value.body
        for how, headers in ((url, {"Authorization": f"Bearer {TOKEN}"}), (f"{url}?token={TOKEN}", {}),
                             (url, {"Cookie": f"trad_token={TOKEN}", "Origin": origin})):
            feed = WebSocket(how, headers)
            assert feed.receive()["type"] == "connected"
            feed.close()
        for other in ({"Origin": "http://127.0.0.1:1"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                      {"Sec-Fetch-Site": "same-site", "Origin": origin}):
            with pytest.raises(Refused) as refused:
                WebSocket(url, {"Cookie": f"trad_token={TOKEN}", **other})
            assert refused.value.status == 403 and "FORBIDDEN" in refused.value.body
    finally:
        server.stop()


def test_every_kind_of_event_is_framed_as_its_feed_message():
    from trad.api.events import deletion_event, job_event, reset_event
    from trad.api.feed import feed_frame

    row = {"id": 7, "version": 42, "status": "running", "batch_id": None, "json": '{"id":7,"progress":55.0}'}
    for event, expected in ((job_event(row), {"type": "job", "version": 42, "job": {"id": 7, "progress": 55.0}}),
                            (deletion_event(7, 43), {"type": "deleted", "version": 43, "id": 7}),
                            (reset_event(44, "backlog"), {"type": "reset", "version": 44, "reason": "backlog"})):
        framed = feed_frame(event)
        assert framed[0] == 0x81 and json.loads(framed[2:]) == expected
        assert feed_frame(event) is framed  # framed once, whatever the number of clients
