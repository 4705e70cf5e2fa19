"""The connection pool and the readiness check, with more than 1,023 descriptors open.

A web process holding thousands of SSE streams has descriptors above 1023, where select()
fails; these tests open that many first.
"""

from __future__ import annotations

import os
import resource
import socket
import time

import pytest

from trad.db import Database, readable


@pytest.fixture
def crowded():
    """Some 1,100 descriptors held open, so the next ones opened are above 1023."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        if hard != resource.RLIM_INFINITY and hard < 2048:
            pytest.skip(f"the descriptor limit ({hard}) is too low")
        resource.setrlimit(resource.RLIMIT_NOFILE, (2048, hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    yield
    for fd in held:
        os.close(fd)


def backend_pid(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid() AS pid")
        return cur.fetchone()["pid"]


def test_readable_works_above_descriptor_1023(crowded):
    near, far = socket.socketpair()
    with near, far:
        assert near.fileno() > 1023
        assert not readable(near, 0)
        far.sendall(b"x")
        assert readable(near, 0.5)
        near.recv(1)
        far.close()
        assert readable(near, 0.5) and near.recv(1) == b""


def test_a_pooled_connection_above_descriptor_1023_is_reused(crowded, pg_url):
    db = Database(pg_url, max_connections=2)
    try:
        with db.connection() as conn:
            assert conn.fileno() > 1023
            first = backend_pid(conn)
        with db.connection() as conn:
            assert backend_pid(conn) == first, "a live connection was taken for dead"
    finally:
        db.close()


def test_a_connection_the_server_closed_is_replaced_without_an_error(crowded, pg_url):
    db = Database(pg_url, max_connections=2)
    try:
        with db.connection() as conn:
            first = backend_pid(conn)
        admin = Database(pg_url, max_connections=1)
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (first,))
        for _ in range(100):  # the backend ends a moment after it is signalled
            with admin.cursor() as cur:
                cur.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE pid = %s", (first,))
                if cur.fetchone()["n"] == 0:
                    break
            time.sleep(0.02)
        admin.close()
        with db.connection() as conn:
            assert backend_pid(conn) != first
    finally:
        db.close()


def test_a_forked_child_uses_its_own_connections_and_leaves_the_parents_alone(pg_url):
    db = Database(pg_url, max_connections=2)
    try:
        with db.connection() as conn:
            parent_pid = backend_pid(conn)
        reader, writer = os.pipe()
        child = os.fork()
        if child == 0:  # the child: report its backend pid, exit without cleanup
            try:
                with db.connection() as conn:
                    os.write(writer, str(backend_pid(conn)).encode())
            finally:
                os._exit(0)
        os.close(writer)
        child_pid = int(os.read(reader, 32) or 0)
        os.waitpid(child, 0)
        os.close(reader)
        assert child_pid and child_pid != parent_pid
        with db.connection() as conn:
            assert backend_pid(conn) == parent_pid, "the parent's idle connection survived the child"
    finally:
        db.close()


def test_connections_in_use_at_close_are_not_kept(pg_url):
    db = Database(pg_url, max_connections=2)
    with db.connection() as conn:
        db.close()
    assert conn.closed
    with db.connection() as again:
        assert again is not conn
    db.close()
    assert again.closed


def test_at_most_max_idle_connections_are_kept(pg_url):
    db = Database(pg_url, max_connections=6, max_idle=2)
    try:
        with db.connection() as a, db.connection() as b, db.connection() as c:
            held = [a, b, c]
        assert sum(not conn.closed for conn in held) == 2
    finally:
        db.close()


def test_a_dict_holding_nan_or_infinity_is_stored_as_json_with_nulls(pg_url):
    import numpy as np

    db = Database(pg_url, max_connections=1)
    try:
        with db.connection() as conn, conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE scores (metrics jsonb NOT NULL)")
            cur.execute("INSERT INTO scores (metrics) VALUES (%s)",
                        ({"sharpe": float("nan"), "profit_factor": float("inf"), "sortino": np.float64("-inf"),
                          "trades": np.int64(3), "win_rate": 0.5, "folds": [float("nan"), 1.0]},))
            cur.execute("SELECT metrics, metrics::text AS text FROM scores")
            row = cur.fetchone()
        assert row["metrics"] == {"sharpe": None, "profit_factor": None, "sortino": None, "trades": 3,
                                  "win_rate": 0.5, "folds": [None, 1.0]}
        assert "NaN" not in row["text"] and "Infinity" not in row["text"]
    finally:
        db.close()
