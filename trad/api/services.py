"""What every request of one app shares: its settings, database pool, Redis client and job listener."""

from __future__ import annotations

from dataclasses import dataclass

import redis as redis_lib
from flask import current_app

from trad.api.broadcaster import Broadcaster
from trad.config import Settings
from trad.db import Database

EXTENSION = "trad"


@dataclass
class Services:
    """Created once per app by `create_app`; connections open lazily on first use."""

    settings: Settings
    db: Database
    redis: redis_lib.Redis
    broadcaster: Broadcaster  # the SSE streams' and WebSocket feeds' listener, started by the first stream

    def close(self) -> None:
        """Stop the listener (waiting up to 2 s for each of its threads), close the pool and the
        Redis client (tests, shutdown)."""
        self.broadcaster.stop(wait=2.0)
        self.db.close()
        self.redis.close()


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.extensions[EXTENSION]
