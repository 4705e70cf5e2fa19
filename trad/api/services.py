"""What every request of one app shares: its settings, database pool and Redis client."""

from __future__ import annotations

from dataclasses import dataclass

import redis as redis_lib
from flask import current_app

from trad.config import Settings
from trad.db import Database

EXTENSION = "trad"


@dataclass
class Services:
    """Created once per app by `create_app`; connections open lazily on first use."""

    settings: Settings
    db: Database
    redis: redis_lib.Redis

    def close(self) -> None:
        """Close the pool and the Redis client (tests, shutdown)."""
        self.db.close()
        self.redis.close()


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.extensions[EXTENSION]
