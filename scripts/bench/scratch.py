"""Scratch services for a benchmark: a PostgreSQL database created with a random name, migrated
and dropped; what a tagged run left in the shared Redis, forgotten."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import redis

from trad.db import upgrade
from trad.jobs.queue import forget_tagged_keys

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _admin(admin_url: str, statement: str) -> None:
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    conn.cursor().execute(statement)
    conn.close()


@contextmanager
def scratch_database(admin_url: str = ADMIN_URL) -> Iterator[str]:
    """The URL of a fresh, migrated database `trad_bench_<random>`, dropped afterwards."""
    name = f"trad_bench_{uuid.uuid4().hex[:8]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
        upgrade(url)
        yield url
    finally:
        _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def forget_redis(tag: str, redis_url: str | None = None) -> None:
    """Delete what a bench run tagged `tag` (its key prefix and queue names start with it) left in
    Redis, its RQ jobs and their results included; nothing else is touched."""
    client = redis.Redis.from_url(redis_url or os.environ.get("TRAD_REDIS_URL") or REDIS_URL)
    try:
        forget_tagged_keys(client, tag)
    finally:
        client.close()
