"""SSE against a real `trad serve` (gunicorn + gevent), real PostgreSQL and real workers."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time

import pytest
import requests
from urllib.parse import urlsplit

from tests.conftest import add_job
from trad.jobs.control import create_job
from trad.jobs.queue import connect_redis
from trad.jobs.requests import JobRequest
from trad.store.jobs import get_job


class StreamReader:
    """Reads an SSE stream in a thread, recording (arrival time, event, id, data)."""

    def __init__(self, url: str, last_event_id: int | None = None) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = str(last_event_id)
        self.connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
        self.response = self.connection.getresponse()
        self.events: list[tuple[float, str, int | None, dict | None]] = []
        self.lines: list[str] = []
        self.ended = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        kind, event_id, data = "message", None, None
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\r\n")
                self.lines.append(line)
                if line == "":
                    if data is not None:
                        self.events.append((time.monotonic(), kind, event_id, json.loads(data)))
                    kind, event_id, data = "message", None, None
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("data: "):
                    data = line[6:]
        except Exception:  # the connection was dropped under the reader: the stream is over
            pass
        finally:
            self.ended.set()

    def close(self) -> None:
        """Drop the connection at once, as a browser tab closing does."""
        try:
            self.connection.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.connection.close()

    def ids(self) -> list[int]:
        return [e[2] for e in self.events if e[2] is not None]

    def wait_for(self, predicate, timeout: float = 10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for event in list(self.events):
                if predicate(event):
                    return event
            time.sleep(0.02)
        raise AssertionError(f"no such event in {len(self.events)} received")


def row(db, job_id) -> dict:
    with db.connection() as conn:
        return get_job(conn, job_id)


def request(**fields) -> JobRequest:
    return JobRequest(**{"strategy": "sma_crossover", "symbol": "SYN", "timeframe": "5m", "optimizer": "grid",
                         "validation": {"enabled": False}, **fields})


@pytest.fixture
def web(start_web):
    return start_web()


def test_headers_retry_and_snapshot(web, make_job, clean_db):
    jobs = [make_job(job_name=f"snap {i}") for i in range(3)]
    reader = StreamReader(f"{web.url}/api/v1/training-jobs/stream")
    reader.wait_for(lambda e: e[3]["id"] == jobs[-1]["id"])
    assert reader.response.getheader("Content-Type").startswith("text/event-stream")
    assert reader.response.getheader("Cache-Control") == "no-cache"
    assert reader.response.getheader("X-Accel-Buffering") == "no"
    assert reader.lines[0] == "retry: 3000"
    assert reader.ids() == sorted(j["version"] for j in jobs)
    reader.close()


def test_a_psql_update_reaches_the_client_in_under_a_second(web, make_job, pg_url, clean_db):
    job = make_job()
    reader = StreamReader(f"{web.url}/api/v1/training-jobs/stream")
    reader.wait_for(lambda e: e[3]["id"] == job["id"])
    sent = time.monotonic()
    subprocess.run(["psql", pg_url, "-q", "-c", f"UPDATE training_jobs SET job_name = 'by hand' WHERE id = {job['id']}"],
                   check=True)
    arrived = reader.wait_for(lambda e: e[3].get("job_name") == "by hand", timeout=5)
    assert arrived[0] - sent < 1.0
    reader.close()


def test_a_running_job_arrives_in_version_order_and_its_stream_closes(web, db, settings, candles_of, start_worker,
                                                                    clean_db):
    candles_of("SYN", 20_000)
    job = create_job(db, connect_redis(settings), settings, request())
    reader = StreamReader(f"{web.url}/api/v1/training-jobs/{job['id']}/stream")
    start_worker()
    assert reader.ended.wait(60), "the per-job stream did not close"
    ids = reader.ids()
    assert ids == sorted(set(ids)) and len(ids) >= 3
    statuses = [e[3]["status"] for e in reader.events]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded" and "running" in statuses
    assert reader.events[-1][3]["progress"] == 100.0


def test_replay_after_a_reconnect_misses_nothing(web, db, settings, candles_of, start_worker, clean_db):
    candles_of("BIG", 300_000)
    candles_of("SYN", 20_000)
    redis = connect_redis(settings)
    job = create_job(db, redis, settings, JobRequest(strategy="rsi_reversion", symbol="BIG", timeframe="5m",
                                                     optimizer="random", n_iterations=12, min_trades=1, seed=4,
                                                     validation={"enabled": False}))
    other = create_job(db, redis, settings, request(job_name="other"))
    start_worker()
    first = StreamReader(f"{web.url}/api/v1/training-jobs/stream")
    first.wait_for(lambda e: e[3]["id"] == job["id"] and e[3]["status"] == "running", timeout=60)
    first.close()
    last_seen = first.ids()[-1]
    time.sleep(1.5)  # changes happen while the client is away
    with db.cursor() as cur:
        cur.execute("DELETE FROM training_jobs WHERE id = %s", (other["id"],))
    second = StreamReader(f"{web.url}/api/v1/training-jobs/stream", last_event_id=last_seen)
    second.wait_for(lambda e: e[3]["id"] == job["id"] and e[3]["status"] == "succeeded", timeout=120)
    ids = second.ids()
    assert ids == sorted(ids) and ids[0] > last_seen
    assert ("deleted", other["id"]) in [(e[1], e[3]["id"]) for e in second.events]
    final = row(db, job["id"])
    latest = [e[3] for e in second.events if e[1] == "job" and e[3]["id"] == job["id"]][-1]
    assert latest["version"] == final["version"] and latest["progress"] == 100.0
    second.close()


def test_unknown_job_stream_is_a_404_in_the_error_shape(web):
    response = requests.get(f"{web.url}/api/v1/training-jobs/987654321/stream", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.slow
def test_the_stream_survives_a_postgresql_restart(private_services, private_processes):
    db = private_services.db
    job = add_job(db)
    web = private_processes.web()
    reader = StreamReader(f"{web.url}/api/v1/training-jobs/stream")
    reader.wait_for(lambda e: e[3]["id"] == job["id"])
    private_services.restart_postgresql()
    for _ in range(100):
        try:
            with db.cursor() as cur:
                cur.execute("UPDATE training_jobs SET job_name = 'after restart' WHERE id = %s", (job["id"],))
            break
        except Exception:
            time.sleep(0.1)
    reader.wait_for(lambda e: e[3].get("job_name") == "after restart", timeout=15)
    assert not reader.ended.is_set()
    reader.close()
