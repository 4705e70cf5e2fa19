"""Subscriptions: filters, coalescing, version order."""

import threading
import time

from trad.api.events import JobEvent, Subscription, deletion_event


def event(version: int, job_id: int, status: str = "running", batch_id=None) -> JobEvent:
    return JobEvent(version, job_id, "job", f'{{"id": {job_id}, "version": {version}}}', status, batch_id)


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


def test_status_filter_still_tells_about_jobs_that_leave_it():
    sub = Subscription(status="running")
    sub.offer([event(1, 1, "running"), event(2, 2, "queued")])
    first = sub.take(timeout=0)
    for e in first:
        sub.mark_sent(e)
    assert [e.job_id for e in first] == [1]
    sub.offer([event(3, 1, "succeeded"), event(4, 2, "succeeded"), deletion_event(9, 5)])
    assert [(e.job_id, e.status) for e in sub.take(timeout=0)] == [(1, "succeeded")]


def test_batch_filter():
    sub = Subscription(batch_id=3)
    sub.offer([event(1, 1, batch_id=3), event(2, 2, batch_id=4), event(3, 3)])
    assert [e.job_id for e in sub.take(timeout=0)] == [1]


def test_take_wakes_as_soon_as_an_event_is_offered():
    sub = Subscription()
    threading.Timer(0.1, lambda: sub.offer([event(1, 1)])).start()
    started = time.monotonic()
    assert [e.version for e in sub.take(timeout=5)] == [1]
    assert time.monotonic() - started < 1


def test_sse_format():
    assert event(12, 3).to_sse() == 'id: 12\nevent: job\ndata: {"id": 3, "version": 12}\n\n'
    assert deletion_event(3, 13).to_sse() == 'id: 13\nevent: deleted\ndata: {"id": 3}\n\n'


class Parked:
    """A subscription waiting in `take` (in a thread) with a non-blocking socket for direct writes."""

    def __init__(self, sub: Subscription, timeout: float = 5.0) -> None:
        import socket

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
    message = event(7, 1).encoded
    received = parked.client_end.recv(4096)
    assert received == b"%X\r\n" % len(message) + message + b"\r\n"
    assert not parked.returned(within=0.2), "no wake-up for a direct write"
    assert sub.sent_version == 7
    sub.offer([event(8, 2), event(9, 1)])  # two events: one chunk, in version order
    both = event(8, 2).encoded + event(9, 1).encoded
    assert parked.client_end.recv(4096) == b"%X\r\n" % len(both) + both + b"\r\n"
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


def test_a_partly_written_event_leaves_its_rest_to_the_stream():
    sub = Subscription()
    parked = Parked(sub)
    big = JobEvent(4, 1, "job", '"' + "x" * 4_000_000 + '"', "running")
    sub.offer([big])
    assert parked.returned(within=1) and parked.taken == []
    assert sub.sent_version == 4 and 0 < len(sub.unwritten) < len(big.chunk)
    parked.close()


def test_a_closed_client_marks_the_subscription_broken():
    sub = Subscription()
    parked = Parked(sub)
    parked.client_end.close()
    sub.offer([event(5, 1)])
    assert parked.returned(within=1) and sub.broken
    parked.server_end.close()
