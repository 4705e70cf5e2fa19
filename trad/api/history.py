"""What a web process keeps of the job change log, so a stream starts without the database.

The listener reads every change anyway; it keeps, serialised once, the newest event of the
most recently changed jobs (at most REPLAY_JOBS of them and REPLAY_BYTES of messages: the
*window*) and of every unfinished job. Below the window lies the *floor*: every job whose
newest change is above the floor is in the window, so "everything after version V" is
complete for any V ≥ floor. The floor rises as old entries leave the window, and never sits
below the newest pruned tombstone (`trad cleanup`), whose deletion nobody could replay.

From this, under the broadcaster's lock and with no query:
- a fresh stream's snapshot: the unfinished jobs and the SNAPSHOT_RECENT most recently changed
  others that the stream's filter shows, at most SNAPSHOT_LIMIT, in version order;
- a reconnect's replay from V: the newest event of every job changed after V (every one,
  whatever the filter: a filtered client needs the rows that left its filter too, and drops
  what is not its business) — or None when V is below the floor: the caller sends a reset.

Measured at 20,000 jobs of ~3.3 kB rows (load average 2.6): the window holds 1,000 events
(3.3 MB of messages), loaded in 61 ms when the first stream connects; a snapshot costs 9 µs
(0.15 ms for a filter that matches nothing in the window), a replay of 500 jobs 44 µs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Iterable

from trad.api.events import JobEvent

REPLAY_JOBS = 1000
REPLAY_BYTES = 4 << 20
SNAPSHOT_RECENT = 20
SNAPSHOT_LIMIT = 500
UNKNOWN = None  # the state before a change, when the window no longer holds the job


class JobHistory:
    """The window of newest events per job, the unfinished jobs, the floor and the version reached."""

    def __init__(self, max_jobs: int = REPLAY_JOBS, max_bytes: int = REPLAY_BYTES) -> None:
        self.max_jobs, self.max_bytes = max_jobs, max_bytes
        self.version = 0
        self.floor = 0
        self._window: OrderedDict[int, JobEvent] = OrderedDict()  # by job id, in version order
        self._bytes = 0
        self._unfinished: dict[int, JobEvent] = {}

    def load(self, events: Iterable[JobEvent], unfinished: Iterable[JobEvent], floor: int, version: int) -> None:
        """Start from the log's newest events (in version order, all above `floor`) and the unfinished jobs."""
        self.floor = floor
        for event in events:
            self._remember(event)
        for event in unfinished:
            self._unfinished[event.job_id] = self._window.get(event.job_id, event)
        self.version = max(version, self.version, floor)  # the newest change may be a pruned deletion

    def state_before(self, job_id: int) -> tuple[str | None, int | None] | None:
        """(status, batch id) of the job's newest known event; (None, None) after its deletion;
        UNKNOWN when it changed last below the floor."""
        event = self._window.get(job_id) or self._unfinished.get(job_id)
        if event is None:
            return UNKNOWN
        return (event.status, event.batch_id) if event.kind == "job" else (None, None)

    def apply(self, events: Iterable[JobEvent]) -> None:
        """Take newer events (in version order) into the window and the unfinished jobs."""
        for event in events:
            self._remember(event)
            if event.kind == "job" and not event.terminal:
                self._unfinished[event.job_id] = event
            else:
                self._unfinished.pop(event.job_id, None)
            self.version = max(self.version, event.version)

    def _remember(self, event: JobEvent) -> None:
        replaced = self._window.pop(event.job_id, None)
        if replaced is not None:
            self._bytes -= len(replaced.message)
        self._window[event.job_id] = event
        self._bytes += len(event.message)
        while len(self._window) > self.max_jobs or (self._bytes > self.max_bytes and len(self._window) > 1):
            _, oldest = self._window.popitem(last=False)
            self._bytes -= len(oldest.message)
            self.floor = max(self.floor, oldest.version)

    def newest(self, job_id: int) -> JobEvent | None:
        """The job's newest event, if the window or the unfinished jobs hold it."""
        return self._window.get(job_id) or self._unfinished.get(job_id)

    def snapshot(self, shows: Callable[[JobEvent], bool]) -> list[JobEvent]:
        """What a fresh stream starts with: see the module docstring."""
        chosen = {e.job_id: e for e in self._unfinished.values() if shows(e)}
        recent = 0
        for event in reversed(self._window.values()):
            if recent >= SNAPSHOT_RECENT:
                break
            if event.kind == "job" and event.job_id not in chosen and shows(event):
                chosen[event.job_id] = event
                recent += 1
        return sorted(chosen.values(), key=lambda e: e.version)[-SNAPSHOT_LIMIT:]

    def replay(self, after: int, wanted: Callable[[JobEvent], bool]) -> list[JobEvent] | None:
        """The newest event of every job changed after version `after` that `wanted` takes, in
        version order; None when `after` is below the floor (the replay could not be complete)."""
        if after < self.floor:
            return None
        events = []
        for event in reversed(self._window.values()):
            if event.version <= after:
                break
            if wanted(event):
                events.append(event)
        return events[::-1]

    @property
    def window_bytes(self) -> int:
        return self._bytes
