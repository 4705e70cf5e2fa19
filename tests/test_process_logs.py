"""What `trad serve` and `trad worker` write to their logs: what an operator needs, no noise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from tests.conftest import free_port


def test_the_web_log_has_no_gevent_monkey_patch_warning(env):
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "trad", "serve", "--port", str(port)], env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        end = time.monotonic() + 30
        while True:
            try:
                assert requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).status_code == 200
                break
            except requests.ConnectionError:
                assert web.poll() is None and time.monotonic() < end, "trad serve did not start"
                time.sleep(0.1)
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        log, _ = web.communicate(timeout=15)
    assert "Booting worker" in log and "Shutting down" in log, log
    assert "Warning" not in log, log


def test_the_worker_does_not_log_its_routine_registry_cleaning(env):
    done = subprocess.run([sys.executable, "-m", "trad", "worker", "--burst"], env=env, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"Listening on {env['TRAD_QUEUE']}" in done.stderr
    assert "cleaning" not in done.stderr, done.stderr
