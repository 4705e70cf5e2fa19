"""PostgreSQL access: a connection pool, a transaction helper and the migrations runner.

Nothing connects at import time. A `Database` opens connections lazily and keeps them for
reuse, is safe to use from threads and greenlets, and after a fork the child builds its own
pool instead of sharing the parent's sockets. A connection that failed (server restarted, backend terminated) is
thrown away, never handed out again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import select
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterator

import psycopg2
import psycopg2.extensions
import psycopg2.extras

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql" / "migrations"
MIGRATION_LOCK_KEY = 0x7472_6164  # "trad": serialises concurrent `db upgrade` runs

CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)

_adapters_registered = False

# Connections a forked child inherited from its parent. They are kept referenced and never
# closed here: closing (or garbage-collecting) one would end the parent's session too.
_inherited_from_parent: list[object] = []


def leave_to_parent(resource: object) -> None:
    """Keep a connection (or pool) inherited through fork alive and untouched in this child."""
    if resource is not None:
        _inherited_from_parent.append(resource)


def json_safe(value: Any) -> Any:
    """A JSON-able copy: numpy scalars → Python numbers, NaN and ±inf → None, dates → ISO text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


class SafeJson(psycopg2.extras.Json):
    """psycopg2's Json adapter over `json_safe`: PostgreSQL's jsonb accepts no NaN or Infinity."""

    def dumps(self, obj: Any) -> str:
        return json.dumps(json_safe(obj), allow_nan=False)


def register_adapters() -> None:
    """Let numpy scalars and dicts (as `SafeJson`) pass as query parameters (once per process)."""
    global _adapters_registered
    if _adapters_registered:
        return
    import numpy as np

    for kind in (np.float64, np.float32):
        psycopg2.extensions.register_adapter(kind, lambda v: psycopg2.extensions.AsIs(repr(float(v))))
    for kind in (np.int64, np.int32, np.int16, np.int8, np.uint32, np.uint64):
        psycopg2.extensions.register_adapter(kind, lambda v: psycopg2.extensions.AsIs(int(v)))
    psycopg2.extensions.register_adapter(np.bool_, lambda v: psycopg2.extensions.AsIs(bool(v)))
    psycopg2.extensions.register_adapter(dict, SafeJson)
    _adapters_registered = True


