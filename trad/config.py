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
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

from trad.errors import InvalidInput

SERVER_VARIABLES = ("TRAD_DATABASE_URL", "TRAD_REDIS_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD",
                    "DB_NAME")
DEMO_DIR = Path(".trad")  # `trad demo --data-dir` default, relative to where it was started
DEMO_FILE = "demo.json"
DEMO_LOCK = "demo.lock"


def _setting(variable: str, default: Any, help: str, unit: str = "", minimum: float | None = None,
             shown: str | None = None) -> Any:
    """One row of the settings table: the variable that sets a field, its default, unit and meaning
    (`minimum`: the smallest number accepted; `shown`: the default as README.md words it)."""
    return field(default=default, metadata={"variable": variable, "unit": unit, "help": help,
                                            "minimum": minimum, "shown": shown})


@dataclass(frozen=True)
class Settings:
    """Every setting of trad, one field each: its type, variable, default, unit and meaning.

    `SETTINGS` lists them as a table; README.md's configuration table is checked against it.
    """

    database_url: str = _setting(
        "TRAD_DATABASE_URL", "postgresql://localhost/trad",
        help="PostgreSQL (when unset, `DB_HOST`, `DB_PORT`, `DB_USER`, `DB_PASSWORD`, `DB_NAME` are honoured)")
    redis_url: str = _setting("TRAD_REDIS_URL", "redis://localhost:6379/0", help="Redis for RQ and stop flags")
    queue: str = _setting("TRAD_QUEUE", "training", help="RQ queue name")
    redis_prefix: str = _setting("TRAD_REDIS_PREFIX", "trad:", help="prefix of trad's own Redis keys (stop flags)")
    progress_interval: float = _setting(
        "TRAD_PROGRESS_INTERVAL", 5.0, unit="seconds", minimum=0.0,
        help="between throttled progress writes of one job")
    api_token: str | None = _setting(
        "TRAD_API_TOKEN", None,
        help="when set, every /api, SSE and /rq request needs it (`Authorization: Bearer`, or cookie/`?token=` "
             "for EventSource)")
    max_configs: int = _setting(
        "TRAD_MAX_CONFIGS", 10_000, unit="configurations", minimum=1,
        help="largest grid one job may ask for (422 above)")
    retention_days: int = _setting(
        "TRAD_RETENTION_DAYS", 30, unit="days", minimum=0,
        help="job history kept by `trad cleanup`")
    job_timeout: int = _setting(
        "TRAD_JOB_TIMEOUT", 24 * 3600, unit="seconds", minimum=1,
        help="a worker lets one training job run")
    backtest_max_candles: int = _setting(
        "TRAD_BACKTEST_MAX_CANDLES", 2_000_000, unit="candles", minimum=2,
        help="most one ad-hoc backtest may read (422 above)")
    backtest_max_pending: int = _setting(
        "TRAD_BACKTEST_MAX_PENDING", 16, unit="backtests", minimum=1,
        help="ad-hoc ones queued or running at once (429 above)")
    backtest_wait: float = _setting(
        "TRAD_BACKTEST_WAIT", 30.0, unit="seconds", minimum=1.0,
        help="the web app waits for a worker to finish one (503 after)")
    host: str = _setting("TRAD_HOST", "127.0.0.1", help="address the web server binds (set `0.0.0.0` to expose it)")
    ws_ping_interval: float = _setting(
        "TRAD_WS_PING_INTERVAL", 15.0, unit="seconds", minimum=0.1,
        help="between the WebSocket feed's pings; a client that has not answered one by the next is closed")
    port: int = _setting("PORT", 8000, minimum=1, help="web port")
    web_url: str | None = _setting(
        "TRAD_URL", None, shown="http://TRAD_HOST:PORT",
        help="where `trad watch` finds the web app (beside a running demo: the demo's)")
    database_url_set: bool = False  # TRAD_DATABASE_URL or DB_* named one (not the default)
    redis_url_set: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, demo: "DemoServers | None" = None,
                 demo_wins: bool = False) -> "Settings":
        """Read the variables of `SETTINGS` (and the DB_* parts); unset ones keep their defaults.

        With `demo` (a running demo's servers) and none of SERVER_VARIABLES set, its database,
        Redis, queue, key prefix and web URL are used, each unless its own variable is set;
        `demo_wins` (`trad --demo DIR`) uses all of them whatever the environment says.
        """
        env = os.environ if env is None else env
        if demo is not None and (demo_wins or not any(env.get(name) for name in SERVER_VARIABLES)):
            env = {**env, **demo.variables(keep={} if demo_wins else env)}
        values = {setting.name: setting.read(env) for setting in SETTINGS}
        database_url = env.get("TRAD_DATABASE_URL") or _database_url_from_parts(env)
        if database_url:
            values["database_url"] = database_url
        return cls(**values, database_url_set=bool(database_url), redis_url_set=bool(env.get("TRAD_REDIS_URL")))

    def with_(self, **changes: object) -> "Settings":
        """A copy with some settings changed (tests, the embedded demo)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Setting:
    """A row of the settings table: a field of Settings and the variable that sets it."""

    name: str
    variable: str
    kind: type
    default: Any
    unit: str
    help: str
    minimum: float | None
    shown: str | None

    @property
    def shown_default(self) -> str:
        """The default as README.md shows it: `5` for 5.0, `86400` for a day of seconds, `unset` for None."""
        if self.shown is not None:
            return self.shown
        if self.default is None:
            return "unset"
        return f"{self.default:g}" if self.kind is float else str(self.default)

    def read(self, env: Mapping[str, str]) -> Any:
        """The value `env` gives (unset or empty: the default); a bad number is an error naming the variable."""
        raw = env.get(self.variable)
        if raw is None or raw == "":
            return self.default
        if self.kind is str:
            return raw
        try:
            value = self.kind(raw)
        except ValueError:
            raise InvalidInput.field(self.variable, f"{raw!r} is not a valid {self.kind.__name__}") from None
        if self.minimum is not None and value < self.minimum:
            raise InvalidInput.field(self.variable, f"{raw!r} must be >= {self.minimum}")
        return value


def _settings_table() -> tuple[Setting, ...]:
    """Settings' fields that a variable sets, in order, with their type (int, float or str)."""
    kinds = {"int": int, "float": float, "str": str, "str | None": str}
    return tuple(Setting(f.name, f.metadata["variable"], kinds[f.type], f.default, f.metadata["unit"],
                         f.metadata["help"], f.metadata["minimum"], f.metadata["shown"])
                 for f in fields(Settings) if "variable" in f.metadata)


SETTINGS = _settings_table()


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
