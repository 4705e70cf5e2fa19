"""SQL of `backtests` and `backtest_trades`: stored backtests, their trades by fold.

A backtest saved with a trained configuration lives as long as that configuration (not its
job); an ad-hoc one (`POST /api/v1/backtests`) is kept ADHOC_KEEP, at most ADHOC_MAX of them.
Trades are written with one COPY and read by page, by time range, or whole as CSV (COPY, in
chunks, so a long list never sits in memory at once).
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd
from psycopg2.extensions import connection as Connection

from trad.backtest.simulation import EXIT_REASONS
from trad.db import Database
from trad.store import SafeJson as Json
from trad.store.candles import PG_EPOCH_US, PGCOPY_HEADER, PGCOPY_TRAILER

ADHOC_KEEP = "1 day"
ADHOC_MAX = 200
CSV_CHUNK = 20_000
SUMMARY_COLUMNS = """id, kind, trained_configuration_id, training_job_id, strategy, symbol, timeframe, params,
                     objective, score, settings, data_start, data_end, candles, metrics, trades_stored, created_at"""
TRADE_FIELDS = ("entry_time", "exit_time", "entry_price", "exit_price", "units", "pnl", "return_pct",
                "exit_reason", "candles_held")
# exit_reason is stored as its position in EXIT_REASONS (a smallint: binary COPY wants fixed-width rows)
EXIT_REASON = f"(ARRAY[{', '.join(repr(r) for r in EXIT_REASONS)}])[exit_reason + 1] AS exit_reason"
TRADE_COLUMNS = ", ".join(TRADE_FIELDS).replace("exit_reason", EXIT_REASON)
JSON_COLUMNS = ("params", "settings", "metrics", "equity", "overview", "folds")
STORED_COLUMNS = ("strategy", "symbol", "timeframe", "params", "objective", "score", "settings", "data_start",
                  "data_end", "candles", "metrics", "equity", "overview", "folds")


def insert_backtest(conn: Connection, columns: Mapping[str, Any], trades: Mapping[int, pd.DataFrame], kind: str, *,
                    trained_configuration_id: int | None = None, training_job_id: int | None = None) -> int:
    """Store a backtest (`columns`: STORED_COLUMNS) and its trades by fold (frames of TRADE_FIELDS); returns its id."""
    values = [Json(columns[name]) if name in JSON_COLUMNS else columns[name] for name in STORED_COLUMNS]
    with conn.cursor() as cur:
        cur.execute(
            f"""INSERT INTO backtests (kind, trained_configuration_id, training_job_id, trades_stored,
                                       {", ".join(STORED_COLUMNS)})
                VALUES (%s, %s, %s, %s, {", ".join(["%s"] * len(STORED_COLUMNS))}) RETURNING id""",
            (kind, trained_configuration_id, training_job_id, len(trades.get(0, ())), *values))
        backtest_id = int(cur.fetchone()["id"])
        for fold, frame in trades.items():
            _copy_trades(cur, backtest_id, fold, frame)
    return backtest_id


def _copy_trades(cur: Any, backtest_id: int, fold: int, trades: pd.DataFrame) -> None:
    """One binary COPY of a fold's trades (100,000 in ~0.2 s; text COPY took 3 s to format)."""
    if not len(trades):
        return
    n = len(trades)
    columns = [("backtest_id", ">i8", backtest_id), ("fold", ">i4", fold), ("seq", ">i4", np.arange(1, n + 1))]
    for name in ("entry_time", "exit_time"):
        columns.append((name, ">i8", trades[name].dt.as_unit("us").astype("int64").to_numpy() - PG_EPOCH_US))
    columns += [(name, ">f8", trades[name].to_numpy(dtype=float)) for name in TRADE_FIELDS[2:7]]
    reasons = pd.Categorical(trades["exit_reason"], categories=EXIT_REASONS).codes
    columns += [("exit_reason", ">i2", reasons), ("candles_held", ">i4", trades["candles_held"].to_numpy())]
    block = np.empty(n, dtype=[("fields", ">i2")] + [field for name, kind, _ in columns
                                                     for field in ((f"len_{name}", ">i4"), (name, kind))])
    block["fields"] = len(columns)
    for name, kind, values in columns:
        block[f"len_{name}"], block[name] = np.dtype(kind).itemsize, values
    payload = io.BytesIO(PGCOPY_HEADER + block.tobytes() + PGCOPY_TRAILER)
    cur.copy_expert(f"COPY backtest_trades (backtest_id, fold, seq, {', '.join(TRADE_FIELDS)}) "
                    "FROM STDIN WITH (FORMAT binary)", payload)