class Database:
    """A lazily filled, fork-aware pool of connections to one PostgreSQL database.

    At most `max_connections` are in use at once (callers wait up to `checkout_timeout`
    for one); up to `max_idle` connections handed back in good order are kept for the next
    callers, the others closed (a burst does not leave a crowd of idle sessions behind).
    """

    def __init__(self, url: str, max_connections: int = 10, connect_timeout: int = 5,
                 application_name: str = "trad", checkout_timeout: float = 30.0,
                 max_idle: int = 5) -> None:
        self.url = url
        self.max_connections = max_connections
        self.max_idle = max_idle
        self.connect_timeout = connect_timeout
        self.application_name = application_name
        self.checkout_timeout = checkout_timeout
        self._idle: list[psycopg2.extensions.connection] = []
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._free = threading.BoundedSemaphore(max_connections)
        self._generation = 0  # bumped by close() and fork: older connections are not kept

    def __getstate__(self) -> dict:
        return {"url": self.url, "max_connections": self.max_connections,
                "connect_timeout": self.connect_timeout, "application_name": self.application_name,
                "checkout_timeout": self.checkout_timeout, "max_idle": self.max_idle}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    @contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        """A pooled connection, committed when the block ends, rolled back on error.

        When every connection is in use, waits up to `checkout_timeout` seconds for one.
        """
        with self._lock:
            self._adopt_after_fork()
            free, generation = self._free, self._generation
        if not free.acquire(timeout=self.checkout_timeout):
            raise psycopg2.OperationalError(
                f"no free database connection within {self.checkout_timeout:.0f} s "
                f"(all {self.max_connections} in use)")
        try:
            conn = self._live_connection()
        except BaseException:
            free.release()
            raise
        broken = False
        try:
            yield conn
            conn.commit()
        except BaseException as exc:
            broken = isinstance(exc, CONNECTION_ERRORS) or bool(conn.closed)
            if not conn.closed:
                try:
                    conn.rollback()
                except CONNECTION_ERRORS:
                    broken = True
            raise
        finally:
            self._check_in(conn, broken, generation)
            free.release()

    transaction = connection

    @contextmanager
    def cursor(self) -> Iterator[psycopg2.extras.RealDictCursor]:
        """A cursor in its own transaction; rows come back as dicts."""
        with self.connection() as conn, conn.cursor() as cur:
            yield cur

    def close(self) -> None:
        """Close the idle connections (those in use are closed when handed back)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._generation += 1
            if self._pid != os.getpid():
                leave_to_parent(idle)
                return
        for conn in idle:
            close_quietly(conn)

    def _adopt_after_fork(self) -> None:
        """In a forked child (under the lock): leave the parent's connections alone, start afresh."""
        if self._pid == os.getpid():
            return
        leave_to_parent(self._idle)
        self._idle = []
        self._free = threading.BoundedSemaphore(self.max_connections)
        self._generation += 1
        self._pid = os.getpid()

    def _live_connection(self) -> psycopg2.extensions.connection:
        """An idle connection the server has not closed meanwhile (after a restart or a kill), or a new one.

        An idle connection has nothing to read; if its socket is readable, the server sent a
        goodbye (or closed it), so it is discarded without a round trip.
        """
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return connect(self.url, connect_timeout=self.connect_timeout,
                               application_name=self.application_name)
            try:
                dead = bool(conn.closed) or readable(conn, 0)
            except (OSError, ValueError, psycopg2.Error):
                dead = True
            if not dead:
                return conn
            close_quietly(conn)

    def _check_in(self, conn: psycopg2.extensions.connection, broken: bool, generation: int) -> None:
        idle = not broken and not conn.closed \
            and conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        if idle:
            with self._lock:
                if generation == self._generation and self._pid == os.getpid() \
                        and len(self._idle) < self.max_idle:
                    self._idle.append(conn)
                    return
        if self._pid == os.getpid():
            close_quietly(conn)


def close_quietly(conn: psycopg2.extensions.connection) -> None:
    """Close a connection that may already be broken, ignoring errors."""
    try:
        conn.close()
    except psycopg2.Error:
        pass


def readable(fileobj: Any, timeout: float) -> bool:
    """Whether `fileobj` has data (or end-of-file) to read within `timeout` seconds.

    poll, not select: select fails on descriptors above 1023, and a web process holding
    thousands of streams has those. Under gevent this is gevent's cooperative poll.
    """
    poller = select.poll()
    poller.register(fileobj, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def connect(url: str, autocommit: bool = False, connect_timeout: int = 5,
            application_name: str = "trad") -> psycopg2.extensions.connection:
    """One unpooled connection (LISTEN, migrations, admin work)."""
    register_adapters()
    conn = psycopg2.connect(url, connect_timeout=connect_timeout, application_name=application_name,
                            cursor_factory=psycopg2.extras.RealDictCursor)
    conn.autocommit = autocommit
    return conn


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file of sql/migrations."""

    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def list_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migration files in the order they apply (by their NNN_ prefix)."""
    files = sorted(p for p in directory.glob("[0-9][0-9][0-9]_*.sql"))
    return [Migration(p.stem, p) for p in files]


def applied_migrations(conn: psycopg2.extensions.connection) -> set[str]:
    """Names recorded in schema_migrations; empty when the table does not exist yet."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
        if not cur.fetchone()["present"]:
            return set()
        cur.execute("SELECT name FROM schema_migrations")
        return {row["name"] for row in cur.fetchall()}


def upgrade(url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations not yet recorded, in order; returns the names applied.

    Each file carries its own transaction and records itself in schema_migrations, so
    psql (scripts/migrate.sh) and this runner leave the same schema behind.
    """
    conn = connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            done = applied_migrations(conn)
            applied = []
            for migration in list_migrations(directory):
                if migration.name in done:
                    continue
                log.info("applying migration %s", migration.name)
                with conn.cursor() as cur:
                    cur.execute(migration.sql)
                applied.append(migration.name)
            return applied
        finally:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    finally:
        conn.close()
