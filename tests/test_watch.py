"""`trad watch` when things go wrong: one line on stderr, its own exit code, within seconds.

Real `trad serve` processes started by each test (never a shared server) on the session's
database; the job rows are written with SQL, as a worker would.
"""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time

import pytest

from trad.watch import iter_job_rows


def watch(env: dict, job_id: int, url: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "trad", "watch", str(job_id), "--url", url, *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ended(process: subprocess.Popen, within: float) -> tuple[int, str, str, float]:
    """Exit code, stdout, stderr and seconds taken; fails if the watch takes longer than `within`."""
    started = time.monotonic()
    out, err = process.communicate(timeout=within)
    return process.returncode, out, err, time.monotonic() - started


def assert_one_line(err: str, *words: str) -> None:
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


def set_status(db, job_id: int, status: str) -> None:
    with db.cursor() as cur:
        cur.execute("UPDATE training_jobs SET status = %s WHERE id = %s", (status, job_id))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unknown_job_is_exit_4_before_any_bar(env, clean_db, start_web):
    web = start_web()
    code, out, err, seconds = ended(watch(env, 999, web.url), within=20)
    assert code == 4 and out == ""
    assert_one_line(err, "job 999 does not exist")
    assert seconds < 5


def test_a_server_that_refuses_is_exit_6_at_once(env):
    code, out, err, seconds = ended(watch(env, 1, f"http://127.0.0.1:{free_port()}"), within=20)
    assert code == 6 and out == ""
    assert_one_line(err, "does not answer", "Connection refused")
    assert seconds < 5


def test_a_server_that_never_answers_is_exit_6_within_seconds(env):
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        code, out, err, seconds = ended(watch(env, 1, f"http://127.0.0.1:{silent.getsockname()[1]}"), within=30)
    assert code == 6 and out == ""
    assert_one_line(err, "does not answer", "timed out")
    assert seconds < 10


def test_a_refused_token_is_exit_5(env, clean_db, make_job, start_web):
    job = make_job()
    web = start_web(extra_env={"TRAD_API_TOKEN": "the-right-one"})
    without = {k: v for k, v in env.items() if k != "TRAD_API_TOKEN"}
    for who, token_env in (("none", without), ("wrong", {**env, "TRAD_API_TOKEN": "a-wrong-one"})):
        code, out, err, seconds = ended(watch(token_env, job["id"], web.url), within=20)
        assert code == 5 and out == "", who
        assert_one_line(err, "refused", "TRAD_API_TOKEN")
        assert seconds < 5
    set_status(clean_db, job["id"], "succeeded")
    code, _, err, _ = ended(watch({**env, "TRAD_API_TOKEN": "the-right-one"}, job["id"], web.url), within=20)
    assert code == 0, err


def test_a_stream_that_does_not_come_back_is_exit_7(env, clean_db, make_job, start_web):
    job = make_job(status="running")
    web = start_web()
    process = watch(env, job["id"], web.url, "--reconnect-for", "2")
    time.sleep(3)  # streaming
    assert process.poll() is None
    web.stop()
    code, out, err, seconds = ended(process, within=30)
    assert code == 7
    assert_one_line(err, "dropped", "did not come back within 2 s")
    assert seconds < 8
    assert f"job {job['id']} running" in out  # the bars drawn before the drop stay


def test_a_deleted_job_is_exit_4(env, clean_db, make_job, start_web):
    job = make_job()
    web = start_web()
    process = watch(env, job["id"], web.url)
    time.sleep(3)
    with clean_db.cursor() as cur:
        cur.execute("DELETE FROM training_jobs WHERE id = %s", (job["id"],))
    code, _, err, seconds = ended(process, within=20)
    assert code == 4
    assert_one_line(err, f"job {job['id']} was deleted")


@pytest.mark.slow
def test_a_short_drop_reconnects_and_ends_with_the_jobs_code(env, clean_db, make_job, start_web):
    job = make_job(status="running")
    web = start_web()
    process = watch(env, job["id"], web.url)
    time.sleep(3)
    web.stop()
    set_status(clean_db, job["id"], "stopped")  # while no server is there to tell anyone
    time.sleep(1)
    start_web(port=web.port)  # the same address, a new process
    code, out, err, _ = ended(process, within=60)
    assert code == 3, err
    assert err == ""
    assert f"job {job['id']} stopped" in out


class ResetThenRow(http.server.BaseHTTPRequestHandler):
    """Stands in for the web app: the real one never sends `event: reset` on a job's own stream,
    so this server sends it once (after an event with an id), then the job's final row."""

    seen_event_ids: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen_event_ids.append(self.headers.get("Last-Event-ID"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        row = '{"id": 1, "status": "%s"}'
        if len(self.seen_event_ids) == 1:
            self.wfile.write(f"id: 5\nevent: job\ndata: {row % 'running'}\n\nevent: reset\ndata: {{}}\n\n".encode())
        else:
            self.wfile.write(f"id: 9\nevent: job\ndata: {row % 'succeeded'}\n\n".encode())
        self.wfile.flush()

    def log_message(self, *args) -> None:
        pass


def test_a_reset_reconnects_without_the_last_event_id():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ResetThenRow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rows = list(iter_job_rows(f"http://127.0.0.1:{server.server_port}", 1, reconnect_for=5))
    finally:
        server.shutdown()
    assert [r["status"] for r in rows] == ["running", "succeeded"]
    assert ResetThenRow.seen_event_ids == [None, None]


def test_the_eta_counts_down_from_the_rows_estimated_completion_as_on_the_dashboard():
    from datetime import datetime, timedelta, timezone

    from trad.watch import seconds_left

    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    row = {"status": "running", "eta_seconds": 50.0,
           "estimated_completion": (now + timedelta(seconds=41)).isoformat()}
    assert seconds_left(row, now) == 41.0
    assert seconds_left(row, now + timedelta(seconds=11)) == 30.0  # between two rows
    assert seconds_left(row, now + timedelta(seconds=60)) == 0.0
    assert seconds_left({**row, "estimated_completion": None}, now) == 50.0
    assert seconds_left({**row, "status": "succeeded"}, now) is None
