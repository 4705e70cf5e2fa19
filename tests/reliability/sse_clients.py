"""Many EventSource-like clients on asyncio sockets: they reconnect with Last-Event-ID as a browser
does, and keep each job's newest row, so a test can compare what a client shows with the database."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from trad.store import json_safe

STREAM = "/api/v1/training-jobs/stream"


class StreamClient:
    """One client of the job stream: its view of the jobs and every event id it was sent."""

    def __init__(self, port: int, path: str = STREAM, reconnect_delay: float = 0.3, headers: str = "") -> None:
        self.port, self.path, self.reconnect_delay, self.headers = port, path, reconnect_delay, headers
        self.jobs: dict[int, dict] = {}
        self.deleted: list[int] = []
        self.versions: list[int] = []
        self.last_event_id = 0
        self.connects = 0  # streams opened with a 200
        self.refused = 0  # connection attempts the server did not accept (down)
        self.bad_statuses: list[str] = []  # answers other than 200
        self.drops = 0  # streams that ended under the client
        self.connected = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Stay subscribed until `stop` is set, reconnecting after every drop."""
        while not stop.is_set():
            try:
                await self._one_stream(stop)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                pass
            if stop.is_set():
                return
            self.connected.clear()
            try:
                await asyncio.wait_for(stop.wait(), self.reconnect_delay)
            except asyncio.TimeoutError:
                pass

    async def _one_stream(self, stop: asyncio.Event) -> None:
        try:
            reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            self.refused += 1
            raise
        resume = f"Last-Event-ID: {self.last_event_id}\r\n" if self.last_event_id else ""
        self._writer.write(f"GET {self.path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n"
                           f"{resume}{self.headers}\r\n".encode())
        await self._writer.drain()
        status = (await reader.readline()).decode().strip()
        headers = {}
        while (line := (await reader.readline()).decode().strip()):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if " 200 " not in f"{status} ":
            self.bad_statuses.append(status)
            raise ValueError(status)
        self.connects += 1
        self.connected.set()
        try:
            await self._read_events(reader, headers.get("transfer-encoding") == "chunked")
        finally:
            if not stop.is_set():
                self.drops += 1
            self.close()

    async def _read_events(self, reader: asyncio.StreamReader, chunked: bool) -> None:
        buffer, event = b"", {}
        while True:
            if chunked:
                size = int((await reader.readline()).strip() or b"0", 16)
                if size == 0:
                    return
                data = await reader.readexactly(size)
                await reader.readline()
            else:
                data = await reader.read(65536)
                if not data:
                    return
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                line = raw.rstrip(b"\r").decode()
                if line:
                    field, _, value = line.partition(": ")
                    event[field] = value
                else:
                    self._dispatch(event)
                    event = {}

    def _dispatch(self, event: dict[str, str]) -> None:
        if "data" not in event:
            return
        if "id" in event:
            self.last_event_id = int(event["id"])
            self.versions.append(self.last_event_id)
        data = json.loads(event["data"])
        if event.get("event") == "deleted":
            self.jobs.pop(data["id"], None)
            self.deleted.append(data["id"])
        else:
            self.jobs[data["id"]] = data

    def close(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
            self._writer = None


class ClientCrowd:
    """N stream clients on an event loop in a background thread."""

    def __init__(self, port: int, n: int, **client_options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.clients = [StreamClient(port, **client_options) for _ in range(n)]
        self._stop: asyncio.Event | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            tasks = []
            for start in range(0, len(self.clients), 50):  # connect in waves, as tabs opening would
                tasks += [asyncio.create_task(c.run(self._stop)) for c in self.clients[start:start + 50]]
                await asyncio.sleep(0.05)
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.loop.run_until_complete(main())
        finally:
            self._done.set()

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        for client in self.clients:
            self.loop.call_soon_threadsafe(client.close)
        self._done.wait(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def all_connected(self) -> bool:
        return all(c.connected.is_set() for c in self.clients)

    def wait_until(self, predicate, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(predicate(c) for c in self.clients):
                return
            time.sleep(0.1)
        failing = [c for c in self.clients if not predicate(c)]
        raise AssertionError(f"{what}: {len(failing)} of {len(self.clients)} clients not there within {timeout} s")


def database_view(db) -> dict[int, dict]:
    """Every job row as a stream sends it (the same JSON conversion)."""
    with db.cursor() as cur:
        cur.execute("SELECT * FROM training_jobs")
        return {r["id"]: json.loads(json.dumps(json_safe(dict(r)))) for r in cur.fetchall()}


def shows(client: StreamClient, view: dict[int, dict]) -> bool:
    """The client's jobs are exactly the database's rows."""
    return client.jobs == view
