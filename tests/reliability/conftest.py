"""Helpers of the reliability suite: polling, a job's recorded evaluations, the web process.

Faults that take PostgreSQL or Redis down run on private servers (the `private_services`
fixture, tests/private_services.py), never on the shared ones.
"""

from __future__ import annotations

import subprocess

from tests.polling import job_row as row
from tests.polling import wait_for


def finished_row(db, job_id: int, timeout: float) -> dict:
    """The job's row once it reached succeeded, failed or stopped."""
    return wait_for(lambda: (r := row(db, job_id)) and r["status"] in ("succeeded", "failed", "stopped") and r,
                    timeout, every=0.2, what=f"job {job_id} finished")


def metric_iterations(db, job_id: int) -> list[int]:
    with db.cursor() as cur:
        cur.execute("SELECT iteration FROM training_metrics WHERE job_id = %s ORDER BY iteration", (job_id,))
        return [r["iteration"] for r in cur.fetchall()]


# The web process.

def web_worker_pid(web) -> int:
    """The gunicorn worker of a `trad serve` (the master's one child): it holds the app and the streams."""
    children = wait_for(lambda: subprocess.run(["pgrep", "-P", str(web.process.pid)], capture_output=True,
                                               text=True).stdout.split(), 30, what="gunicorn worker")
    assert len(children) == 1, children
    return int(children[0])
