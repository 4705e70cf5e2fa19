"""The per-process listener of job changes, and the subscriptions it feeds.

One LISTEN connection per web process. Each NOTIFY (or, as a safety net, a quiet 5 s) wakes it
to read the log after the last version it saw — one query, whatever the number of clients, at
most CATCH_UP_ROWS rows at a time — serialise each change once, keep it in the process's
`JobHistory`, and hand it to every subscription. A NOTIFY that arrives while it reads is taken
in by psycopg2 with the query's answer, leaving nothing on the socket to wake the listener: it
reads again at once (waiting for the socket, such a change waited for the safety net — in the
SSE benchmark, all of 5,000 streams missed the last of 20 quick updates for over 3 s). After
losing PostgreSQL it reconnects by itself and reads what changed meanwhile; streams keep
starting from what the process holds while the database is away.

A stream subscribes with no query: under one lock it gets its first events from the history
(a snapshot, a replay, or a reset) and joins the fan-out at the version the history has
reached, so nothing committed after its first events is missed and nothing is sent twice.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import logging
import threading
import time
from functools import cache
from typing import Any, Callable

import psycopg2

from trad.api.events import JobEvent, RowText, Subscription, deletion_event, job_event, log_events, reset_event
from trad.api.history import REPLAY_JOBS, JobHistory
from trad.db import close_quietly, connect, readable
from trad.errors import ServiceUnavailable, first_line
from trad.store import job_log

log = logging.getLogger(__name__)

SAFETY_POLL_SECONDS = 5.0
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
CATCH_UP_ROWS = 1000
LOAD_WAIT_SECONDS = 10.0  # a stream waits this long for the history when the process starts
AHEAD_WAIT_SECONDS = 0.3  # a Last-Event-ID above the history's version: wait for the listener (it lags by ms)
NUDGE_SECONDS = 5.0
NUDGE_SLICES = 10
TRIM_AFTER_STREAMS = 200  # streams closed since the last peak before memory is handed back


class Broadcaster:
    """The listener and nudger threads, the history they keep, and the subscriptions they feed.

    The nudger wakes every subscription once per NUDGE_SECONDS, a slice at a time, so idle
    streams check their client and send keepalives without each arming a timer per wait,
    and never all at the same moment. Once TRIM_AFTER_STREAMS streams have closed since the
    most streams it saw, it asks the C allocator to hand its free memory back to the system
    (glibc's `malloc_trim`): measured after 2,000 streams closed on a process of 114 MB, RSS
    stayed at 141 MB without it and fell to 129 MB with it.
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.history = JobHistory()
        self.row_text = RowText()
        self.loaded = threading.Event()
        self.connected = threading.Event()
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._nudger: threading.Thread | None = None
        self._slots = itertools.count()
        self._stopping = threading.Event()
        self._most_streams = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, subscription: Subscription) -> list[JobEvent]:
        """Add a stream to the fan-out; returns what it is sent first (see stream.py): the
        snapshot, the replay after its Last-Event-ID, or a reset — for a job's own stream, the
        job's newest event when the history holds it (else nothing: the caller reads the row)."""
        self.start()
        if not self.loaded.wait(LOAD_WAIT_SECONDS):
            raise ServiceUnavailable("job changes cannot be streamed: PostgreSQL does not answer")
        after = subscription.after_version
        if subscription.job_id is None and after > self.history.version:
            deadline = time.monotonic() + AHEAD_WAIT_SECONDS
            while after > self.history.version and time.monotonic() < deadline:
                time.sleep(0.05)
        with self._lock:
            first = self._first_events(subscription)
            subscription.sent_version = self.history.version
            subscription.nudge_slot = next(self._slots) % NUDGE_SLICES
            self._subscriptions.add(subscription)
        return first

    def _first_events(self, subscription: Subscription) -> list[JobEvent]:
        history, after = self.history, subscription.after_version
        if subscription.job_id is not None:
            newest = history.newest(subscription.job_id)
            return [newest] if newest is not None else []
        if not after:
            return history.snapshot(subscription.shows)
        if after > history.version:
            return [reset_event(history.version, "unknown")]
        replay = history.replay(after, subscription.wants_replayed)
        return replay if replay is not None else [reset_event(history.version, "history")]

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

    def stop(self, wait: float = 0.0) -> None:
        """Stop the listener and nudger threads, waiting up to `wait` s for each to end."""
        self._stopping.set()
        for thread in (self._thread, self._nudger):
            if wait and thread is not None:
                thread.join(wait)

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
            if turn == 0:
                self._give_memory_back_after_a_crowd()

    def _give_memory_back_after_a_crowd(self) -> None:
        streams = len(self._subscriptions)
        self._most_streams = max(self._most_streams, streams)
        trim = malloc_trim()
        if self._most_streams - streams < TRIM_AFTER_STREAMS or trim is None:
            return
        started = time.perf_counter()
        trim(0)
        log.info("%d streams closed: free memory handed back to the system in %.0f ms",
                 self._most_streams - streams, 1000 * (time.perf_counter() - started))
        self._most_streams = streams

    def _pause(self, failures: int, exc: Exception) -> int:
        delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
        log.warning("job listener lost PostgreSQL (%s); reconnecting in %.1f s", first_line(exc), delay)
        self._stopping.wait(delay)
        return failures + 1

    def _listen(self, conn: Any) -> None:
        job_log.listen(conn)
        if not self.loaded.is_set():
            self._load(conn)
        self.connected.set()
        while not self._stopping.is_set():
            conn.notifies.clear()  # what they announce, the catch-up reads
            self._catch_up(conn)  # the first time: whatever changed while we were not listening
            if not conn.notifies and readable(conn, SAFETY_POLL_SECONDS):
                conn.poll()

    def _load(self, conn: Any) -> None:
        """Fill the history from one consistent snapshot of the log (the window's newest changes,
        the unfinished jobs, the pruning floor); versions commit in order, so nothing below the
        version read is still to come."""
        start = job_log.log_start(conn, REPLAY_JOBS + 1)
        self.row_text = RowText(start.float_columns, start.time_columns)
        events = log_events(start.newest, self.row_text)
        floor = events.pop(0).version if len(events) > REPLAY_JOBS else 0
        newest = {e.job_id: e for e in events}
        current = [newest[r["id"]] if r["id"] in newest and newest[r["id"]].version == r["version"]
                   else job_event(r, None, self.row_text) for r in start.unfinished]
        with self._lock:
            self.history.load(events, current, max(floor, start.pruned), start.version)
        self.loaded.set()

    def _catch_up(self, conn: Any) -> None:
        """Read the log after the history's version, a slice at a time, and fan each slice out."""
        while True:
            entries = job_log.changes_after(conn, self.history.version, CATCH_UP_ROWS)
            if not entries:
                return
            events = self._with_states_before(entries)
            with self._lock:
                self.history.apply(events)
                subscriptions = list(self._subscriptions)
            for subscription in subscriptions:
                subscription.offer(events)
            if len(entries) < CATCH_UP_ROWS:
                return

    def _with_states_before(self, entries: list[dict]) -> list[JobEvent]:
        """Log entries as events, each with the job's state before it (a row inserted in its own
        transaction had none: it is `fresh`, its created_at its updated_at)."""
        states: dict[int, Any] = {}
        events = []
        for entry in entries:
            job_id = entry["id"]
            before = states[job_id] if job_id in states else self.history.state_before(job_id)
            if entry["json"] is None:
                events.append(deletion_event(job_id, entry["version"], before))
                states[job_id] = (None, None)
                continue
            if before is None and entry["fresh"]:
                before = (None, None)
            events.append(job_event(entry, before, self.row_text))
            states[job_id] = (entry["status"], entry["batch_id"])
        return events


@cache
def malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