def get_backtest(conn: Connection, backtest_id: int, overview: bool = False) -> dict | None:
    """A stored backtest with its curves and folds (its candles' overview only if asked: 140 kB of JSON
    to parse), not its trades, and whether its job still exists."""
    columns = "b.*" if overview else "b.id, b.kind, " + ", ".join(
        f"b.{name}" for name in ("trained_configuration_id", "training_job_id", "trades_stored", "created_at",
                                 *STORED_COLUMNS) if name != "overview")
    with conn.cursor() as cur:
        cur.execute(f"""SELECT {columns}, EXISTS (SELECT 1 FROM training_jobs j WHERE j.id = b.training_job_id)
                                AS job_exists FROM backtests b WHERE b.id = %s""", (backtest_id,))
        row = cur.fetchone()
        return dict(row) if row else None


def job_backtest_id(conn: Connection, job_id: int) -> int | None:
    """The backtest a training job saved with its configuration (the newest, after a resume)."""
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM backtests WHERE training_job_id = %s AND kind = 'trained' ORDER BY id DESC LIMIT 1",
                    (job_id,))
        row = cur.fetchone()
        return int(row["id"]) if row else None


def count_trades(conn: Connection, backtest_id: int, fold: int) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM backtest_trades WHERE backtest_id = %s AND fold = %s",
                    (backtest_id, fold))
        return int(cur.fetchone()["n"])


def trade_page(conn: Connection, backtest_id: int, fold: int, offset: int, limit: int) -> list[dict]:
    """Trades of one fold (0: the whole range) in time order, numbered from 1."""
    with conn.cursor() as cur:
        cur.execute(f"""SELECT seq AS number, {TRADE_COLUMNS} FROM backtest_trades
                         WHERE backtest_id = %s AND fold = %s ORDER BY seq OFFSET %s LIMIT %s""",
                    (backtest_id, fold, offset, limit))
        return [dict(row) for row in cur.fetchall()]


def trades_between(conn: Connection, backtest_id: int, start: datetime, end: datetime, limit: int) -> list[dict]:
    """Trades of the whole range open at any moment in [start, end] (the first `limit`), times in Unix seconds."""
    with conn.cursor() as cur:
        cur.execute(f"""SELECT seq AS number, extract(epoch FROM entry_time)::bigint AS entry_time,
                              extract(epoch FROM exit_time)::bigint AS exit_time, entry_price, exit_price, pnl,
                              return_pct, {EXIT_REASON}
                         FROM backtest_trades
                        WHERE backtest_id = %s AND fold = 0 AND exit_time >= %s AND entry_time <= %s
                        ORDER BY seq LIMIT %s""", (backtest_id, start, end, limit))
        return [dict(row) for row in cur.fetchall()]


def trades_csv(db: Database, backtest_id: int, fold: int) -> Iterator[bytes]:
    """Every trade of one fold as CSV with a header row, in chunks of CSV_CHUNK trades (PostgreSQL
    formats them; each chunk is its own short query, so a slow reader holds no connection)."""
    columns = f"seq AS number, {TRADE_COLUMNS}"
    after, header = 0, True
    while True:
        buffer = io.BytesIO()
        with db.connection() as conn, conn.cursor() as cur:
            cur.execute("SET LOCAL TimeZone = 'UTC'")
            query = cur.mogrify(f"""SELECT {columns} FROM backtest_trades
                                     WHERE backtest_id = %s AND fold = %s AND seq > %s ORDER BY seq LIMIT %s""",
                                (backtest_id, fold, after, CSV_CHUNK)).decode()
            cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv{', HEADER' if header else ''})", buffer)
            rows = cur.rowcount
        yield buffer.getvalue()
        if rows < CSV_CHUNK:
            return
        after, header = after + CSV_CHUNK, False


def purge_adhoc(conn: Connection) -> int:
    """Forget ad-hoc backtests older than ADHOC_KEEP, and all but the newest ADHOC_MAX."""
    with conn.cursor() as cur:
        cur.execute(f"""DELETE FROM backtests WHERE kind = 'adhoc'
                          AND (created_at < now() - interval '{ADHOC_KEEP}'
                               OR id NOT IN (SELECT id FROM backtests WHERE kind = 'adhoc'
                                              ORDER BY id DESC LIMIT %s))""", (ADHOC_MAX,))
        return cur.rowcount


def trade_summary(conn: Connection, backtest_id: int, fold: int = 0) -> dict:
    """Of a fold's stored trades: how many, how many won, best and worst return, mean candles held,
    and how many ended for each exit reason."""
    with conn.cursor() as cur:
        cur.execute("""SELECT count(*) AS trades, count(*) FILTER (WHERE pnl > 0) AS won, max(return_pct) AS best,
                              min(return_pct) AS worst, avg(candles_held)::float8 AS held
                         FROM backtest_trades WHERE backtest_id = %s AND fold = %s""", (backtest_id, fold))
        summary = dict(cur.fetchone())
        cur.execute(f"""SELECT {EXIT_REASON}, count(*) AS n FROM backtest_trades
                         WHERE backtest_id = %s AND fold = %s GROUP BY 1 ORDER BY 2 DESC""", (backtest_id, fold))
        summary["exit_reasons"] = {row["exit_reason"]: int(row["n"]) for row in cur.fetchall()}
    return summary
