"""Many job streams held open on asyncio sockets: how long each waited for its status line, the
status, and how many bytes it was sent (counted, not kept, so the measuring side stays light)."""

from __future__ import annotations

import asyncio
import resource
import threading
import time

import pytest

from tests.polling import wait_for

STREAM = "/api/v1/training-jobs/stream"


def allow_descriptors(wanted: int) -> None:
    """Lift this process's soft descriptor limit to `wanted` (skip the test when the hard limit is lower)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"the descriptor limit ({hard}) is too low for this many streams")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class HeldStreams:
    """`n` streams opened `wave` at a time (the next wave once the last has its status lines)."""

    def __init__(self, port: int, n: int, wave: int | None = None, path: str = STREAM, headers: str = "") -> None:
        self.port, self.n, self.wave = port, n, wave or n
        self.request = (f"GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{headers}\r\n").encode()
        self.seconds: list[float | None] = [None] * n
        self.statuses: list[str | None] = [None] * n
        self.received = [0] * n
        self._writers: list[asyncio.StreamWriter] = []
        self._answered = [asyncio.Event() for _ in range(n)]
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True)
        self._thread.start()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        tasks = []
        for start in range(0, self.n, self.wave):
            wave = range(start, min(self.n, start + self.wave))
            tasks += [asyncio.create_task(self._one(i)) for i in wave]
            await asyncio.gather(*(self._answered[i].wait() for i in wave))
        await self._stop.wait()
        for writer in self._writers:
            writer.transport.abort()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _one(self, i: int) -> None:
        started = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            self._writers.append(writer)
            writer.write(self.request)
            status = (await reader.readline()).decode().strip()
            self.seconds[i], self.statuses[i] = time.monotonic() - started, status.split(" ")[1]
            self._answered[i].set()
            while data := await reader.read(65536):
                self.received[i] += len(data)
        except (OSError, IndexError) as exc:
            self.statuses[i] = self.statuses[i] or repr(exc)
        finally:
            self._answered[i].set()

    def wait_answered(self, timeout: float) -> None:
        wait_for(lambda: all(s is not None for s in self.statuses), timeout, what=f"{self.n} status lines")

    def wait_quiet(self, quiet: float = 2.0, timeout: float = 60.0) -> int:
        """Wait until nothing has arrived for `quiet` seconds; returns the bytes received in all."""
        total, since, end = sum(self.received), time.monotonic(), time.monotonic() + timeout
        while time.monotonic() - since < quiet and time.monotonic() < end:
            time.sleep(0.2)
            now = sum(self.received)
            if now != total:
                total, since = now, time.monotonic()
        return total

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
