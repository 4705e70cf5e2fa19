"""Waiting for what real workers and servers do: polling with a deadline, reading a job's row."""

from __future__ import annotations

import time
from typing import Any, Callable


def wait_for(predicate: Callable[[], Any], timeout: float, every: float = 0.1,
             what: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; returns its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what} not met within {timeout} s")


def job_row(db: Any, job_id: int) -> dict:
    """The job's row as it is now."""
    from trad.store.jobs import get_job

    with db.connection() as conn:
        return get_job(conn, job_id)
