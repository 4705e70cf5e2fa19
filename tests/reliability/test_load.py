"""A CI-sized soak: 4 training jobs on 2 real workers, 200 SSE clients and a steady stream of API
reads against one `trad serve`, for about two minutes.

Held: no error response, no stream dropped, every client ends showing exactly the database's
rows, every evaluation recorded; and after warm-up the web process stays within
    RSS growth < 30 MB, threads <= warm-up + 5, open fds <= clients + 50,
    PostgreSQL connections of the web process <= its pool (20) + the SSE listener (1),
    all connections to the test database <= web 21 + 5 per worker + the test's own pool (10).
"""

from __future__ import annotations

import statistics
import threading
import time

import pytest
import requests

from tests.process_stats import proc_stats
from tests.reliability.conftest import finished_row, metric_iterations, web_worker_pid
from tests.reliability.sse_clients import ClientCrowd, database_view, shows
from trad.jobs.control import create_job
from trad.jobs.queue import connect_redis
from trad.jobs.requests import JobRequest

CLIENTS = 200
WARM_UP = 15.0
SOAK = 100.0
SAMPLE_EVERY = 5.0
WEB_POOL, LISTENER, PER_WORKER, TEST_POOL = 20, 1, 5, 10
RSS_GROWTH_KB, EXTRA_THREADS, EXTRA_FDS = 30 * 1024, 5, 50
READS = ["/api/v1/training-jobs", "/api/v1/training-jobs/{id}", "/api/v1/training-jobs/{id}/progress",
         "/api/v1/training-jobs/{id}/metrics", "/api/v1/training-jobs/{id}/logs?page_size=50",
         "/api/v1/health", "/api/v1/training/progress", "/api/v1/training/symbols"]


class SteadyReader(threading.Thread):
    """About ten API reads a second, round robin over the read routes and the jobs."""

    def __init__(self, url: str, job_ids: list[int]) -> None:
        super().__init__(daemon=True)
        self.url, self.job_ids = url, job_ids
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        session, i = requests.Session(), 0
        while not self.halt.is_set():
            path = READS[i % len(READS)].format(id=self.job_ids[i % len(self.job_ids)])
            started = time.monotonic()
            try:
                response = session.get(self.url + path, timeout=10)
                if response.status_code != 200:
                    self.errors.append(f"{path}: {response.status_code} {response.text[:200]}")
            except requests.RequestException as exc:
                self.errors.append(f"{path}: {exc!r}")
            self.latencies.append(time.monotonic() - started)
            i += 1
            self.halt.wait(0.1)


def connections(db) -> dict[str, int]:
    """Sessions on the test database by application name."""
    with db.cursor() as cur:
        cur.execute("""SELECT application_name AS name, count(*) AS n FROM pg_stat_activity
                        WHERE datname = current_database() GROUP BY 1""")
        return {r["name"]: r["n"] for r in cur.fetchall()}


def soak_job(seed: int) -> JobRequest:
    """About a minute here (two of them run at a time on the two workers, so the four last about
    as long as the warm-up and soak): 1,600 random rsi_reversion episodes on 300,000 candles."""
    return JobRequest(strategy="rsi_reversion", symbol="BIG", timeframe="5m", optimizer="random",
                      n_iterations=1600, seed=seed, min_trades=1, validation={"enabled": False})


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_a_soak_holds_its_bounds(start_web, start_worker, db, settings, candles_of, clean_db, record_property):
    candles_of("BIG", 300_000)
    web = start_web()
    pid = web_worker_pid(web)
    redis = connect_redis(settings)
    jobs = [create_job(db, redis, settings, soak_job(seed)) for seed in range(4)]
    workers = [start_worker(), start_worker()]
    crowd = ClientCrowd(web.port, CLIENTS)
    reader = SteadyReader(web.url, [j["id"] for j in jobs])
    samples: list[dict] = []
    try:
        crowd.wait_until(lambda c: c.connected.is_set(), 60, "connected")
        reader.start()
        time.sleep(WARM_UP)
        baseline = {**proc_stats(pid), **{"pg": connections(db)}}
        end = time.monotonic() + SOAK
        while time.monotonic() < end:
            time.sleep(SAMPLE_EVERY)
            samples.append({**proc_stats(pid), "pg": connections(db)})
        for job in jobs:
            finished_row(db, job["id"], 240)
        reader.halt.set()
        reader.join(15)
        final_view = database_view(db)
        crowd.wait_until(lambda c: shows(c, final_view), 30, "the database's rows")
    finally:
        reader.halt.set()
        crowd.stop()

    rss = [s["rss_kb"] for s in samples]
    web_pg = [s["pg"].get("trad-web", 0) + s["pg"].get("trad-sse-listener", 0) for s in samples]
    all_pg = [sum(s["pg"].values()) for s in samples]
    latencies = sorted(reader.latencies)
    p99 = latencies[int(0.99 * len(latencies))]
    record_property("figure", (
        f"soak: {SOAK:.0f} s after {WARM_UP:.0f} s warm-up, {CLIENTS} streams, {len(latencies)} API reads "
        f"(p50 {1000 * statistics.median(latencies):.0f} ms, p99 {1000 * p99:.0f} ms), "
        f"{sum(len(c.versions) for c in crowd.clients)} events delivered; web RSS {baseline['rss_kb'] / 1024:.0f} → "
        f"max {max(rss) / 1024:.0f} MB, threads {baseline['threads']} → max {max(s['threads'] for s in samples)}, "
        f"fds {baseline['fds']} → max {max(s['fds'] for s in samples)}, web PG connections max {max(web_pg)}, "
        f"all PG connections max {max(all_pg)} ({samples[-1]['pg']}); jobs ran "
        + ", ".join(f"{(r['finished_at'] - r['started_at']).total_seconds():.0f} s"
                    for r in (finished_row(db, j["id"], 1) for j in jobs))))

    assert reader.errors == [], reader.errors[:10]
    assert len(latencies) >= SOAK * 5
    for client in crowd.clients:
        assert client.bad_statuses == [] and client.connects == 1 and client.drops == 0
        assert client.jobs == final_view
    for job in jobs:
        final = finished_row(db, job["id"], 1)
        assert final["status"] == "succeeded", [w.output()[-2000:] for w in workers]
        assert metric_iterations(db, job["id"]) == list(range(1, final["total_episodes"] + 1))
    assert max(rss) - baseline["rss_kb"] < RSS_GROWTH_KB
    assert max(s["threads"] for s in samples) <= baseline["threads"] + EXTRA_THREADS
    assert max(s["fds"] for s in samples) <= CLIENTS + EXTRA_FDS
    assert max(web_pg) <= WEB_POOL + LISTENER
    assert max(all_pg) <= WEB_POOL + LISTENER + PER_WORKER * len(workers) + TEST_POOL
