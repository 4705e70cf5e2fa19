"""An SSE client for the stream tests: reads a stream in a thread, recording every event."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from urllib.parse import urlsplit


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
