"""SSE under load: N clients on one `trad serve` process, a burst of row updates, latency from
COMMIT to each client's receipt, plain API latency meanwhile, memory per client and after the
clients left, and file descriptors/threads before and after many connect/disconnect cycles.
With `--jobs N`, the database first gets a history of N finished jobs (~3.3 kB rows), and the
cost of history is measured: a burst of connects (time to the status line, bytes each), and a
reconnect with `Last-Event-ID: 1`.

Usage: python scripts/bench/sse.py [--clients 1000 5000] [--updates 20] [--cycles 10000]
                                   [--jobs 20000] [--burst 1000] [--settle 60]
Creates a scratch database (random name), starts `trad serve` on a free port, drops both.
Clients are asyncio sockets in this process (the same 2 cores serve and measure).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid

import psycopg2

from scratch import ADMIN_URL, scratch_database

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.job_history import add_history  # noqa: E402
from tests.process_stats import proc_stats  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settled(pid: int, quiet: float = 3.0, limit: float = 30.0) -> dict[str, int]:
    """The process's stats once its descriptor count has stopped changing for `quiet` seconds
    (closed streams are noticed within the server's 5 s client check)."""
    stats, since, deadline = proc_stats(pid), time.monotonic(), time.monotonic() + limit
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.5)
        now = proc_stats(pid)
        if now["fds"] != stats["fds"]:
            since = time.monotonic()
        stats = now
    return stats


class Server:
    """`trad serve` in a subprocess; `worker_pid` is its single gevent worker."""

    def __init__(self, database_url: str) -> None:
        self.port = free_port()
        env = {**os.environ, "TRAD_DATABASE_URL": database_url, "PORT": str(self.port),
               "TRAD_QUEUE": f"bench-{uuid.uuid4().hex[:6]}"}
        self.process = subprocess.Popen([sys.executable, "-m", "trad", "serve"], env=env, cwd=ROOT,
                                        stdout=open("/tmp/trad-bench-web.log", "w"), stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status = asyncio.run(http_get(self.port, "/api/v1/health"))[0]
                if status:
                    break
            except OSError:
                time.sleep(0.2)
        children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True)
        self.worker_pid = int(children.stdout.split()[0])

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


async def http_get(port: int, path: str) -> tuple[int, float]:
    """Status and seconds of one plain GET."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    return int(status_line.split()[1]), time.perf_counter() - started


class StreamClient(asyncio.Protocol):
    """One EventSource-like client recording when each event id arrived.

    A bare protocol (no StreamReader, no line splitting): the measuring side must cost far
    less per event than the server, or the figures time the client."""

    def __init__(self) -> None:
        self.received: dict[int, float] = {}
        self.ready = asyncio.Event()
        self.closed = asyncio.Event()
        self.error: str | None = None
        self.transport: asyncio.Transport | None = None
        self._head = b""
        self._tail = b""
        self._streaming = False

    async def run(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: self, "127.0.0.1", port)
        except OSError as exc:
            self._fail(repr(exc))
            return
        await self.closed.wait()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(b"GET /api/v1/training-jobs/stream HTTP/1.1\r\nHost: bench\r\n"  # type: ignore[attr-defined]
                        b"Accept: text/event-stream\r\n\r\n")

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        if not self._streaming:
            self._head += data
            if b"\r\n\r\n" not in self._head:
                return
            status = self._head.split(b"\r\n", 1)[0]
            if b" 200 " not in status:
                self._fail(f"stream refused: {status.decode()}")
                self.transport.abort()
                return
            self._streaming = True
            data = self._head.split(b"\r\n\r\n", 1)[1]
        text = self._tail + data
        if not self.ready.is_set() and b"retry:" in text:
            self.ready.set()
        done = 0
        at = text.find(b"\nid: ")
        while at >= 0:
            end = text.find(b"\n", at + 5)
            if end < 0:
                break
            self.received[int(text[at + 5:end])] = arrived
            done = end
            at = text.find(b"\nid: ", end)
        self._tail = text[max(done, len(text) - 32):]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.is_set():
            self._fail(repr(exc) if exc else "closed before the stream began")
        self.closed.set()

    def _fail(self, message: str) -> None:
        self.error = message
        self.ready.set()
        self.closed.set()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def update_burst(database_url: str, job_id: int, updates: int, spacing: float) -> dict[int, float]:
    """Commit `updates` changes of one row; returns {version: commit time}."""
    conn = psycopg2.connect(database_url)
    committed = {}
    with conn.cursor() as cur:
        for i in range(updates):
            cur.execute("UPDATE training_jobs SET current_episode = %s WHERE id = %s RETURNING version", (i, job_id))
            version = cur.fetchone()[0]
            conn.commit()
            committed[version] = time.time()
            time.sleep(spacing)
    conn.close()
    return committed


async def open_stream(port: int, headers: str = "") -> tuple[str, float, asyncio.StreamReader, asyncio.StreamWriter]:
    """A job stream's status line, the seconds it took, and the open connection."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /api/v1/training-jobs/stream HTTP/1.1\r\nHost: bench\r\n"
                 f"Accept: text/event-stream\r\n{headers}\r\n".encode())
    await writer.drain()
    status = (await reader.readline()).decode().strip()
    return status, time.perf_counter() - started, reader, writer


