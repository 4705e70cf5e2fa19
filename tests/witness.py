"""A witness in the shared servers: proof that a test session left them as it found them.

At session start (tests/conftest.py) a sentinel key is written into the shared Redis
outside every test prefix, as another application's key would be, with a value and a TTL;
Redis's run_id (new on every restart) and PostgreSQL's pg_postmaster_start_time() are
read. The last test of the session (tests/test_guest.py) reads them again: a restart,
shutdown, flush or a cleanup that deletes keys it did not create shows there. The key is
removed when the session ends (and expires by itself an hour later if the session dies).
The check joins every session, whichever tests it was asked to run.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg2
import pytest
import redis as redis_lib

SENTINEL_TTL = 3600  # seconds
CHECK = Path(__file__).resolve().parent / "test_guest.py"
CHECK_NAME = "test_the_shared_servers_are_as_the_session_found_them"


@dataclass(frozen=True)
class Witness:
    """What the shared servers looked like at session start (`error` when they could not be read)."""

    sentinel_key: str = ""
    sentinel_value: str = ""
    planted_at: float = 0.0  # time.monotonic()
    redis_run_id: str = ""
    postmaster_started: datetime | None = None
    error: str = ""


PLANTED = pytest.StashKey[Witness]()


def redis_run_id(client: redis_lib.Redis) -> str:
    return client.info("server")["run_id"]


def postmaster_started(admin_url: str) -> datetime:
    conn = psycopg2.connect(admin_url, connect_timeout=5, application_name="trad-test-witness")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_postmaster_start_time()")
            return cur.fetchone()[0]
    finally:
        conn.close()


def plant(redis_url: str, admin_url: str) -> Witness:
    """Write the sentinel key and read both servers' start marks."""
    token = uuid.uuid4().hex
    try:
        client = redis_lib.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=10)
        try:
            key = f"guest-app:sentinel:{token[:12]}"
            client.set(key, token, ex=SENTINEL_TTL)
            planted_at = time.monotonic()
            run_id = redis_run_id(client)
        finally:
            client.close()
        return Witness(key, token, planted_at, run_id, postmaster_started(admin_url))
    except (redis_lib.RedisError, psycopg2.Error) as exc:
        return Witness(error=f"{type(exc).__name__}: {exc}".strip())


def changes(planted: Witness, redis_url: str, admin_url: str) -> list[str]:
    """What differs from the session start; empty when the servers were left alone."""
    client = redis_lib.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=10)
    try:
        value, ttl, run_id = client.get(planted.sentinel_key), client.ttl(planted.sentinel_key), redis_run_id(client)
    finally:
        client.close()
    expected_ttl = SENTINEL_TTL - (time.monotonic() - planted.planted_at)
    found = []
    if value != planted.sentinel_value.encode():
        found.append(f"another application's key in Redis was deleted or changed (now {value!r})")
    elif not expected_ttl - 2 <= ttl <= expected_ttl + 2:
        found.append(f"another application's key in Redis has another TTL: {ttl} s, not {expected_ttl:.0f} s")
    if run_id != planted.redis_run_id:
        found.append("Redis was restarted (its run_id changed)")
    if postmaster_started(admin_url) != planted.postmaster_started:
        found.append("PostgreSQL was restarted (pg_postmaster_start_time() changed)")
    return found


def remove(redis_url: str, planted: Witness | None) -> None:
    if planted is None or not planted.sentinel_key:
        return
    client = redis_lib.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=10)
    try:
        client.delete(planted.sentinel_key)
    except redis_lib.RedisError:
        pass  # it expires by itself
    finally:
        client.close()


def include_check(config: pytest.Config) -> None:
    """Add the witness's check to a run that named other tests (`pytest tests/reliability`)."""
    for arg in config.args:
        path, _, name = arg.partition("::")
        target = (config.invocation_params.dir / path).resolve()
        if target in CHECK.parents or (target == CHECK and name in ("", CHECK_NAME)):
            return
    config.args.append(f"{CHECK}::{CHECK_NAME}")
