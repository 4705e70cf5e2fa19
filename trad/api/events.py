"""Job change events for the SSE streams: one listener per web process, fanned out to clients.

Every change of a `training_jobs` row takes the next `version` in commit order (migration
004), and a deletion leaves a tombstone with its own version. So the changes form a log
ordered by version, and "everything after version V" is a complete answer. The listener
holds one LISTEN connection; each NOTIFY (or, as a safety net, a quiet few seconds) wakes
it to read the log after the last version it saw — one query, whatever the number of
clients — and hand the events to every subscription. After losing PostgreSQL it
reconnects by itself and reads what changed meanwhile.

A subscription keeps at most one pending event per job (the newest): a slow client gets
the latest state of each job, never an unbounded queue.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable

import psycopg2

from trad.db import close_quietly, connect, readable
from trad.store import json_safe
from trad.store.jobs import TERMINAL_STATUSES

log = logging.getLogger(__name__)

CHANNEL = "training_jobs"
SAFETY_POLL_SECONDS = 5.0
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
SNAPSHOT_LIMIT = 1000
NUDGE_SECONDS = 5.0
NUDGE_SLICES = 10


@dataclass(frozen=True)
class JobEvent:
    """One change: the row as JSON (kind "job") or a deletion (kind "deleted")."""

    version: int
    job_id: int
    kind: str
    data: str
    status: str | None = None
    batch_id: int | None = None

    @property
    def terminal(self) -> bool:
        return self.kind == "deleted" or self.status in TERMINAL_STATUSES

    def to_sse(self) -> str:
        return f"id: {self.version}\nevent: {self.kind}\ndata: {self.data}\n\n"

    @cached_property
    def encoded(self) -> bytes:
        """The SSE message as bytes, encoded once however many clients it goes to."""
        return self.to_sse().encode()

    @cached_property
    def chunk(self) -> bytes:
        """The message as one HTTP/1.1 chunk, framed once for every directly written client."""
        return http_chunk(self.encoded)


def http_chunk(data: bytes) -> bytes:
    """`data` framed as one chunk of a chunked HTTP/1.1 response body."""
    return b"%X\r\n%s\r\n" % (len(data), data)


def job_event(row: dict[str, Any]) -> JobEvent:
    """The event of a job row (serialised once, shared by every client)."""
    return JobEvent(int(row["version"]), int(row["id"]), "job", json.dumps(json_safe(row)),
                    row.get("status"), row.get("batch_id"))


def deletion_event(job_id: int, version: int) -> JobEvent:
    return JobEvent(int(version), int(job_id), "deleted", json.dumps({"id": int(job_id)}))


def read_changes(conn: Any, after_version: int, job_id: int | None = None,
                 status: str | None = None, batch_id: int | None = None,
                 limit: int | None = None) -> list[JobEvent]:
    """Job rows and deletions with a version above `after_version`, in version order."""
    conditions, params = ["version > %s"], [after_version]
    for column, value in (("id", job_id), ("status", status), ("batch_id", batch_id)):
        if value is not None:
            conditions.append(f"{column} = %s")
            params.append(value)
    query = f"SELECT * FROM training_jobs WHERE {' AND '.join(conditions)} ORDER BY version"
    if limit is not None:
        query = f"SELECT * FROM ({query} DESC LIMIT %s) newest ORDER BY version"
        params.append(limit)
    with conn.cursor() as cur:
        cur.execute(query, params)
        events = [job_event(dict(row)) for row in cur.fetchall()]
        if limit is None:  # a replay: deletions matter too
            cur.execute("SELECT job_id, version FROM training_job_deletions WHERE version > %s"
                        + (" AND job_id = %s" if job_id is not None else "") + " ORDER BY version",
                        [after_version] + ([job_id] if job_id is not None else []))
            events += [deletion_event(r["job_id"], r["version"]) for r in cur.fetchall()]
    return sorted(events, key=lambda e: e.version)


class Subscription:
    """One client's view: filters, what it has been sent, and the newest pending event per job.

    Direct delivery: while its stream waits in `take(direct_fd=…)` with nothing pending, the
    listener writes new events straight to the client's socket as ready-framed HTTP chunks
    (one non-blocking write, no wake-up of the stream, no pass through the WSGI layers), so
    fanning a change out to thousands of idle streams costs one system call each. When the
    socket cannot take the whole chunk, the stream is woken to write the rest (`unwritten`)
    before anything else; when the socket has failed, `broken` is set and the stream ends.
    """

    def __init__(self, job_id: int | None = None, status: str | None = None,
                 batch_id: int | None = None, after_version: int = 0) -> None:
        self.job_id, self.status, self.batch_id = job_id, status, batch_id
        self.sent_version = after_version
        self.unwritten = b""
        self.broken = False
        self.written_at = 0.0
        self._known_jobs: set[int] = set()
        self._pending: dict[int, JobEvent] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._direct_fd: int | None = None
        self.nudge_slot = 0

    def matches(self, event: JobEvent) -> bool:
        """Whether the client wants the event (a job it was shown that leaves the filter: yes)."""
        if self.job_id is not None:
            return event.job_id == self.job_id
        if event.job_id in self._known_jobs:
            return True
        if event.kind == "deleted":
            return False
        return ((self.status is None or event.status == self.status)
                and (self.batch_id is None or event.batch_id == self.batch_id))

    def offer(self, events: Iterable[JobEvent]) -> None:
        """Called by the listener: keep the newest matching event per job; write it to the parked
        client directly, or wake the client."""
        woken = False
        with self._lock:
            for event in events:
                if event.version <= self.sent_version or not self.matches(event):
                    continue
                current = self._pending.get(event.job_id)
                if current is None or current.version < event.version:
                    self._pending[event.job_id] = event
                    woken = True
            if woken and self._direct_fd is not None:
                woken = not self._write_directly(self._direct_fd)
        if woken:
            self._wake.set()

    def _write_directly(self, fd: int) -> bool:
        """Write the pending events to the parked client's socket; True when no wake-up is needed."""
        events = sorted(self._pending.values(), key=lambda e: e.version)
        frame = events[0].chunk if len(events) == 1 else http_chunk(b"".join(e.encoded for e in events))
        try:
            written = os.write(fd, frame)
        except BlockingIOError:
            return False  # nothing written: the stream sends them the usual way
        except OSError:
            self.broken, self._direct_fd = True, None
            return False
        for event in events:
            self.mark_sent(event)
        self._pending.clear()
        self.written_at = time.monotonic()
        if written < len(frame):
            self.unwritten, self._direct_fd = frame[written:], None
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
            self._pending.clear()
        return events

    def mark_sent(self, event: JobEvent) -> None:
        self.sent_version = max(self.sent_version, event.version)
        if event.kind == "job":
            self._known_jobs.add(event.job_id)
        else:
            self._known_jobs.discard(event.job_id)


