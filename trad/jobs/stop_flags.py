"""Whether one run of a training job must stop: its Redis flag first, its row when Redis cannot say.

The flag is keyed by the run id (the row's `rq_job_id`, new for every start), so a flag left
by an earlier run of the job, or by a job of the same id in another database sharing the
Redis, changes nothing. The row says stop when it was deleted, ended, taken over by another
run, or has `cancel_requested` set.

`StopFlag` is picklable: its Redis client opens lazily and is dropped when it is pickled (or
found inherited through a fork), so a copy works in a child process.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Callable, Mapping

from trad.errors import Cancelled

log = logging.getLogger(__name__)

UNKNOWN_RUN = ...
ROW_CHECK_INTERVAL = 1.0
REDIS_RETRY_SECONDS = 5.0


def cancel_key(redis_prefix: str, run_id: str) -> str:
    """The Redis key that asks one run of a job (its `rq_job_id`) to stop."""
    return f"{redis_prefix}cancel:{run_id}"


class StopFlag:
    """The stop request of one run: looked up in Redis every `interval` seconds, in the row
    (through `row_says_stop`) at most every ROW_CHECK_INTERVAL when Redis is absent or failing,
    or the run is unknown. Once seen, `reason` says why and every check raises `Cancelled`."""

    def __init__(self, job_id: int, *, redis_url: str | None = None, redis_prefix: str = "trad:",
                 run_id: Any = UNKNOWN_RUN, interval: float = 0.25) -> None:
        self.job_id = int(job_id)
        self.redis_url = redis_url
        self.redis_prefix = redis_prefix
        self.run_id = run_id
        self.interval = interval
        self._reset_process_state()

    def _reset_process_state(self) -> None:
        self._pid = os.getpid()
        self._redis: Any = None
        self._redis_retry_at = -math.inf
        self._last_check = -math.inf
        self._last_row_check = -math.inf
        self.reason: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_") and k != "reason"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_process_state()

    def check(self, row_says_stop: Callable[[], bool]) -> None:
        """Raise Cancelled if a stop was requested (looked up at most every `interval` s)."""
        if self.reason:
            raise Cancelled(self.reason)
        now = time.monotonic()
        if now - self._last_check < self.interval:
            return
        self._last_check = now
        flagged = self._redis_flag()
        if flagged is None and now - self._last_row_check >= ROW_CHECK_INTERVAL:
            self._last_row_check = now
            flagged = row_says_stop()
        if flagged:
            self.reason = self.reason or "stop requested"
            raise Cancelled(self.reason)

    def judge(self, state: Mapping[str, Any] | None) -> bool:
        """Whether the row's state (None: deleted) tells this run to stop; remembers why."""
        if state is None:
            self.reason = "the job was deleted"
        elif self.run_id is not UNKNOWN_RUN and state.get("rq_job_id", self.run_id) != self.run_id:
            self.reason = "another run took over the job"
        elif state["status"] != "running":
            self.reason = f"the job is {state['status']}"
        elif state["cancel_requested"]:
            self.reason = "stop requested"
        return self.reason is not None

    def _redis_flag(self) -> bool | None:
        """True/False from Redis; None when Redis is not configured or not answering, or the run is unknown."""
        if not self.redis_url or not self.run_id or self.run_id is UNKNOWN_RUN \
                or time.monotonic() < self._redis_retry_at:
            return None
        try:
            if self._redis is None or self._pid != os.getpid():
                import redis

                self._redis = redis.Redis.from_url(self.redis_url, socket_timeout=1.0,
                                                   socket_connect_timeout=1.0)
                self._pid = os.getpid()
            return bool(self._redis.exists(cancel_key(self.redis_prefix, self.run_id)))
        except Exception as exc:  # any Redis failure: fall back to the row for a while
            self._redis = None
            self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
            log.debug("job %s: cancel flag unreadable in Redis: %s", self.job_id, exc)
            return None
