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
               "training_job_deletions", "training_batches", "candles")


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
def db(pg_url: str):
    """A pool on the session's database."""
    database = Database(pg_url)
    yield database
    database.close()


@pytest.fixture
def clean_db(db: Database) -> Database:
    """The session's database with every table emptied before the test."""
    with db.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(USER_TABLES)} RESTART IDENTITY CASCADE")
    return db


@pytest.fixture
def redis(settings: Settings):
    """A Redis client; the test's keys must start with `settings.redis_prefix`."""
    client = redis_lib.Redis.from_url(settings.redis_url)
    yield client
    client.close()
