"""Job change events and the subscriptions of the SSE streams.

An event is one change of the job log (migration 004: every change of a job row takes the next
version in commit order, a deletion leaves a tombstone with its own version), serialised and
encoded once however many streams it goes to: `message` is the SSE text as bytes.

A subscription is one stream's view: its filter, how far it has been sent, and at most one
pending event per job (the newest). A client more than BACKLOG_JOBS jobs behind gets one
`reset` event instead of the backlog, as a reconnect from too far back does (see stream.py).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable

from trad.store.jobs import TERMINAL_STATUSES

BACKLOG_JOBS = 1000  # jobs a stream may fall behind before it is sent a reset instead
DIRECT_WRITE_BYTES = 64 * 1024  # larger batches are sent by the stream itself, in pieces
DIRECT_WRITE_EVENTS = 512  # os.writev takes at most IOV_MAX (1024) buffers
RESET_KEY = -1  # the pending slot of a reset (job ids start at 1)
NON_FINITE = ('"NaN"', '"Infinity"', '"-Infinity"')  # how PostgreSQL's row_to_json writes such floats

State = tuple[str | None, int | None]  # (status, batch id) of a job; (None, None) when it did not exist


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One change: a job row (kind "job"), a deletion ("deleted"), or a reset of the stream.

    `before` is the job's (status, batch id) before this change when the process knew it, so a
    filtered stream can tell the change that takes a job out of its filter; None: unknown.
    """

    version: int
    job_id: int
    kind: str
    message: bytes
    status: str | None = None
    batch_id: int | None = None
    before: State | None = None

    @property
    def terminal(self) -> bool:
        return self.kind == "deleted" or self.status in TERMINAL_STATUSES


def sse_message(version: int, kind: str, data: str) -> bytes:
    return f"id: {version}\nevent: {kind}\ndata: {data}\n\n".encode()


class RowText:
    """Turns PostgreSQL's row_to_json text of a job row into the API's JSON: non-finite floats
    null, and the timestamps' microseconds in six digits (PostgreSQL drops trailing zeros:
    `…:51.57943+00:00` where the API writes `…:51.579430+00:00`). Only top-level values are
    touched: row_to_json writes `"column":value`, nested JSONB text always `"key": value`."""

    def __init__(self, float_columns: Iterable[str] = (), time_columns: Iterable[str] = ()) -> None:
        self.float_columns = frozenset(float_columns)
        names = "|".join(sorted(map(re.escape, time_columns))) or "(?!)"
        self._short_fraction = re.compile(rf'("(?:{names})":"[^"]*?\.)(\d{{1,5}})(?=[+-]\d)')

    def __call__(self, text: str) -> str:
        text = self._short_fraction.sub(lambda m: m.group(1) + m.group(2).ljust(6, "0"), text)
        if any(marker in text for marker in NON_FINITE):
            row = json.loads(text)
            for column in self.float_columns:
                if isinstance(row.get(column), str):
                    row[column] = None
            text = json.dumps(row)
        return text


def job_event(row: dict[str, Any], before: State | None = None, text: RowText = RowText()) -> JobEvent:
    """The event of a row as the log reads it (`trad.store.job_log`): its JSON as PostgreSQL wrote
    it, in the API's words (`text`)."""
    version = int(row["version"])
    return JobEvent(version, int(row["id"]), "job", sse_message(version, "job", text(row["json"])), row["status"],
                    row["batch_id"], before)


def deletion_event(job_id: int, version: int, before: State | None = None) -> JobEvent:
    return JobEvent(int(version), int(job_id), "deleted",
                    sse_message(int(version), "deleted", json.dumps({"id": int(job_id)})), before=before)


def reset_event(version: int, reason: str) -> JobEvent:
    """Tells the client to reload by REST and resume from `version` (see stream.py)."""
    return JobEvent(version, RESET_KEY, "reset",
                    sse_message(version, "reset", json.dumps({"version": version, "reason": reason})))


def log_events(entries: Iterable[dict[str, Any]], text: RowText = RowText()) -> list[JobEvent]:
    """Log entries (`trad.store.job_log`, in version order) as events (`before` unknown)."""
    return [job_event(e, None, text) if e["json"] is not None else deletion_event(e["id"], e["version"])
            for e in entries]


def http_chunk(data: bytes) -> bytes:
    """`data` framed as one chunk of a chunked HTTP/1.1 response body."""
    return b"%X\r\n%s\r\n" % (len(data), data)


