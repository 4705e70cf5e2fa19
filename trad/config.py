"""Settings from the environment, read once into one frozen object.

A running `trad demo` writes its servers to `<data>/demo.json` (`DemoServers`); every other
`trad` command reads them from `./.trad` (the demo's default folder) when none of the server
variables (`SERVER_VARIABLES`) is set, or from the folder named by `trad --demo DIR`, which
wins over the environment. The file is removed when the demo stops, and ignored when the
demo that wrote it no longer runs (its lock file `<data>/demo.lock` is not held).
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Mapping
from urllib.parse import quote

from trad.errors import InvalidInput

DEFAULT_DATABASE_URL = "postgresql://localhost/trad"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
SERVER_VARIABLES = ("TRAD_DATABASE_URL", "TRAD_REDIS_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD",
                    "DB_NAME")
DEMO_DIR = Path(".trad")  # `trad demo --data-dir` default, relative to where it was started
DEMO_FILE = "demo.json"
DEMO_LOCK = "demo.lock"


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
    ws_ping_interval: float = 15.0
    backtest_max_candles: int = 2_000_000
    backtest_max_pending: int = 16
    backtest_wait: float = 30.0
    web_url: str | None = None
    database_url_set: bool = False
    redis_url_set: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, demo: "DemoServers | None" = None,
                 demo_wins: bool = False) -> "Settings":
        """Read the TRAD_* variables (and PORT, DB_* parts); unset ones keep their defaults.

        With `demo` (a running demo's servers) and none of SERVER_VARIABLES set, its database,
        Redis, queue, key prefix and web URL are used, each unless its own variable is set;
        `demo_wins` (`trad --demo DIR`) uses all of them whatever the environment says.
        """
        env = os.environ if env is None else env
        if demo is not None and (demo_wins or not any(env.get(name) for name in SERVER_VARIABLES)):
            env = {**env, **demo.variables(keep={} if demo_wins else env)}
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
            ws_ping_interval=_number(env, "TRAD_WS_PING_INTERVAL", 15.0, float, minimum=0.1),
            backtest_max_candles=_number(env, "TRAD_BACKTEST_MAX_CANDLES", 2_000_000, int, minimum=2),
            backtest_max_pending=_number(env, "TRAD_BACKTEST_MAX_PENDING", 16, int, minimum=1),
            backtest_wait=_number(env, "TRAD_BACKTEST_WAIT", 30.0, float, minimum=1.0),
            web_url=env.get("TRAD_URL") or None,
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


@dataclass(frozen=True)
class DemoServers:
    """What a running `trad demo` tells other commands: its servers, queue and web app."""

    database_url: str
    redis_url: str
    queue: str
    redis_prefix: str
    web_url: str

    def variables(self, keep: Mapping[str, str]) -> dict[str, str]:
        """The demo's values as the variables they stand for, but those set in `keep`."""
        values = {"TRAD_DATABASE_URL": self.database_url, "TRAD_REDIS_URL": self.redis_url,
                  "TRAD_QUEUE": self.queue, "TRAD_REDIS_PREFIX": self.redis_prefix, "TRAD_URL": self.web_url}
        return {name: value for name, value in values.items() if not keep.get(name)}

    def write(self, data_dir: Path) -> None:
        """Write `<data_dir>/demo.json` (owner-readable only), replacing it in one step."""
        path = data_dir / DEMO_FILE
        partial = path.with_suffix(".json.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(self), out, indent=2)
        os.replace(partial, path)

    @classmethod
    def running(cls, data_dir: Path) -> "DemoServers | None":
        """The demo running on `data_dir`, or None: no file, an unreadable one, or its demo has ended
        (no process holds the lock the demo holds while it runs: a lock dies with its process)."""
        try:
            demo = cls(**json.loads((data_dir / DEMO_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return demo if _lock_held(data_dir / DEMO_LOCK) else None


def remove_demo_file(data_dir: Path) -> None:
    """The demo has stopped: other commands no longer find its servers."""
    (data_dir / DEMO_FILE).unlink(missing_ok=True)


def demo_folder(path: Path) -> Path:
    """A demo's data folder from what a user names: the folder itself, or one holding `.trad`."""
    return path / DEMO_DIR if not (path / DEMO_FILE).exists() and (path / DEMO_DIR / DEMO_FILE).exists() else path


def _lock_held(path: Path) -> bool:
    """True while another process holds its lock on `path` (a shared lock taken and dropped at once)."""
    try:
        with open(path) as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


_chosen_demo: DemoServers | None = None


def use_demo(path: Path) -> DemoServers:
    """`trad --demo DIR`: this process uses that demo's servers; InvalidInput when none runs there."""
    global _chosen_demo
    demo = DemoServers.running(demo_folder(path.expanduser()))
    if demo is None:
        raise InvalidInput.field("--demo", f"no trad demo is running in {path} (start one with `trad demo`)")
    _chosen_demo = demo
    get_settings.cache_clear()
    return demo


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use (and from a running demo:
    the one `use_demo` chose, or one in `./.trad` when no server variable is set)."""
    if _chosen_demo is not None:
        return Settings.from_env(demo=_chosen_demo, demo_wins=True)
    servers_named = any(os.environ.get(name) for name in SERVER_VARIABLES)
    return Settings.from_env(demo=None if servers_named else DemoServers.running(DEMO_DIR))
