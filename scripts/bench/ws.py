"""The WebSocket feed beside SSE, under the same load: N clients of each on one `trad serve`
process, a burst of row updates, COMMIT → client latency, plain API latency meanwhile, memory
per client, and file descriptors/threads before and after many connect/disconnect cycles —
the SSE figures (scripts/bench/sse.py's clients) printed beside the WebSocket ones.

Usage: python scripts/bench/ws.py [--clients 1000] [--updates 20] [--cycles 10000] [--settle 10]
                                  [--order sse-first|ws-first]
Creates a scratch database (random name), starts `trad serve` on a free port, drops both.
Clients are asyncio sockets in this process (the same 2 cores serve and measure).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import struct
import time

from scratch import ADMIN_URL, scratch_database
from sse import (Server, StreamClient, bench_job, cycle_clients, db_connections, hold_clients, proc_stats, report,
                 settled)

MASK = b"\0\0\0\0"  # a client must mask its frames; the zero mask leaves the payload as it is


class FeedClient(StreamClient):
    """One WebSocket client of the all-jobs feed, recording when each version arrived; it answers
    the server's pings. As bare as the SSE client (whose connecting and closing it shares), so
    the figures time the server."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = b""
        self._open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16))
        transport.write(b"GET /api/v1/training-jobs/ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"  # type: ignore[attr-defined]
                        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n")

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        self._buffer += data
        if not self._open:
            if b"\r\n\r\n" not in self._buffer:
                return
            head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
            status = head.split(b"\r\n", 1)[0].decode()
            if " 101 " not in status:
                self._fail(f"feed refused: {status}")
                self.transport.abort()
                return
            self._open = True
        while len(self._buffer) >= 2:
            size, at = self._buffer[1] & 0x7F, 2
            if size == 126:
                if len(self._buffer) < 4:
                    return
                size, at = struct.unpack_from("!H", self._buffer, 2)[0], 4
            if len(self._buffer) < at + size:
                return
            opcode, payload = self._buffer[0] & 0x0F, self._buffer[at:at + size]
            self._buffer = self._buffer[at + size:]
            if opcode == 0x9:  # ping: answer it, masked
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + MASK + payload)
            elif payload.startswith(b'{"type": "connected"'):
                self.ready.set()
            elif payload.startswith(b'{"type": "job", "version": '):
                self.received[int(payload[27:payload.index(b",", 27)])] = arrived


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[1000])
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after the clients left to read RSS")
    parser.add_argument("--order", choices=["sse-first", "ws-first"], default="sse-first")
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with scratch_database(args.admin_url) as url:
        run(url, args)


def run(url: str, args: argparse.Namespace) -> None:
    job_id = bench_job(url)
    server = Server(url)
    kinds = (("SSE", StreamClient), ("WebSocket", FeedClient))[::1 if args.order == "sse-first" else -1]
    try:
        time.sleep(1)
        baseline = proc_stats(server.worker_pid)
        print(f"web worker at rest: RSS {baseline['rss_kb'] / 1024:.0f} MB, threads {baseline['threads']}, "
              f"fds {baseline['fds']}; load averages {' '.join(open('/proc/loadavg').read().split()[:3])}")
        for n in args.clients:
            for kind, client in kinds:
                before = settled(server.worker_pid)  # memory the last clients left behind is reused: start from it
                print(f"{kind:>9}:", end=" ")
                held = asyncio.run(hold_clients(server, url, job_id, n, args.updates, args.settle, client))
                report(n, held, before, args.settle)
        for kind, client in kinds:
            before = settled(server.worker_pid)
            started = time.monotonic()
            asyncio.run(cycle_clients(server, args.cycles, client=client))
            elapsed = time.monotonic() - started
            after = settled(server.worker_pid)
            print(f"{kind:>9}: {args.cycles:,} connect/disconnect cycles in {elapsed:.0f} s, each side measured "
                  f"once the closed connections were gone: fds {before['fds']} → {after['fds']}, threads "
                  f"{before['threads']} → {after['threads']}, RSS {before['rss_kb'] / 1024:.0f} → "
                  f"{after['rss_kb'] / 1024:.0f} MB")
        print(f"database connections of the web process {db_connections(url)} (at most 5 idle in the pool + the "
              f"listener); load averages {' '.join(open('/proc/loadavg').read().split()[:3])}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
