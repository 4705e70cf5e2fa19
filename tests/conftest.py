"""Real-service fixtures: a fresh PostgreSQL database and a Redis key prefix per test session.

Nothing here is mocked. The database gets a random name, is migrated with the same
files as production, and is dropped at the end; Redis keys and RQ queue names carry a
random prefix and are deleted at the end. Point the tests elsewhere with
TRAD_TEST_POSTGRES_URL (a maintenance database the tests may CREATE DATABASE from) and
TRAD_TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
import redis as redis_lib

from trad.config import Settings
from trad.db import Database, upgrade

ADMIN_URL = os.environ.get("TRAD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TRAD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

USER_TABLES = ("training_metrics", "training_logs", "trained_configurations", "training_jobs",
               "training_job_deletions", "training_job_deletions_pruned", "training_batches", "candles")


def database_url(name: str) -> str:
    """The admin URL with its database name replaced."""
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(name: str) -> str:
    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return database_url(name)


def drop_database(name: str) -> None:
    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture(scope="session")
def run_id() -> str:
    """A random tag for this test session's database, keys and queues."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def pg_url(run_id: str):
    """A freshly created and migrated database, dropped when the session ends."""
    name = f"trad_test_{run_id}"
    url = create_database(name)
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(name)


@pytest.fixture(scope="session")
def redis_prefix(run_id: str):
    """A unique key prefix; every key under it (and the test queues) is deleted at the end."""
    prefix = f"trad-test-{run_id}:"
    yield prefix
    client = redis_lib.Redis.from_url(REDIS_URL)
    try:
        for pattern in (f"{prefix}*", f"rq:*trad-test-{run_id}*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="session")
def settings(pg_url: str, redis_prefix: str, run_id: str) -> Settings:
    """Settings pointing at this session's database, Redis prefix and queue."""
    return Settings(database_url=pg_url, redis_url=REDIS_URL, queue=f"trad-test-{run_id}",
                    redis_prefix=redis_prefix, progress_interval=0.5)


@pytest.fixture(scope="session")
def env(settings: Settings) -> dict[str, str]:
    """The environment a subprocess needs to use this session's services."""
    return {**os.environ,
            "TRAD_DATABASE_URL": settings.database_url,
            "TRAD_REDIS_URL": settings.redis_url,
            "TRAD_QUEUE": settings.queue,
            "TRAD_REDIS_PREFIX": settings.redis_prefix,
            "TRAD_PROGRESS_INTERVAL": str(settings.progress_interval)}


@pytest.fixture(scope="session")
def app(settings: Settings):
    """One Flask app for the session, like one web process (the API and bad-input tests)."""
    from trad.api import create_app
    from trad.api.services import services

    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    with app.app_context():
        services().close()


@pytest.fixture(scope="session")
def db(pg_url: str):
    """A pool on the session's database."""
    database = Database(pg_url)
    yield database
    database.close()


@pytest.fixture
def clean_db(db: Database, settings: Settings) -> Database:
    """The session's database with every table emptied before the test (job ids start at 1
    again, so the session's stop flags in Redis go too)."""
    with db.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(USER_TABLES)} RESTART IDENTITY CASCADE")
    client = redis_lib.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{settings.redis_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
    return db


@pytest.fixture
def redis(settings: Settings):
    """A Redis client; the test's keys must start with `settings.redis_prefix`."""
    client = redis_lib.Redis.from_url(settings.redis_url)
    yield client
    client.close()


@pytest.fixture
def make_job(db: Database):
    """Insert a queued training job row; keyword arguments override columns or config."""
    from trad.store.jobs import insert_job

    def make(config: dict | None = None, **columns) -> dict:
        fields = {"job_name": "test job", "strategy": "sma_crossover", "symbol": "SYN", "timeframe": "5m",
                  "optimizer": "grid", "objective": "sharpe", "config": config or {}, **columns}
        with db.transaction() as conn:
            return insert_job(conn, **fields)

    return make


@pytest.fixture
def candles_of(db: Database):
    """Store deterministic synthetic candles under a symbol (once per symbol and size)."""
    from trad.store.candles import count_candles, import_synthetic

    def store(symbol: str = "SYN", n: int = 20_000, timeframe: str = "5m", seed: int = 1) -> str:
        with db.connection() as conn:
            present = count_candles(conn, symbol, timeframe)
        if present != n:
            import_synthetic(db, symbol, timeframe, n, seed=seed)
        return symbol

    return store


@pytest.fixture
def job_audit(db: Database):
    """Every UPDATE of a training_jobs row, recorded by a trigger: returns a reader of the records."""
    with db.cursor() as cur:
        cur.execute("""
            CREATE TABLE IF NOT EXISTS test_job_audit (
                seq bigserial, job_id bigint, status text, progress float8, version bigint,
                at timestamptz DEFAULT clock_timestamp());
            TRUNCATE test_job_audit;
            CREATE OR REPLACE FUNCTION test_job_audit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO test_job_audit (job_id, status, progress, version)
                VALUES (NEW.id, NEW.status, NEW.progress, NEW.version);
                RETURN NEW;
            END $$;
            CREATE OR REPLACE TRIGGER test_job_audit AFTER UPDATE ON training_jobs
                FOR EACH ROW EXECUTE FUNCTION test_job_audit();""")

    def records(job_id: int) -> list[dict]:
        with db.cursor() as cur:
            cur.execute("SELECT * FROM test_job_audit WHERE job_id = %s ORDER BY seq", (job_id,))
            return [dict(r) for r in cur.fetchall()]

    yield records
    with db.cursor() as cur:
        cur.execute("DROP TRIGGER IF EXISTS test_job_audit ON training_jobs; "
                    "DROP FUNCTION IF EXISTS test_job_audit(); DROP TABLE IF EXISTS test_job_audit;")


class WorkerProcess:
    """A real `trad worker` in a subprocess, with its own process group."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        import subprocess
        import sys

        self.name = name
        self.log_path = f"/tmp/{name}.log"
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "trad", "worker", "--name", name], env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def horse_pids(self) -> list[int]:
        """The work horse(s): RQ forks one per job into its own process group."""
        import subprocess

        found = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in found.split()]

    def kill(self, sig: int | None = None) -> None:
        """Signal the worker and its work horses, as when their machine dies; SIGKILL by default."""
        import os
        import signal

        for group in [*self.horse_pids(), self.process.pid]:
            try:
                os.killpg(group, sig or signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=10)
        except Exception:
            pass

    def stop(self) -> None:
        import os
        import signal
        import subprocess

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # warm shutdown: the running job finishes
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture
def start_worker(env, run_id):
    """Start real workers on the session's queue; all are stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def start(name: str | None = None) -> WorkerProcess:
        worker = WorkerProcess(env, name or f"trad-test-{run_id}-w{len(started) + 1}-{uuid.uuid4().hex[:4]}")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebProcess:
    """A real `trad serve` (gunicorn + gevent) in a subprocess."""

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.env, self.port = env, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.start()

    def start(self, timeout: float = 30.0) -> None:
        import subprocess
        import sys
        import time

        import requests

        self.log_path = f"/tmp/trad-web-{self.port}.log"
        self._log = open(self.log_path, "a")
        self.process = subprocess.Popen([sys.executable, "-m", "trad", "serve", "--port", str(self.port)],
                                        env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                requests.get(f"{self.url}/api/v1/health", timeout=max(1.0, end - time.monotonic()))
                return
            except (requests.ConnectionError, requests.Timeout):
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"trad serve did not start:\n{open(self.log_path).read()}")

    def stop(self) -> None:
        import os
        import signal
        import subprocess

        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def start_web(env):
    """Start real web servers; all are stopped at the end of the test."""
    started: list[WebProcess] = []

    def start(port: int | None = None, extra_env: dict[str, str] | None = None) -> WebProcess:
        web = WebProcess({**env, **(extra_env or {})}, port)
        started.append(web)
        return web

    yield start
    for web in started:
        web.stop()
