"""What a web process keeps of the job log: the window, its floor, snapshots and replays."""

from trad.api.events import JobEvent, Subscription, deletion_event, sse_message
from trad.api.history import SNAPSHOT_LIMIT, SNAPSHOT_RECENT, JobHistory


def row_event(version: int, job_id: int, status: str = "succeeded", size: int = 10) -> JobEvent:
    return JobEvent(version, job_id, "job", sse_message(version, "job", "x" * size), status)


def test_a_replay_is_complete_above_the_floor_and_refused_below_it():
    history = JobHistory(max_jobs=3)
    history.apply([row_event(v, job_id=v) for v in range(1, 6)])  # jobs 1..5, one change each
    assert history.floor == 2 and history.version == 5
    assert [e.version for e in history.replay(2, lambda e: True)] == [3, 4, 5]
    assert history.replay(1, lambda e: True) is None


def test_the_window_keeps_the_newest_event_per_job_in_version_order():
    history = JobHistory(max_jobs=3)
    history.apply([row_event(1, 1), row_event(2, 2), row_event(3, 1), deletion_event(2, 4)])
    assert [(e.kind, e.job_id, e.version) for e in history.replay(0, lambda e: True)] == \
        [("job", 1, 3), ("deleted", 2, 4)]
    assert history.floor == 0  # nothing left the window: a replay from 0 is complete


def test_the_window_is_bounded_in_bytes_too():
    history = JobHistory(max_jobs=1000, max_bytes=3000)
    history.apply([row_event(v, v, size=1000) for v in range(1, 11)])
    assert history.window_bytes <= 3000 and history.floor == 8
    assert [e.version for e in history.replay(8, lambda e: True)] == [9, 10]


def test_a_snapshot_holds_the_unfinished_jobs_and_the_most_recently_changed_others():
    history = JobHistory()
    history.apply([row_event(1, 1, "running"), row_event(2, 2, "queued")])
    history.apply([row_event(2 + v, 2 + v) for v in range(1, SNAPSHOT_RECENT + 51)])
    history.apply([deletion_event(5, 1000)])
    snapshot = history.snapshot(Subscription().shows)
    assert [e.job_id for e in snapshot[:2]] == [1, 2]  # unfinished, however old
    assert len(snapshot) == 2 + SNAPSHOT_RECENT and all(e.kind == "job" for e in snapshot)
    assert [e.version for e in snapshot] == sorted(e.version for e in snapshot)
    running = history.snapshot(Subscription(status="running").shows)
    assert [e.job_id for e in running] == [1]


def test_a_snapshot_is_capped():
    history = JobHistory()
    history.apply([row_event(v, v, "queued") for v in range(1, SNAPSHOT_LIMIT + 101)])
    snapshot = history.snapshot(Subscription().shows)
    assert len(snapshot) == SNAPSHOT_LIMIT and snapshot[-1].version == SNAPSHOT_LIMIT + 100


def test_finished_jobs_leave_the_unfinished_set():
    history = JobHistory(max_jobs=1)
    history.apply([row_event(1, 1, "running"), row_event(2, 2, "succeeded")])
    assert history.newest(1).version == 1  # out of the window, still unfinished
    history.apply([row_event(3, 1, "failed"), row_event(4, 3)])
    assert history.newest(1) is None and history.state_before(1) is None


def test_the_state_before_a_change():
    history = JobHistory()
    history.apply([row_event(1, 1, "running"), deletion_event(2, 2)])
    assert history.state_before(1) == ("running", None)
    assert history.state_before(2) == (None, None)
    assert history.state_before(3) is None  # never seen: unknown


def test_loading_starts_from_the_floor_given():
    history = JobHistory()
    history.load([row_event(7, 1), row_event(9, 2)], [row_event(3, 5, "queued")], floor=6, version=9)
    assert history.replay(5, lambda e: True) is None
    assert [e.version for e in history.replay(6, lambda e: True)] == [7, 9]
    assert [e.job_id for e in history.snapshot(Subscription().shows)] == [5, 1, 2]
