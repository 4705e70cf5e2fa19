"""Settings from the environment, read once into one frozen object."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Mapping
from urllib.parse import quote

from trad.errors import InvalidInput

DEFAULT_DATABASE_URL = "postgresql://localhost/trad"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"


@dataclass(frozen=True)
class Settings:
    """Every setting of trad; see the configuration table in README.md."""

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    queue: str = "training"
    redis_prefix: str = "trad:"
    progress_interval: float = 5.0
    api_token: str | None = None
    max_configs: int = 10_000
    retention_days: int = 30
    port: int = 8000
    host: str = "127.0.0.1"
    job_timeout: int = 24 * 3600
    database_url_set: bool = False
    redis_url_set: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read the TRAD_* variables (and PORT, DB_* parts); unset ones keep their defaults."""
        env = os.environ if env is None else env
        database_url = env.get("TRAD_DATABASE_URL") or _database_url_from_parts(env)
        return cls(
            database_url=database_url or DEFAULT_DATABASE_URL,
            redis_url=env.get("TRAD_REDIS_URL") or DEFAULT_REDIS_URL,
            queue=env.get("TRAD_QUEUE") or "training",
            redis_prefix=env.get("TRAD_REDIS_PREFIX") or "trad:",
            progress_interval=_number(env, "TRAD_PROGRESS_INTERVAL", 5.0, float, minimum=0.0),
            api_token=env.get("TRAD_API_TOKEN") or None,
            max_configs=_number(env, "TRAD_MAX_CONFIGS", 10_000, int, minimum=1),
            retention_days=_number(env, "TRAD_RETENTION_DAYS", 30, int, minimum=0),
            port=_number(env, "PORT", 8000, int, minimum=1),
            host=env.get("TRAD_HOST") or "127.0.0.1",
            job_timeout=_number(env, "TRAD_JOB_TIMEOUT", 24 * 3600, int, minimum=1),
            database_url_set=bool(database_url),
            redis_url_set=bool(env.get("TRAD_REDIS_URL")),
        )

    def with_(self, **changes: object) -> "Settings":
        """A copy with some settings changed (tests, the embedded demo)."""
        return replace(self, **changes)


def _database_url_from_parts(env: Mapping[str, str]) -> str | None:
    """Build a URL from DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME when any is set."""
    parts = {k: env.get(f"DB_{k}") for k in ("HOST", "PORT", "USER", "PASSWORD", "NAME")}
    if not any(parts.values()):
        return None
    auth = ""
    if parts["USER"]:
        auth = quote(parts["USER"], safe="")
        if parts["PASSWORD"]:
            auth += ":" + quote(parts["PASSWORD"], safe="")
        auth += "@"
    host = parts["HOST"] or "localhost"
    port = f":{parts['PORT']}" if parts["PORT"] else ""
    return f"postgresql://{auth}{host}{port}/{parts['NAME'] or 'trad'}"


def _number(env: Mapping[str, str], name: str, default, kind, minimum):
    """Parse a numeric variable; a bad value is a clear error naming the variable."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise InvalidInput.field(name, f"{raw!r} is not a valid {kind.__name__}") from None
    if value < minimum:
        raise InvalidInput.field(name, f"{raw!r} must be >= {minimum}")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()
