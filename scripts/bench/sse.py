"""SSE under load: N clients on one `trad serve` process, a burst of row updates, latency from
COMMIT to each client's receipt, plain API latency meanwhile, memory per client, and file
descriptors/threads before and after many connect/disconnect cycles.

Usage: python scripts/bench/sse.py [--clients 1000 5000] [--updates 20] [--cycles 10000]
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


async def hold_clients(server: Server, database_url: str, job_id: int, n: int, updates: int) -> dict:
    clients = [StreamClient() for _ in range(n)]
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
    return {"errors": errors, "held": held, "api": api, "latencies": latencies, "coalesced": coalesced,
            "final_missing": final_missing}


async def cycle_clients(server: Server, cycles: int, wave: int = 100) -> None:
    """Connect, wait for the first bytes, drop — `cycles` times, `wave` at a time."""
    for start in range(0, cycles, wave):
        clients = [StreamClient() for _ in range(min(wave, cycles - start))]
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


def report(n: int, result: dict, baseline: dict) -> None:
    lat = [x * 1000 for x in result["latencies"]]
    api = [x * 1000 for x in result["api"]]
    per_client = (result["held"]["rss_kb"] - baseline["rss_kb"]) / n
    print(f"{n:>6} clients: connect errors {result['errors']}, newest row missing {result['final_missing']}, "
          f"intermediate versions coalesced {result['coalesced']}, "
          f"COMMIT→client p50 {percentile(lat, 0.5):.1f} ms p99 {percentile(lat, 0.99):.1f} ms "
          f"max {max(lat) if lat else float('nan'):.1f} ms; GET job p50 {percentile(api, 0.5):.1f} ms "
          f"p99 {percentile(api, 0.99):.1f} ms; RSS +{per_client:.1f} kB/client "
          f"({result['held']['rss_kb'] / 1024:.0f} MB), threads {result['held']['threads']}, "
          f"fds {result['held']['fds']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with scratch_database(args.admin_url) as url:
        run(url, args)


def run(url: str, args: argparse.Namespace) -> None:
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO training_jobs (job_name, strategy, symbol, timeframe, optimizer) "
                    "VALUES ('bench', 'sma_crossover', 'BENCH', '5m', 'grid') RETURNING id")
        job_id = cur.fetchone()[0]
    conn.commit()
    conn.close()
    server = Server(url)
    try:
        time.sleep(1)
        baseline = proc_stats(server.worker_pid)
        print(f"web worker at rest: RSS {baseline['rss_kb'] / 1024:.0f} MB, threads {baseline['threads']}, "
              f"fds {baseline['fds']}; load {open('/proc/loadavg').read().split()[0]}")
        for n in args.clients:
            report(n, asyncio.run(hold_clients(server, url, job_id, n, args.updates)), baseline)
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
