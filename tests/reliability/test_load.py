"""Two CI-sized soaks against one `trad serve` each.

Training: 4 training jobs on 2 real workers, 200 SSE clients and a steady stream of API reads,
for about two minutes. Held: no error response, no stream dropped, every client ends showing
exactly the database's rows, every evaluation recorded; and after warm-up the web process
stays within
    RSS growth < 30 MB, threads <= warm-up + 5, open fds <= clients + 50,
    PostgreSQL connections of the web process <= its pool (20) + the SSE listener (1),
    all connections to the test database <= web 21 + 5 per worker + the test's own pool (10).

History: 20,000 finished jobs in the database, 8 running jobs writing progress 5 times a second,
200 SSE clients and 50 GETs a second (list pages and single rows) for 60 s. Held: no error
response, no stream dropped, GET p99 <= 100 ms, the pool never exhausted (never all 20
connections in use, no "no free database connection" in the server's log), and every client
ends showing the database's rows of every job it holds, the running ones among them.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import statistics
import threading
import time
from typing import Any

import pytest
import requests

from tests.job_history import add_history
from tests.process_stats import proc_stats
from tests.reliability.conftest import finished_row, metric_iterations, web_worker_pid
from tests.reliability.sse_clients import ClientCrowd, database_view, shows
from trad.jobs.control import create_job
from trad.jobs.queue import connect_redis
from trad.jobs.requests import JobRequest

CLIENTS = 200
WARM_UP = 10.0
SOAK = 50.0
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
            self.read(session, READS[i % len(READS)].format(id=self.job_ids[i % len(self.job_ids)]))
            i += 1
            self.halt.wait(0.1)

    def read(self, session: requests.Session, path: str) -> None:
        """One GET, its latency and any error recorded."""
        started = time.monotonic()
        try:
            response = session.get(self.url + path, timeout=10)
            if response.status_code != 200:
                self.errors.append(f"{path}: {response.status_code} {response.text[:200]}")
        except requests.RequestException as exc:
            self.errors.append(f"{path}: {exc!r}")
        self.latencies.append(time.monotonic() - started)


def connections(db) -> dict[str, int]:
    """Sessions on the test database by application name."""
    with db.cursor() as cur:
        cur.execute("""SELECT application_name AS name, count(*) AS n FROM pg_stat_activity
                        WHERE datname = current_database() GROUP BY 1""")
        return {r["name"]: r["n"] for r in cur.fetchall()}


def soak_job(seed: int) -> JobRequest:
    """Half a minute here (two of them run at a time on the two workers, so the four last about
    as long as the warm-up and soak): 800 random rsi_reversion episodes on 300,000 candles."""
    return JobRequest(strategy="rsi_reversion", symbol="BIG", timeframe="5m", optimizer="random",
                      n_iterations=800, seed=seed, min_trades=1, validation={"enabled": False})


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


HISTORY_JOBS, LIVE_JOBS, CHANGES_PER_SECOND = 20_000, 8, 5
GETS_PER_SECOND, HISTORY_WARM_UP, HISTORY_SOAK, GET_P99_SECONDS = 50, 5.0, 60.0, 0.100
READERS, PAGE_SIZE = 5, 12


class PacedReader(SteadyReader):
    """GETs on a fixed schedule (a slow answer does not thin it out, up to the reader's own wait):
    list pages, some filtered by status, and single rows of any job."""

    def __init__(self, url: str, per_second: float, job_ids: list[int], seed: int) -> None:
        super().__init__(url, job_ids)
        self.every, self.random = 1.0 / per_second, random.Random(seed)

    def path(self) -> str:
        if self.random.random() < 0.5:
            return f"/api/v1/training-jobs/{self.random.choice(self.job_ids)}"
        page = self.random.randint(1, HISTORY_JOBS // PAGE_SIZE)
        status = self.random.choice(["", "", "running", "succeeded"])
        return (f"/api/v1/training-jobs?page={1 if status == 'running' else page}&page_size={PAGE_SIZE}"
                + (f"&status={status}" if status else ""))

    def run(self) -> None:
        session, due = requests.Session(), time.monotonic()
        while not self.halt.is_set():
            self.read(session, self.path())
            due += self.every
            self.halt.wait(max(0.0, due - time.monotonic()))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def keep_jobs_running(db, job_ids: list[int], halt: threading.Event) -> None:
    """Progress writes of running jobs, CHANGES_PER_SECOND commits a second."""
    i = 0
    while not halt.is_set():
        with db.cursor() as cur:
            cur.execute("UPDATE training_jobs SET current_episode = %s, progress = LEAST(99, %s) WHERE id = %s",
                        (i, i / 100, job_ids[i % len(job_ids)]))
        i += 1
        halt.wait(1.0 / CHANGES_PER_SECOND)


def paced_reads(url: str, job_ids: list[int], soak_started: Any, results: Any) -> None:
    """The soak's GETs, in a process of their own: timed in the test's process, they would wait
    for its stream clients' share of the interpreter too. Sends (latencies, errors)."""
    readers = [PacedReader(url, GETS_PER_SECOND / READERS, job_ids, seed) for seed in range(READERS)]
    for reader in readers:
        reader.start()
    time.sleep(HISTORY_WARM_UP)
    for reader in readers:
        reader.latencies.clear()
    soak_started.set()
    time.sleep(HISTORY_SOAK)
    for reader in readers:
        reader.halt.set()
        reader.join(15)
    results.put(([t for r in readers for t in r.latencies], [e for r in readers for e in r.errors]))


@pytest.mark.slow
def test_a_soak_at_20000_jobs_holds_its_bounds(start_web, db, pg_url, clean_db, record_property):
    add_history(pg_url, HISTORY_JOBS)
    with db.cursor() as cur:
        cur.execute("UPDATE training_jobs SET status = 'running', finished_at = NULL WHERE id > %s RETURNING id",
                    (HISTORY_JOBS - LIVE_JOBS,))
        live = [r["id"] for r in cur.fetchall()]
    web = start_web()
    crowd = ClientCrowd(web.port, CLIENTS)
    halt = threading.Event()
    writer = threading.Thread(target=keep_jobs_running, args=(db, live, halt), daemon=True)
    spawn = multiprocessing.get_context("spawn")
    soak_started, results = spawn.Event(), spawn.Queue()
    reads = spawn.Process(target=paced_reads, args=(web.url, list(range(1, HISTORY_JOBS + 1)), soak_started, results))
    web_pg: list[int] = []
    try:
        crowd.wait_until(lambda c: c.connected.is_set(), 60, "connected")
        writer.start()
        reads.start()
        assert soak_started.wait(60), "the readers did not start"
        cpu_before = cpu_seconds(web_worker_pid(web))
        end = time.monotonic() + HISTORY_SOAK
        while time.monotonic() < end:
            time.sleep(1.0)
            web_pg.append(connections(db).get("trad-web", 0))
        web_cpu = cpu_seconds(web_worker_pid(web)) - cpu_before
        latencies, errors = results.get(timeout=60)
        halt.set()
        writer.join(10)
        final_view = database_view(db)
        crowd.wait_until(lambda c: all(c.jobs[i] == final_view[i] for i in live) and
                         all(row == final_view.get(i) for i, row in c.jobs.items()), 30, "the database's rows")
    finally:
        halt.set()
        if reads.pid is not None:
            reads.join(30)
        crowd.stop()

    latencies.sort()
    p99 = latencies[int(0.99 * len(latencies)) - 1]
    with open(web.log_path) as f:
        exhausted = [line for line in f if "no free database connection" in line]
    record_property("figure", f"soak at {HISTORY_JOBS:,} jobs: {HISTORY_SOAK:.0f} s, {CLIENTS} streams, {len(latencies)} GETs "
          f"(p50 {1000 * statistics.median(latencies):.0f} ms, p99 {1000 * p99:.0f} ms, max "
          f"{1000 * latencies[-1]:.0f} ms), {sum(len(c.versions) for c in crowd.clients)} events delivered; "
          f"web PG connections max {max(web_pg)} of {WEB_POOL}; the web process used "
          f"{100 * web_cpu / HISTORY_SOAK:.0f} % of a core")
    assert errors == [], errors[:10]
    assert len(latencies) >= 0.9 * GETS_PER_SECOND * HISTORY_SOAK
    assert p99 <= GET_P99_SECONDS
    assert max(web_pg) < WEB_POOL and exhausted == []
    for client in crowd.clients:
        assert client.bad_statuses == [] and client.connects == 1 and client.drops == 0
