"""Helpers of the reliability suite: polling, service restarts that never leave a service down,
and a guard that keeps those restarts away from other test runs on the same machine."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from tests.polling import job_row as row
from tests.polling import wait_for

# Exactly how .ci/run starts Redis: no persistence, so a restart loses everything it held.
REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
               "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
               "--logfile", "/var/log/redis/ci.log"]
LOCK_PATH = "/tmp/trad-reliability-services.lock"
OTHER_RUNS_PATIENCE = 180.0  # seconds to wait for other test runs before giving up the restart


def finished_row(db, job_id: int, timeout: float) -> dict:
    """The job's row once it reached succeeded, failed or stopped."""
    return wait_for(lambda: (r := row(db, job_id)) and r["status"] in ("succeeded", "failed", "stopped") and r,
                    timeout, every=0.2, what=f"job {job_id} finished")


def metric_iterations(db, job_id: int) -> list[int]:
    with db.cursor() as cur:
        cur.execute("SELECT iteration FROM training_metrics WHERE job_id = %s ORDER BY iteration", (job_id,))
        return [r["iteration"] for r in cur.fetchall()]


# Restarting shared services.

def _ancestors(pid: int) -> set[int]:
    found = set()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            with open(f"/proc/{pid}/status") as f:
                pid = int(next(line for line in f if line.startswith("PPid:")).split()[1])
        except (OSError, StopIteration):
            break
    return found


def _is_pytest(args: list[str]) -> bool:
    """`pytest …`, `py.test …` or `python -m pytest …` (not a process that merely names a pytest folder)."""
    for i, arg in enumerate(args[:4]):
        if os.path.basename(arg) in ("pytest", "py.test") or (arg == "-m" and args[i + 1:i + 2] == ["pytest"]):
            return True
    return False


def other_test_runs() -> list[str]:
    """Command lines of pytest runs on this machine other than this one (its parents and children aside)."""
    me = os.getpid()
    mine = _ancestors(me)
    others = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if int(pid) in mine or me in _ancestors(int(pid)) or not _is_pytest(args):
            continue
        others.append(f"{pid} {' '.join(args)}")
    return others


@pytest.fixture
def sole_user_of_services():
    """Hold the machine-wide restart lock and wait until no other test run uses PostgreSQL and Redis.

    A restart under another run would fail its tests. In CI nothing else runs; elsewhere the
    test waits up to OTHER_RUNS_PATIENCE seconds and then skips (never restarts under others).
    """
    with open(LOCK_PATH, "w") as lock:
        end = time.monotonic() + OTHER_RUNS_PATIENCE
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                others = other_test_runs()
            except BlockingIOError:
                others = ["another reliability run holds " + LOCK_PATH]
            if not others:
                break
            fcntl.flock(lock, fcntl.LOCK_UN)
            if time.monotonic() > end:
                message = "other test runs use PostgreSQL/Redis; not restarting under them: " + "; ".join(others)
                if os.environ.get("CI"):
                    pytest.fail(message)
                pytest.skip(message)
            time.sleep(5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def postgres_cluster() -> str:
    """The newest installed PostgreSQL cluster version (the one .ci/run starts)."""
    return sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")])[-1]


def postgres_up() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode == 0


def restart_postgresql() -> float:
    """Restart the local cluster (fast shutdown: every session is cut); returns the seconds it took."""
    started = time.monotonic()
    try:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", postgres_cluster(), "main", "restart"],
                       check=True, capture_output=True, timeout=120)
    finally:
        if not postgres_up():
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", postgres_cluster(), "main", "start"],
                           capture_output=True, timeout=120)
        wait_for(postgres_up, 60, every=0.2, what="PostgreSQL answering")
    return time.monotonic() - started


def redis_up() -> bool:
    answer = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"], capture_output=True, text=True)
    return answer.stdout.strip() == "PONG"


def start_redis() -> None:
    os.makedirs("/var/lib/redis", exist_ok=True)
    os.makedirs("/var/log/redis", exist_ok=True)
    subprocess.run(REDIS_START, check=True, capture_output=True, timeout=30)
    wait_for(redis_up, 30, every=0.1, what="Redis answering")


@contextmanager
def redis_lost(down_seconds: float) -> Iterator[None]:
    """Redis shut down without saving (all its data gone) for `down_seconds`, then started empty.

    The body of the `with` runs while Redis is down; Redis is started again whatever happens.
    """
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"], capture_output=True,
                   timeout=30)
    try:
        wait_for(lambda: not redis_up(), 10, every=0.1, what="Redis down")
        down_until = time.monotonic() + down_seconds
        yield
        time.sleep(max(0.0, down_until - time.monotonic()))
    finally:
        if not redis_up():
            start_redis()


# The web process.

def web_worker_pid(web) -> int:
    """The gunicorn worker of a `trad serve` (the master's one child): it holds the app and the streams."""
    children = wait_for(lambda: subprocess.run(["pgrep", "-P", str(web.process.pid)], capture_output=True,
                                               text=True).stdout.split(), 30, what="gunicorn worker")
    assert len(children) == 1, children
    return int(children[0])