async def read_until_quiet(reader: asyncio.StreamReader, quiet: float, limit: float) -> bytes:
    """What the server sends until it has been silent for `quiet` seconds (at most `limit` seconds)."""
    received, end = [], time.monotonic() + limit
    while time.monotonic() < end:
        try:
            data = await asyncio.wait_for(reader.read(1 << 20), quiet)
        except asyncio.TimeoutError:
            break
        if not data:
            break
        received.append(data)
    return b"".join(received)


async def connect_burst(port: int, n: int) -> dict:
    """`n` streams opened at once: status lines, seconds to each, and the bytes each was sent first."""
    async def one() -> tuple[str, float, int]:
        try:
            status, seconds, reader, writer = await open_stream(port)
        except OSError as exc:
            return repr(exc), float("inf"), 0
        body = await read_until_quiet(reader, 1.0, 30.0)
        writer.transport.abort()
        return status, seconds, len(body)

    results = await asyncio.gather(*(one() for _ in range(n)))
    return {"refused": sum(1 for status, _, _ in results if " 200 " not in f"{status} "),
            "seconds": [seconds for _, seconds, _ in results],
            "bytes": [size for _, _, size in results]}


async def replay_from(port: int, version: int) -> dict:
    """A reconnect with `Last-Event-ID: version`: what it is sent and how long that takes."""
    started = time.perf_counter()
    status, _, reader, writer = await open_stream(port, f"Last-Event-ID: {version}\r\n")
    body = await read_until_quiet(reader, 2.0, 120.0)
    writer.transport.abort()
    return {"status": status, "bytes": len(body), "jobs": body.count(b"event: job\n"),
            "reset": b"event: reset\n" in body, "seconds": time.perf_counter() - started - 2.0}


def report_history(jobs: int, burst: dict, replay: dict) -> None:
    seconds = [x * 1000 for x in burst["seconds"]]
    print(f"history of {jobs:,} jobs: {len(seconds)} connects at once: {burst['refused']} refused, "
          f"status line p50 {percentile(seconds, 0.5):.0f} ms p99 {percentile(seconds, 0.99):.0f} ms "
          f"max {max(seconds):.0f} ms, first bytes per stream median {percentile(burst['bytes'], 0.5) / 1024:.0f} kB "
          f"max {max(burst['bytes']) / 1024:.0f} kB; reconnect with Last-Event-ID 1: {replay['status']}, "
          f"{'a reset, ' if replay['reset'] else ''}{replay['jobs']:,} rows, {replay['bytes'] / 1024:,.0f} kB "
          f"in {replay['seconds']:.2f} s")


async def hold_clients(server: Server, database_url: str, job_id: int, n: int, updates: int,
                       settle: float, client: type = StreamClient) -> dict:
    clients = [client() for _ in range(n)]
    tasks = []
    for start in range(0, n, 200):  # connect in waves, as a page full of tabs would
        tasks += [asyncio.create_task(c.run(server.port)) for c in clients[start:start + 200]]
        await asyncio.gather(*(c.ready.wait() for c in clients[start:start + 200]))
    errors = sum(1 for c in clients if c.error)
    held = proc_stats(server.worker_pid)
    api = []
    for _ in range(100):
        status, seconds = await http_get(server.port, f"/api/v1/training-jobs/{job_id}")
        api.append(seconds if status == 200 else float("inf"))
    committed = await asyncio.to_thread(update_burst, database_url, job_id, updates, 0.05)
    await asyncio.sleep(3)
    latencies = [c.received[v] - t for c in clients for v, t in committed.items() if v in c.received]
    coalesced = n * len(committed) - len(latencies)
    final = max(committed)
    final_missing = sum(1 for c in clients if final not in c.received)
    for c in clients:
        c.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(settle)
    return {"errors": errors, "held": held, "api": api, "latencies": latencies, "coalesced": coalesced,
            "final_missing": final_missing, "after": proc_stats(server.worker_pid)}


