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