class Subscription:
    """One client's view: filters, how far it has been sent, and the newest pending event per job.

    Direct delivery: while its stream waits in `take(direct_fd=…)` with nothing pending, the
    listener writes new events straight to the client's socket as one HTTP chunk (one
    non-blocking `writev` of the shared messages, no copy, no wake-up of the stream, no pass
    through the WSGI layers), so fanning a change out to thousands of idle streams costs one
    system call each. A batch over DIRECT_WRITE_BYTES, or a socket that cannot take the whole
    chunk, wakes the stream to write (the rest, `unwritten`, first); when the socket has
    failed, `broken` is set and the stream ends.
    """

    __slots__ = ("job_id", "status", "batch_id", "after_version", "sent_version", "unwritten", "broken",
                 "written_at", "nudge_slot", "_pending", "_lock", "_wake", "_direct_fd")

    def __init__(self, job_id: int | None = None, status: str | None = None,
                 batch_id: int | None = None, after_version: int = 0) -> None:
        self.job_id, self.status, self.batch_id = job_id, status, batch_id
        self.after_version = after_version  # the client's Last-Event-ID (0: a fresh stream)
        self.sent_version = after_version  # nothing at or below it is offered any more
        self.unwritten = b""
        self.broken = False
        self.written_at = 0.0
        self.nudge_slot = 0
        self._pending: dict[int, JobEvent] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._direct_fd: int | None = None

    @property
    def filtered(self) -> bool:
        """Whether the stream shows only some jobs by status or batch."""
        return self.status is not None or self.batch_id is not None

    def _in_filter(self, status: str | None, batch_id: int | None) -> bool:
        return (self.status is None or status == self.status) and (self.batch_id is None or batch_id == self.batch_id)

    def shows(self, event: JobEvent) -> bool:
        """Whether the job, as this event leaves it, belongs in the stream's snapshot."""
        if self.job_id is not None:
            return event.job_id == self.job_id
        return event.kind == "job" and self._in_filter(event.status, event.batch_id)

    def wants_replayed(self, event: JobEvent) -> bool:
        """Whether a replay includes the event: a filtered stream gets every change (it cannot be
        told which jobs the client was shown before), a job's stream only that job's."""
        return self.job_id is None or event.job_id == self.job_id

    def matches(self, event: JobEvent) -> bool:
        """Whether the client wants a live event: it is in the filter, or takes a job out of it
        (its state before was in the filter, or is unknown)."""
        if self.job_id is not None:
            return event.job_id == self.job_id
        if not self.filtered or (event.kind == "job" and self._in_filter(event.status, event.batch_id)):
            return True
        return event.before is None or self._in_filter(*event.before)

    def offer(self, events: Iterable[JobEvent]) -> None:
        """Called by the listener: keep the newest matching event per job; write them to the parked
        client directly, or wake the client. Past BACKLOG_JOBS jobs, a reset replaces the backlog."""
        woken = False
        with self._lock:
            pending = self._pending
            for event in events:
                if event.version <= self.sent_version or not self.matches(event):
                    continue
                current = pending.get(event.job_id)
                if current is None or current.version < event.version:
                    pending[event.job_id] = event
                    woken = True
                    if len(pending) > BACKLOG_JOBS:
                        pending.clear()
                        pending[RESET_KEY] = reset_event(event.version, "backlog")
            if woken and self._direct_fd is not None:
                woken = not self._write_directly(self._direct_fd)
        if woken:
            self._wake.set()

    def wire_parts(self, events: list[JobEvent]) -> list[bytes]:
        """The events as the client reads them, in parts for one `writev`: an HTTP chunk of SSE messages."""
        return [b"%X\r\n" % sum(len(e.message) for e in events), *(e.message for e in events), b"\r\n"]

    def _write_directly(self, fd: int) -> bool:
        """Write the pending events to the parked client's socket; True when no wake-up is needed."""
        events = sorted(self._pending.values(), key=lambda e: e.version)
        if sum(len(e.message) for e in events) > DIRECT_WRITE_BYTES or len(events) > DIRECT_WRITE_EVENTS:
            return False
        parts = self.wire_parts(events)
        try:
            written = os.writev(fd, parts)
        except BlockingIOError:
            return False  # nothing written: the stream sends them the usual way
        except OSError:
            self.broken, self._direct_fd = True, None
            return False
        for event in events:
            self.mark_sent(event)
        self._pending.clear()
        self.written_at = time.monotonic()
        if written < sum(map(len, parts)):
            self.unwritten, self._direct_fd = b"".join(parts)[written:], None
            return False
        return True

    def nudge(self) -> None:
        """Wake the client without an event (so it checks its connection and keepalive)."""
        self._wake.set()

    def take(self, timeout: float | None = None, direct_fd: int | None = None) -> list[JobEvent]:
        """Pending events in version order, waiting for one (or a nudge) up to `timeout` seconds.

        With `direct_fd` (a non-blocking socket that has been sent everything so far, inside a
        chunked HTTP/1.1 response), events arriving during the wait are written to it directly.
        """
        with self._lock:
            if not self._pending and not self.unwritten and not self.broken:
                self._direct_fd = direct_fd
        if self._direct_fd is not None or not self._pending:
            self._wake.wait(timeout)
        with self._lock:
            self._direct_fd = None
            self._wake.clear()
            events = sorted((e for e in self._pending.values() if e.version > self.sent_version),
                            key=lambda e: e.version)
            self._pending = {}
        return events

    def mark_sent(self, event: JobEvent) -> None:
        self.sent_version = max(self.sent_version, event.version)