async def cycle_clients(server: Server, cycles: int, wave: int = 100, client: type = StreamClient) -> None:
    """Connect, wait for the first bytes, drop — `cycles` times, `wave` at a time."""
    for start in range(0, cycles, wave):
        clients = [client() for _ in range(min(wave, cycles - start))]
        tasks = [asyncio.create_task(c.run(server.port)) for c in clients]
        await asyncio.gather(*(c.ready.wait() for c in clients))
        for c in clients:
            c.close()
        await asyncio.gather(*tasks, return_exceptions=True)


def db_connections(url: str) -> int:
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'trad-%%'")
        count = cur.fetchone()[0]
    conn.close()
    return count


def report(n: int, result: dict, baseline: dict, settle: float) -> None:
    lat = [x * 1000 for x in result["latencies"]]
    api = [x * 1000 for x in result["api"]]
    per_client = (result["held"]["rss_kb"] - baseline["rss_kb"]) / n
    print(f"{n:>6} clients: connect errors {result['errors']}, newest row missing {result['final_missing']}, "
          f"intermediate versions coalesced {result['coalesced']}, "
          f"COMMIT→client p50 {percentile(lat, 0.5):.1f} ms p99 {percentile(lat, 0.99):.1f} ms "
          f"max {max(lat) if lat else float('nan'):.1f} ms; GET job p50 {percentile(api, 0.5):.1f} ms "
          f"p99 {percentile(api, 0.99):.1f} ms; RSS +{per_client:.1f} kB/client "
          f"({result['held']['rss_kb'] / 1024:.0f} MB), threads {result['held']['threads']}, "
          f"fds {result['held']['fds']}; {settle:.0f} s after they left: RSS {result['after']['rss_kb'] / 1024:.0f} MB "
          f"(at rest {baseline['rss_kb'] / 1024:.0f} MB), fds {result['after']['fds']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=0, help="finished jobs in the history (default none)")
    parser.add_argument("--burst", type=int, default=1000, help="streams opened at once on the history")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds after the clients left to read RSS")
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with scratch_database(args.admin_url) as url:
        run(url, args)


def bench_job(url: str) -> int:
    """Insert the job whose row the bursts update; returns its id."""
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO training_jobs (job_name, strategy, symbol, timeframe, optimizer) "
                    "VALUES ('bench', 'sma_crossover', 'BENCH', '5m', 'grid') RETURNING id")
        job_id = cur.fetchone()[0]
    conn.commit()
    conn.close()
    return job_id


def run(url: str, args: argparse.Namespace) -> None:
    add_history(url, args.jobs)
    job_id = bench_job(url)
    server = Server(url)
    try:
        time.sleep(1)
        baseline = proc_stats(server.worker_pid)
        print(f"web worker at rest: RSS {baseline['rss_kb'] / 1024:.0f} MB, threads {baseline['threads']}, "
              f"fds {baseline['fds']}; load {open('/proc/loadavg').read().split()[0]}")
        for n in args.clients:
            report(n, asyncio.run(hold_clients(server, url, job_id, n, args.updates, args.settle)), baseline,
                   args.settle)
        if args.jobs:
            report_history(args.jobs, asyncio.run(connect_burst(server.port, args.burst)),
                           asyncio.run(replay_from(server.port, 1)))
        before = settled(server.worker_pid)
        started = time.monotonic()
        asyncio.run(cycle_clients(server, args.cycles))
        elapsed = time.monotonic() - started
        after = settled(server.worker_pid)
        print(f"{args.cycles:,} connect/disconnect cycles in {elapsed:.0f} s, each side measured once "
              f"the closed streams were gone: fds {before['fds']} → {after['fds']}, threads "
              f"{before['threads']} → {after['threads']}, RSS {before['rss_kb'] / 1024:.0f} → "
              f"{after['rss_kb'] / 1024:.0f} MB; database connections of the web process "
              f"{db_connections(url)} (at most 5 idle in the pool + the listener)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
