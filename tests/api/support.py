"""Helpers of the API tests: the error shape, polling, job requests."""

from __future__ import annotations

import re
from typing import Any

from tests.polling import wait_for  # noqa: F401  (the API tests import it from here)

JOBS = "/api/v1/training-jobs"
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    """The response is exactly the error shape with this status and code (and a detail naming `field`)."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert "Traceback" not in text and 'File "' not in text
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details", "trace_id"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    for detail in error["details"]:
        assert set(detail) == {"field", "issue"} and all(isinstance(v, str) for v in detail.values()), detail
    assert TRACE_ID.match(error["trace_id"]) and response.headers["X-Trace-Id"] == error["trace_id"]
    if field is not None:
        assert field in [d["field"] for d in error["details"]], error
    return error


def job_body(**fields: Any) -> dict[str, Any]:
    """A small, quick job request: a 4-configuration grid of sma_crossover without validation."""
    return {"strategy": "sma_crossover", "symbol": "SYN", "timeframe": "5m", "optimizer": "grid",
            "param_space": {"fast": {"choices": [10, 20]}, "slow": {"choices": [50, 100]}},
            "min_trades": 0, "validation": {"enabled": False}, **fields}


def wait_until_complete(client, job_id: int, timeout: float = 60) -> dict:
    """Poll the job's progress until it is complete; returns the final progress."""
    return wait_for(lambda: (p := client.get(f"{JOBS}/{job_id}/progress").get_json())["is_complete"] and p,
                    timeout, every=0.2)
