"""Real-service fixtures: a fresh PostgreSQL database and a Redis key prefix per test session.

Nothing here is mocked. The database gets a random name, is migrated with the same
files as production, and is dropped at the end; Redis keys and RQ queue names carry a
random prefix and are deleted at the end. Point the tests elsewhere with
TRAD_TEST_POSTGRES_URL (a maintenance database the tests may CREATE DATABASE from) and
TRAD_TEST_REDIS_URL. The tests are guests on those servers: a test that restarts or loses
a server does it to private ones it started (`private_services`, tests/private_services.py),
and the last test of every session checks that the shared ones were left as found
(tests/witness.py). Workers' and web servers' output goes to one folder per session under
pytest's temporary directory; figures a test measured go to the end of the report
(`record_property("figure", …)`).
"""

from __future__ import annotations

import functools
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
import redis as redis_lib

from tests import witness
from tests.private_services import service_env
from trad.config import Settings
from trad.db import Database, upgrade
from trad.jobs.queue import forget_tagged_keys

ADMIN_URL = os.environ.get("TRAD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TRAD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

USER_TABLES = ("training_metrics", "training_logs", "trained_configurations", "training_jobs",
               "training_job_deletions", "training_job_deletions_pruned", "training_batches", "candles",
               "backtests")


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
    """A unique key prefix; every key under it, the test queues and their RQ jobs are deleted at the end."""
    prefix = f"trad-test-{run_id}:"
    yield prefix
    client = redis_lib.Redis.from_url(REDIS_URL)
    try:
        forget_tagged_keys(client, f"trad-test-{run_id}")
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
    return service_env(settings)


@pytest.fixture(scope="session")
def app(settings: Settings):
    """One Flask app for the session, like one web process (the API and bad-input tests)."""
    from trad.api import close_app, create_app

    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    close_app(app)


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


def add_job(db: Database, config: dict | None = None, **columns) -> dict:
    """Insert a queued training job row; keyword arguments override columns or config."""
    from trad.store.jobs import insert_job

    fields = {"job_name": "test job", "strategy": "sma_crossover", "symbol": "SYN", "timeframe": "5m",
              "optimizer": "grid", "objective": "sharpe", "config": config or {}, **columns}
    with db.transaction() as conn:
        return insert_job(conn, **fields)


# Candles for a job that something must happen to mid-run (a stop, a database outage): a backtest
# of them takes ~7 ms here, so 600–1,300 episodes last seconds, where on 20,000 candles (~1 ms)
# they end within a second — before a stop sent after the first progress write (0.5 s in tests)
# arrives.
STOPPABLE_SYMBOL, STOPPABLE_CANDLES = "SYNLONG", 200_000


def store_candles(db: Database, symbol: str = "SYN", n: int = 20_000, timeframe: str = "5m", seed: int = 1) -> str:
    """Store deterministic synthetic candles under a symbol (once per symbol and size)."""
    from trad.store.candles import count_candles, import_synthetic

    with db.connection() as conn:
        present = count_candles(conn, symbol, timeframe)
    if present != n:
        import_synthetic(db, symbol, timeframe, n, seed=seed)
    return symbol


@pytest.fixture
def make_job(db: Database):
    """`add_job` on the session's database."""
    return functools.partial(add_job, db)


@pytest.fixture
def candles_of(db: Database):
    """`store_candles` on the session's database."""
    return functools.partial(store_candles, db)


@pytest.fixture
def job_audit(db: Database):
    """Every UPDATE of a training_jobs row, recorded by a trigger: returns a reader of the records."""
    with db.cursor() as cur:
        cur.execute("""
            CREATE TABLE IF NOT EXISTS test_job_audit (
                seq bigserial, job_id bigint, status text, progress float8, version bigint,
                current_episode integer, at timestamptz DEFAULT clock_timestamp());
            TRUNCATE test_job_audit;
            CREATE OR REPLACE FUNCTION test_job_audit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO test_job_audit (job_id, status, progress, version, current_episode)
                VALUES (NEW.id, NEW.status, NEW.progress, NEW.version, NEW.current_episode);
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


class ProcessLogs:
    """Where workers and web servers started by the tests write their output: one folder per
    session under pytest's temporary directory (pytest keeps the last three sessions')."""

    folder: Path | None = None

    @classmethod
    def path(cls, name: str) -> Path:
        if cls.folder is None:
            raise RuntimeError("process logs are only available while pytest runs")
        return cls.folder / f"{name}.log"


@pytest.fixture(scope="session", autouse=True)
def process_logs(tmp_path_factory) -> Path:
    ProcessLogs.folder = tmp_path_factory.mktemp("process-logs")
    return ProcessLogs.folder


def log_tail(path: Path, lines: int = 40) -> str:
    """The end of a process's log, for an assertion message."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return f"--- last lines of {path} ---\n" + "\n".join(text.splitlines()[-lines:])


class WorkerProcess:
    """A real `trad worker` in a subprocess, with its own process group."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        import subprocess
        import sys

        self.name = name
        self.log_path = ProcessLogs.path(name)
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


class Processes:
    """Real workers and web servers one test started with one environment; `stop` ends them all."""

    def __init__(self, env: dict[str, str], tag: str) -> None:
        self.env, self.tag = env, tag
        self.workers: list[WorkerProcess] = []
        self.webs: list[WebProcess] = []

    def worker(self, name: str | None = None) -> WorkerProcess:
        worker = WorkerProcess(self.env, name or f"{self.tag}-w{len(self.workers) + 1}-{uuid.uuid4().hex[:4]}")
        self.workers.append(worker)
        return worker

    def web(self, port: int | None = None, extra_env: dict[str, str] | None = None) -> WebProcess:
        web = WebProcess({**self.env, **(extra_env or {})}, port)
        self.webs.append(web)
        return web

    def stop(self) -> None:
        for process in [*self.webs, *self.workers]:
            process.stop()


@pytest.fixture
def start_worker(env, run_id):
    """Start real workers on the session's queue; all are stopped at the end of the test."""
    processes = Processes(env, f"trad-test-{run_id}")
    yield processes.worker
    processes.stop()


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

        self.log_path = ProcessLogs.path(f"trad-web-{self.port}")
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
        raise RuntimeError(f"trad serve did not start:\n{log_tail(self.log_path)}")

    def stop(self, graceful: bool = False) -> None:
        """gunicorn's quick shutdown (SIGINT), or its graceful one (SIGTERM: open streams get
        up to its graceful timeout, 5 s, to end) as a deploy does."""
        import os
        import signal
        import subprocess

        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM if graceful else signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def start_web(env, run_id):
    """Start real web servers; all are stopped at the end of the test."""
    processes = Processes(env, f"trad-test-{run_id}")
    yield processes.web
    processes.stop()


@pytest.fixture(scope="session")
def private_postgres(run_id):
    """A PostgreSQL cluster of this session alone, started by the first test that needs it."""
    from tests.private_services import private_cluster

    with private_cluster(f"trad-test-{run_id}-pg") as cluster:
        yield cluster


@pytest.fixture
def private_services(private_postgres, run_id):
    """A database and a Redis of this test alone on private servers, with settings, environment
    and a pool on them (tests/private_services.py): for tests that restart or lose a server."""
    from tests.private_services import private_servers

    with private_servers(private_postgres, f"trad-test-{run_id}-{uuid.uuid4().hex[:4]}") as servers:
        yield servers


@pytest.fixture
def private_processes(private_services):
    """Real workers (`.worker()`) and web servers (`.web()`) on the test's private servers."""
    processes = Processes(private_services.env, private_services.settings.queue)
    yield processes
    processes.stop()


# The tests are guests on the shared servers: the witness (tests/witness.py) and the report.

def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "last: runs after every other test of the session")


def pytest_sessionstart(session) -> None:
    """Plant the witness in the shared servers and make sure its check runs in this session."""
    session.config.stash[witness.PLANTED] = witness.plant(REDIS_URL, ADMIN_URL)
    witness.include_check(session.config)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items) -> None:
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)  # stable: others keep their order


def pytest_sessionfinish(session) -> None:
    witness.remove(REDIS_URL, session.config.stash.get(witness.PLANTED, None))


def pytest_terminal_summary(terminalreporter) -> None:
    """Figures the tests measured (`record_property("figure", text)`), after the dots, not among them."""
    figures = [(report.nodeid, value) for reports in terminalreporter.stats.values() for report in reports
               for name, value in getattr(report, "user_properties", ()) if name == "figure"
               and getattr(report, "when", None) == "call"]
    if figures:
        terminalreporter.section("figures measured")
        for nodeid, value in figures:
            terminalreporter.write_line(f"{nodeid}: {value}")