class Broadcaster:
    """The per-process listener thread and the set of subscriptions it feeds.

    A second thread nudges every subscription once per NUDGE_SECONDS, a slice at a time,
    so idle streams check their client and send keepalives without each arming a timer
    per wait, and never all at the same moment.
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.last_version = 0
        self.connected = threading.Event()
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._nudger: threading.Thread | None = None
        self._slots = itertools.count()
        self._stopping = threading.Event()

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, subscription: Subscription) -> None:
        self.start()
        with self._lock:
            subscription.nudge_slot = next(self._slots) % NUDGE_SLICES
            self._subscriptions.add(subscription)

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def start(self) -> None:
        """Start the listener and nudger threads once (lazily, at the first subscriber)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="trad-job-listener", daemon=True)
                self._thread.start()
            if self._nudger is None or not self._nudger.is_alive():
                self._nudger = threading.Thread(target=self._nudge, name="trad-stream-nudger", daemon=True)
                self._nudger.start()

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                conn = connect(self.database_url, autocommit=True, application_name="trad-sse-listener")
            except psycopg2.Error as exc:
                failures = self._pause(failures, exc)
                continue
            try:
                failures = 0
                self._listen(conn)
            except (psycopg2.Error, OSError, ValueError) as exc:
                failures = self._pause(failures, exc)
            finally:
                self.connected.clear()
                close_quietly(conn)

    def _nudge(self) -> None:
        turn = 0
        while not self._stopping.wait(NUDGE_SECONDS / NUDGE_SLICES):
            with self._lock:
                subscriptions = [s for s in self._subscriptions if s.nudge_slot == turn]
            for subscription in subscriptions:
                subscription.nudge()
            turn = (turn + 1) % NUDGE_SLICES

    def _pause(self, failures: int, exc: Exception) -> int:
        delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
        log.warning("job listener lost PostgreSQL (%s); reconnecting in %.1f s",
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, delay)
        self._stopping.wait(delay)
        return failures + 1

    def _listen(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute(f"LISTEN {CHANNEL}")
            if self.last_version == 0:
                cur.execute("SELECT GREATEST(COALESCE((SELECT max(version) FROM training_jobs), 0), "
                            "COALESCE((SELECT max(version) FROM training_job_deletions), 0)) AS v")
                self.last_version = int(cur.fetchone()["v"])
        self.connected.set()
        self._catch_up(conn)  # whatever changed while we were not listening
        while not self._stopping.is_set():
            if readable(conn, SAFETY_POLL_SECONDS):
                conn.poll()
                conn.notifies.clear()
            self._catch_up(conn)

    def _catch_up(self, conn: Any) -> None:
        events = read_changes(conn, self.last_version)
        if not events:
            return
        self.last_version = events[-1].version
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.offer(events)
