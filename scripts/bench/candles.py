"""Time a streamed COPY import and a chunked load of synthetic candles on a scratch database.

Usage: python scripts/bench/candles.py [--candles 1000000] [--admin-url postgresql://postgres@127.0.0.1/postgres]
Creates a database with a random name, migrates it, measures, drops it.
"""

from __future__ import annotations

import argparse
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from trad.data.synthetic import synthetic_candles
from trad.db import Database, upgrade
from trad.store import candles as store


def admin(url: str, sql: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    conn.cursor().execute(sql)
    conn.close()


def timed(label: str, fn) -> float:
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    print(f"{label:<44} {seconds:7.2f} s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"trad_bench_{uuid.uuid4().hex[:8]}"
    admin(args.admin_url, f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(args.admin_url)._replace(path=f"/{name}"))
    try:
        upgrade(url)
        db = Database(url)
        frame = synthetic_candles(args.candles, seed=1)
        n = f"{args.candles:,}"

        def write():
            with db.transaction() as conn:
                store.upsert_candles(conn, "BENCH", "5m", frame)
            with db.connection() as conn:
                store.analyze_candles(conn)

        fresh = timed(f"import {n} candles (one streamed COPY)", write)
        timed(f"re-import {n} candles (upsert over all)", write)
        load = timed(f"load {n} candles (chunked binary COPY)", lambda: store.load_frame(db, "BENCH", "5m"))
        print(f"import rate {args.candles / fresh:,.0f} candles/s; load rate {args.candles / load:,.0f} candles/s")
        db.close()
    finally:
        admin(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
