"""Streams in front of a month of use: what a connect, a reconnect and a crowd of streams cost
when the database holds thousands of jobs, and what is given back afterwards.

Promised (README, Guarantees → Load held):
- a reconnect from version 1 at 20,000 jobs is one `reset` event, not the history;
- a burst of 1,000 connects at 2,000 jobs: no 503, every status line within 2 s (p99);
- memory per stream at most 50 kB; RSS back within 20 % of its baseline within 60 s of 2,000
  streams closing;
- a replay from before the newest tombstone `trad cleanup` pruned is a reset too.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import pytest

from tests.job_history import add_history
from tests.polling import wait_for
from tests.process_stats import proc_stats
from tests.reliability.conftest import web_worker_pid
from tests.reliability.held_streams import HeldStreams, allow_descriptors
from tests.stream.reader import StreamReader

STREAM = "/api/v1/training-jobs/stream"
BURST, BURST_P99_SECONDS = 1000, 2.0
CROWD, KB_PER_STREAM, BACK_WITHIN, GIVE_BACK_SECONDS = 2000, 50, 0.20, 60.0


def rename(db, job_id: int, name: str) -> int:
    with db.cursor() as cur:
        cur.execute("UPDATE training_jobs SET job_name = %s WHERE id = %s RETURNING version", (name, job_id))
        return cur.fetchone()["version"]


@pytest.mark.slow
def test_a_reconnect_from_version_1_at_20000_jobs_is_one_reset(start_web, db, pg_url, clean_db):
    newest = add_history(pg_url, 20_000)
    web = start_web()
    reader = StreamReader(f"{web.url}{STREAM}", last_event_id=1)
    reset = reader.wait_for(lambda e: e[1] == "reset")
    assert reset[2:] == (newest, {"version": newest, "reason": "history"})
    time.sleep(0.5)
    assert len(reader.events) == 1 and sum(len(line) + 1 for line in reader.lines) < 200
    changed = rename(db, 20_000, "after the reset")  # the stream goes on from the reset's id
    reader.wait_for(lambda e: e[2] == changed)
    again = StreamReader(f"{web.url}{STREAM}", last_event_id=newest)  # as the client resumes after reloading
    again.wait_for(lambda e: e[2] == changed)
    time.sleep(0.5)
    assert [e[2] for e in again.events] == [changed]
    reader.close()
    again.close()


def test_a_replay_from_before_a_pruned_tombstone_is_a_reset(start_web, make_job, db, clean_db, env):
    kept, gone, late = make_job(job_name="kept"), make_job(job_name="deleted long ago"), make_job(job_name="late")
    with db.cursor() as cur:
        cur.execute("DELETE FROM training_jobs WHERE id = %s", (gone["id"],))
        cur.execute("UPDATE training_job_deletions SET deleted_at = now() - interval '40 days' "
                    "WHERE job_id = %s RETURNING version", (gone["id"],))
        deleted = cur.fetchone()["version"]
    web = start_web()
    before = StreamReader(f"{web.url}{STREAM}", last_event_id=kept["version"])
    before.wait_for(lambda e: e[1] == "deleted" and e[3] == {"id": gone["id"]})  # replayed while kept
    before.close()
    web.stop()
    cleanup = subprocess.run([sys.executable, "-m", "trad", "cleanup", "--days", "30"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert cleanup.returncode == 0 and "and 1 deletion records" in cleanup.stdout, cleanup.stdout + cleanup.stderr
    with db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM training_job_deletions")
        assert cur.fetchone()["n"] == 0
    web.start()
    after = StreamReader(f"{web.url}{STREAM}", last_event_id=kept["version"])
    assert after.wait_for(lambda e: e[1] == "reset")[3]["reason"] == "history"
    complete = StreamReader(f"{web.url}{STREAM}", last_event_id=deleted)  # from the pruned version on: complete
    renamed = rename(db, late["id"], "renamed")
    complete.wait_for(lambda e: e[2] == renamed)
    assert [e[1] for e in complete.events] == ["job"]
    after.close()
    complete.close()


@pytest.mark.slow
def test_a_burst_of_1000_connects_at_2000_jobs_is_answered_within_2_s(start_web, pg_url, clean_db, record_property):
    allow_descriptors(BURST + 200)
    add_history(pg_url, 2_000)
    web = start_web()  # nothing has streamed yet: the burst's first connect loads the history
    streams = HeldStreams(web.port, BURST)
    try:
        streams.wait_answered(60)
        seconds = sorted(streams.seconds)
        p99 = seconds[int(0.99 * len(seconds)) - 1]
        refused = [s for s in streams.statuses if s != "200"]
        record_property("figure", f"{BURST} connects at once at 2,000 jobs: status line p50 {statistics.median(seconds):.2f} s, "
              f"p99 {p99:.2f} s, max {seconds[-1]:.2f} s; {len(refused)} refused; "
              f"snapshot {max(streams.received) / 1024:.0f} kB a stream")
    finally:
        streams.close()
    assert refused == []
    assert p99 <= BURST_P99_SECONDS


@pytest.mark.slow
def test_a_stream_costs_at_most_50_kB_and_memory_comes_back_when_they_close(start_web, pg_url, clean_db,
                                                                           record_property):
    allow_descriptors(CROWD + 200)
    add_history(pg_url, 2_000)
    web = start_web()
    pid = web_worker_pid(web)
    first = HeldStreams(web.port, 1)  # the history loaded: part of the process at rest
    first.wait_quiet(quiet=1.0)
    first.close()
    time.sleep(1)
    baseline = proc_stats(pid)["rss_kb"]
    crowd = HeldStreams(web.port, CROWD, wave=200)
    try:
        crowd.wait_answered(120)
        crowd.wait_quiet()
        held = proc_stats(pid)["rss_kb"]
        assert crowd.statuses == ["200"] * CROWD
    finally:
        crowd.close()
    closed = time.monotonic()
    back = wait_for(lambda: (rss := proc_stats(pid)["rss_kb"]) <= (1 + BACK_WITHIN) * baseline and rss,
                    GIVE_BACK_SECONDS, every=0.5, what=f"RSS within {BACK_WITHIN:.0%} of {baseline} kB")
    per_stream = (held - baseline) / CROWD
    record_property("figure", f"{CROWD} streams at 2,000 jobs: RSS {baseline / 1024:.0f} → {held / 1024:.0f} MB, "
          f"{per_stream:.1f} kB a stream; {back / 1024:.0f} MB {time.monotonic() - closed:.0f} s after they closed")
    assert per_stream <= KB_PER_STREAM
