"""Subscriptions: filters, coalescing, version order, the backlog bound, direct writes."""

import socket
import threading
import time

from trad.api.events import BACKLOG_JOBS, JobEvent, Subscription, deletion_event, http_chunk, sse_message


def event(version: int, job_id: int, status: str = "running", batch_id=None, before=None) -> JobEvent:
    return JobEvent(version, job_id, "job", sse_message(version, "job", f'{{"id": {job_id}, "version": {version}}}'),
                    status, batch_id, before)


def test_a_slow_client_gets_the_newest_row_per_job_in_version_order():
    sub = Subscription()
    sub.offer([event(v, job_id=1 + v % 3) for v in range(1, 301)])  # 300 changes of 3 jobs
    taken = sub.take(timeout=0)
    assert [(e.job_id, e.version) for e in taken] == [(2, 298), (3, 299), (1, 300)]


def test_nothing_at_or_below_what_was_sent():
    sub = Subscription(after_version=50)
    sub.offer([event(40, 1), event(50, 2), event(51, 3)])
    assert [e.version for e in sub.take(timeout=0)] == [51]


def test_job_filter_and_deletions():
    sub = Subscription(job_id=7)
    sub.offer([event(1, 6), event(2, 7), deletion_event(7, 3)])
    taken = sub.take(timeout=0)
    assert [(e.kind, e.job_id) for e in taken] == [("deleted", 7)]  # coalesced: the deletion is newest


def test_status_filter_tells_about_jobs_that_leave_it():
    sub = Subscription(status="running")
    sub.offer([event(1, 1, "running", before=(None, None)), event(2, 2, "queued", before=(None, None))])
    assert [e.job_id for e in sub.take(timeout=0)] == [1]
    sub.offer([event(3, 1, "succeeded", before=("running", None)),  # leaves the filter: sent
               event(4, 2, "stopped", before=("queued", None)),  # never was in it: not sent
               deletion_event(9, 5, before=("succeeded", None)),
               deletion_event(8, 6, before=("running", None))])  # deleted while in the filter: sent
    assert [(e.kind, e.job_id, e.status) for e in sub.take(timeout=0)] == [("job", 1, "succeeded"), ("deleted", 8, None)]


def test_a_change_whose_state_before_is_unknown_reaches_every_filtered_stream():
    running, batch = Subscription(status="running"), Subscription(batch_id=3)
    for sub in (running, batch):
        sub.offer([event(7, 1, "succeeded", batch_id=3, before=None), deletion_event(2, 8, before=None)])
    assert [e.version for e in running.take(timeout=0)] == [7, 8]
    assert [e.version for e in batch.take(timeout=0)] == [7, 8]


def test_a_client_too_far_behind_gets_one_reset_then_what_follows():
    sub = Subscription()
    sub.offer([event(v, v) for v in range(1, BACKLOG_JOBS + 3)])  # BACKLOG_JOBS + 2 jobs, nothing taken
    sub.offer([event(BACKLOG_JOBS + 5, 1)])
    taken = sub.take(timeout=0)
    assert [(e.kind, e.version) for e in taken] == [("reset", BACKLOG_JOBS + 1), ("job", BACKLOG_JOBS + 2),
                                                    ("job", BACKLOG_JOBS + 5)]
    assert b'"reason": "backlog"' in taken[0].message


def test_batch_filter():
    sub = Subscription(batch_id=3)
    sub.offer([event(1, 1, batch_id=3, before=(None, None)), event(2, 2, batch_id=4, before=(None, None)),
               event(3, 3, before=("running", None))])
    assert [e.job_id for e in sub.take(timeout=0)] == [1]


def test_take_wakes_as_soon_as_an_event_is_offered():
    sub = Subscription()
    threading.Timer(0.1, lambda: sub.offer([event(1, 1)])).start()
    started = time.monotonic()
    assert [e.version for e in sub.take(timeout=5)] == [1]
    assert time.monotonic() - started < 1


def test_sse_format():
    assert event(12, 3).message == b'id: 12\nevent: job\ndata: {"id": 3, "version": 12}\n\n'
    assert deletion_event(3, 13).message == b'id: 13\nevent: deleted\ndata: {"id": 3}\n\n'


class Parked:
    """A subscription waiting in `take` (in a thread) with a non-blocking socket for direct writes."""

    def __init__(self, sub: Subscription, timeout: float = 5.0) -> None:
        self.sub = sub
        self.server_end, self.client_end = socket.socketpair()
        self.server_end.setblocking(False)
        self.taken: list = []
        self.thread = threading.Thread(target=self._take, args=(timeout,), daemon=True)
        self.thread.start()
        time.sleep(0.05)

    def _take(self, timeout: float) -> None:
        self.taken = self.sub.take(timeout=timeout, direct_fd=self.server_end.fileno())

    def returned(self, within: float) -> bool:
        self.thread.join(within)
        return not self.thread.is_alive()

    def close(self) -> None:
        self.server_end.close()
        self.client_end.close()


def test_a_parked_client_gets_the_event_written_directly_as_one_http_chunk():
    sub = Subscription()
    parked = Parked(sub)
    sub.offer([event(7, 1)])
    received = parked.client_end.recv(4096)
    assert received == http_chunk(event(7, 1).message)
    assert not parked.returned(within=0.2), "no wake-up for a direct write"
    assert sub.sent_version == 7
    sub.offer([event(8, 2), event(9, 1)])  # two events: one chunk, in version order
    assert parked.client_end.recv(4096) == http_chunk(event(8, 2).message + event(9, 1).message)
    sub.nudge()
    assert parked.returned(within=1) and parked.taken == []
    parked.close()


def test_a_full_socket_wakes_the_stream_to_send_the_usual_way():
    sub = Subscription()
    parked = Parked(sub)
    try:
        while True:
            parked.server_end.send(b"x" * 65536)
    except BlockingIOError:
        pass
    sub.offer([event(3, 1)])
    assert parked.returned(within=1)
    assert [e.version for e in parked.taken] == [3] and sub.sent_version == 0
    parked.close()


def test_a_partly_written_batch_leaves_its_rest_to_the_stream():
    sub = Subscription()
    parked = Parked(sub)
    parked.server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    try:
        while True:
            parked.server_end.send(b"x" * 1024)
    except BlockingIOError:
        pass
    parked.client_end.recv(8192)  # room for part of the next chunk only
    batch = [event(v, v) for v in range(1, 200)]
    sub.offer(batch)
    assert parked.returned(within=1) and parked.taken == []
    frame = http_chunk(b"".join(e.message for e in batch))
    assert sub.sent_version == 199 and 0 < len(sub.unwritten) < len(frame)
    assert frame.endswith(sub.unwritten)
    parked.close()


def test_a_batch_too_big_to_write_directly_wakes_the_stream():
    sub = Subscription()
    parked = Parked(sub)
    big = JobEvent(4, 1, "job", sse_message(4, "job", '"' + "x" * 100_000 + '"'), "running")
    sub.offer([big])
    assert parked.returned(within=1) and parked.taken == [big] and sub.unwritten == b""
    parked.close()


def test_a_closed_client_marks_the_subscription_broken():
    sub = Subscription()
    parked = Parked(sub)
    parked.client_end.close()
    sub.offer([event(5, 1)])
    assert parked.returned(within=1) and sub.broken
    parked.server_end.close()
