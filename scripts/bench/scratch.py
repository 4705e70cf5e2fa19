"""A scratch PostgreSQL database for a benchmark: created with a random name, migrated, dropped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from trad.db import upgrade

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


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
