"""SQL of the `candles` table: streamed upsert with COPY, chunked loads, summaries."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
from psycopg2.extensions import connection as Connection

from trad.data.frames import CANDLE_COLUMNS, TIMEFRAMES, empty_candles
from trad.data.importer import EARLIEST, LATEST, read_candles_csv, validate_symbol
from trad.data.synthetic import synthetic_candles
from trad.db import Database
from trad.errors import InvalidInput
from trad.store.filters import where

COPY_CHUNK_ROWS = 100_000
LOAD_CHUNK_ROWS = 100_000


PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8   # signature, flags, no extension
PGCOPY_TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800 * 1_000_000  # PostgreSQL counts time from 2000-01-01 UTC


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks, so COPY streams without one big buffer."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _row_dtype(leading_text: tuple[bytes, ...] = ()) -> np.dtype:
    """Binary COPY row layout: field count, then (length, value) per field, big-endian."""
    fields = [("fields", ">i2")]
    for i, text in enumerate(leading_text):
        fields += [(f"len_t{i}", ">i4"), (f"text{i}", f"S{len(text)}")]
    fields += [("len_ts", ">i4"), ("ts", ">i8")]
    for column in CANDLE_COLUMNS[1:]:
        fields += [(f"len_{column}", ">i4"), (column, ">f8")]
    return np.dtype(fields)


def _binary_chunks(frame: pd.DataFrame, rows: int, leading_text: tuple[bytes, ...] = ()) -> Iterator[bytes]:
    """The frame in PostgreSQL's binary COPY format, a slice of rows at a time."""
    dtype = _row_dtype(leading_text)
    micros = frame["timestamp"].dt.as_unit("us").astype("int64").to_numpy() - PG_EPOCH_US
    yield PGCOPY_HEADER
    for start in range(0, len(frame), rows):
        stop = min(start + rows, len(frame))
        block = np.empty(stop - start, dtype=dtype)
        block["fields"] = len(leading_text) + len(CANDLE_COLUMNS)
        for i, text in enumerate(leading_text):
            block[f"len_t{i}"], block[f"text{i}"] = len(text), text
        block["len_ts"], block["ts"] = 8, micros[start:stop]
        for column in CANDLE_COLUMNS[1:]:
            block[f"len_{column}"] = 8
            block[column] = frame[column].to_numpy(dtype="float64")[start:stop]
        yield block.tobytes()
    yield PGCOPY_TRAILER


def _copy_in(cur, table_and_columns: str, chunks: Iterable[bytes]) -> None:
    cur.copy_expert(f"COPY {table_and_columns} FROM STDIN WITH (FORMAT binary)",
                    io.BufferedReader(_ChunkReader(chunks), 1 << 20))


def upsert_candles(conn: Connection, symbol: str, timeframe: str, frame: pd.DataFrame,
                   chunk_rows: int = COPY_CHUNK_ROWS) -> int:
    """Write candles with one streamed binary COPY; rows at an existing time are replaced.

    When the new candles overlap none already stored they are copied straight into the
    table; otherwise through a temporary table and INSERT … ON CONFLICT. Runs inside the
    caller's transaction: on any error nothing is written.
    """
    if frame.empty:
        return 0
    first, last = (frame["timestamp"].iloc[i].to_pydatetime() for i in (0, -1))
    with conn.cursor() as cur:
        if count_candles(conn, symbol, timeframe, first, last) == 0:
            text = (symbol.encode(), timeframe.encode())
            _copy_in(cur, "candles (symbol, timeframe, ts, open, high, low, close, volume)",
                     _binary_chunks(frame, chunk_rows, text))
            return len(frame)
        cur.execute("CREATE TEMP TABLE candles_import (ts timestamptz, open float8, high float8, "
                    "low float8, close float8, volume float8) ON COMMIT DROP")
        _copy_in(cur, "candles_import", _binary_chunks(frame, chunk_rows))
        cur.execute(
            """
            INSERT INTO candles (symbol, timeframe, ts, open, high, low, close, volume)
            SELECT %s, %s, ts, open, high, low, close, volume FROM candles_import
            ON CONFLICT (symbol, timeframe, ts) DO UPDATE
               SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low,
                   close = EXCLUDED.close, volume = EXCLUDED.volume
            """,
            (symbol, timeframe))
        cur.execute("DROP TABLE candles_import")
        return len(frame)


def analyze_candles(conn: Connection) -> None:
    """Refresh the planner's statistics after a large import, so range loads use the index."""
    with conn.cursor() as cur:
        cur.execute("ANALYZE candles")


def _range_clause(symbol: str, timeframe: str, start: datetime | None, end: datetime | None) -> tuple[str, list]:
    """The WHERE of a series' candles in [start, end], either end open when None. The series is
    never optional: a missing symbol or timeframe is an error, not a load of every series."""
    if not symbol or not timeframe:
        raise ValueError(f"a series needs a symbol and a timeframe, not {symbol!r} and {timeframe!r}")
    return where(("symbol = %s", symbol), ("timeframe = %s", timeframe), ("ts >= %s", start), ("ts <= %s", end))


def count_candles(conn: Connection, symbol: str, timeframe: str,
                  start: datetime | None = None, end: datetime | None = None) -> int:
    """How many candles a load of this range would return."""
    clause, params = _range_clause(symbol, timeframe, start, end)
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) AS n FROM candles {clause}", params)
        return int(cur.fetchone()["n"])


def _copy_frame(conn: Connection, query: str, params: list) -> pd.DataFrame:
    """Run a SELECT of (ts, open, high, low, close, volume) through binary COPY TO STDOUT."""
    buffer = io.BytesIO()
    with conn.cursor() as cur:
        cur.copy_expert(f"COPY ({cur.mogrify(query, params).decode()}) TO STDOUT WITH (FORMAT binary)", buffer)
    body = buffer.getbuffer()[len(PGCOPY_HEADER):-len(PGCOPY_TRAILER)]
    rows = np.frombuffer(body, dtype=_row_dtype())
    if len(rows) == 0:
        return empty_candles()
    frame = pd.DataFrame({"timestamp": pd.to_datetime(rows["ts"].astype("int64") + PG_EPOCH_US, unit="us", utc=True)})
    for column in CANDLE_COLUMNS[1:]:
        frame[column] = rows[column].astype("float64")
    return frame


def load_candles(conn: Connection, symbol: str, timeframe: str,
                 start: datetime | None = None, end: datetime | None = None,
                 chunk_rows: int = LOAD_CHUNK_ROWS,
                 progress_callback: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Candles of a symbol and timeframe in [start, end], oldest first, read a chunk at a time.

    `progress_callback(loaded, total)` is called after each chunk.
    """
    total = count_candles(conn, symbol, timeframe, start, end)
    clause, params = _range_clause(symbol, timeframe, start, end)
    chunks, loaded, after = [], 0, None
    while loaded < total or not chunks:
        keyset = " AND ts > %s" if after is not None else ""
        chunk = _copy_frame(conn, f"SELECT ts, open, high, low, close, volume FROM candles {clause}{keyset} "
                                  "ORDER BY ts LIMIT %s",
                            [*params, *([after] if after is not None else []), chunk_rows])
        if chunk.empty:
            break
        chunks.append(chunk)
        loaded += len(chunk)
        after = chunk["timestamp"].iloc[-1].to_pydatetime()
        if progress_callback is not None:
            progress_callback(loaded, max(total, loaded))
    if not chunks:
        if progress_callback is not None:
            progress_callback(0, 0)
        return empty_candles()
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def candle_summary(conn: Connection, symbol: str | None = None) -> list[dict]:
    """Per symbol and timeframe: candle count, first and last time (from `candle_series`, which
    triggers on `candles` keep: a row a series, not a count of every candle)."""
    where, params = ("WHERE symbol = %s", [symbol]) if symbol else ("", [])
    with conn.cursor() as cur:
        cur.execute(f"""
            SELECT symbol, timeframe, candles, first, last
              FROM candle_series {where}
             ORDER BY symbol, timeframe""", params)
        return [dict(row) for row in cur.fetchall()]


def delete_candles(conn: Connection, symbol: str, timeframe: str | None = None) -> int:
    """Remove a symbol's candles (one timeframe or all); returns the rows deleted."""
    with conn.cursor() as cur:
        if timeframe is None:
            cur.execute("DELETE FROM candles WHERE symbol = %s", (symbol,))
        else:
            cur.execute("DELETE FROM candles WHERE symbol = %s AND timeframe = %s", (symbol, timeframe))
        return cur.rowcount


def validate_timeframe(timeframe: str) -> str:
    """One of 1m 5m 15m 30m 1h 4h 1d, else InvalidInput."""
    if timeframe not in TIMEFRAMES:
        raise InvalidInput.field("timeframe", f"unknown timeframe {timeframe!r}; choose one of {', '.join(TIMEFRAMES)}")
    return timeframe


def import_csv(db: Database, path: str | Path, symbol: str, timeframe: str) -> int:
    """Parse and check the whole file, then upsert it in one transaction; returns the candles written."""
    validate_symbol(symbol)
    validate_timeframe(timeframe)
    frame = read_candles_csv(path)
    return _store_frame(db, symbol, timeframe, frame)


def import_synthetic(db: Database, symbol: str, timeframe: str, candles: int, seed: int = 0,
                     start: str | None = None) -> int:
    """Generate deterministic candles and upsert them; returns the candles written."""
    validate_symbol(symbol)
    validate_timeframe(timeframe)
    if candles < 1:
        raise InvalidInput.field("candles", "must be >= 1")
    try:
        frame = synthetic_candles(candles, seed=seed, timeframe=timeframe, start=start)
    except (ValueError, OverflowError):  # pandas' OutOfBoundsDatetime is a ValueError
        if start is not None and pd.isna(pd.to_datetime(start, errors="coerce", utc=True)):
            raise InvalidInput.field("start", f"{start!r} is not an ISO date in the years 1 to 9999") from None
        frame = None
    if frame is None or frame["timestamp"].iloc[0] < EARLIEST or frame["timestamp"].iloc[-1] > LATEST:
        raise InvalidInput.field("start", f"{candles:,} {timeframe} candles from {start or 'the default start'} "
                                          f"do not fit in the years 1 to 9999 in UTC")
    return _store_frame(db, symbol, timeframe, frame)


def _store_frame(db: Database, symbol: str, timeframe: str, frame: pd.DataFrame) -> int:
    with db.transaction() as conn:
        written = upsert_candles(conn, symbol, timeframe, frame)
    if written >= 10_000:
        with db.connection() as conn:
            analyze_candles(conn)
    return written


def load_frame(db: Database, symbol: str, timeframe: str,
               start: datetime | None = None, end: datetime | None = None,
               progress_callback: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """The candles of a symbol, timeframe and date range as a DataFrame, oldest first."""
    with db.connection() as conn:
        return load_candles(conn, symbol, timeframe, start, end, progress_callback=progress_callback)


def candle_rows(conn: Connection, symbol: str, timeframe: str, start: datetime, end: datetime,
                limit: int) -> dict[str, list]:
    """The first `limit` candles in [start, end] as columns, times in Unix seconds."""
    with conn.cursor() as cur:
        cur.execute("""SELECT coalesce(array_agg(extract(epoch FROM ts)::bigint ORDER BY ts), '{}') AS time,
                              coalesce(array_agg(open ORDER BY ts), '{}') AS open,
                              coalesce(array_agg(high ORDER BY ts), '{}') AS high,
                              coalesce(array_agg(low ORDER BY ts), '{}') AS low,
                              coalesce(array_agg(close ORDER BY ts), '{}') AS close,
                              coalesce(array_agg(volume ORDER BY ts), '{}') AS volume
                         FROM (SELECT * FROM candles WHERE symbol = %s AND timeframe = %s AND ts >= %s AND ts <= %s
                                ORDER BY ts LIMIT %s) c""", (symbol, timeframe, start, end, limit))
        return dict(cur.fetchone())


def candle_buckets(conn: Connection, symbol: str, timeframe: str, start: datetime, end: datetime,
                   bucket_seconds: int) -> dict[str, list]:
    """The candles in [start, end] merged into bars of `bucket_seconds` (aligned to the Unix epoch):
    first open, highest high, lowest low, last close, summed volume; times in Unix seconds.
    PostgreSQL reads every candle of the range: ~0.3 µs each."""
    with conn.cursor() as cur:
        cur.execute("""SELECT coalesce(array_agg(time ORDER BY time), '{}') AS time,
                              coalesce(array_agg(open ORDER BY time), '{}') AS open,
                              coalesce(array_agg(high ORDER BY time), '{}') AS high,
                              coalesce(array_agg(low ORDER BY time), '{}') AS low,
                              coalesce(array_agg(close ORDER BY time), '{}') AS close,
                              coalesce(array_agg(volume ORDER BY time), '{}') AS volume
                         FROM (SELECT extract(epoch FROM ts)::bigint / %(b)s * %(b)s AS time,
                                      (array_agg(open ORDER BY ts))[1] AS open, max(high) AS high, min(low) AS low,
                                      (array_agg(close ORDER BY ts DESC))[1] AS close, sum(volume) AS volume
                                 FROM candles WHERE symbol = %(symbol)s AND timeframe = %(timeframe)s
                                  AND ts >= %(start)s AND ts <= %(end)s
                                GROUP BY 1) bars""",
                    {"b": bucket_seconds, "symbol": symbol, "timeframe": timeframe, "start": start, "end": end})
        return dict(cur.fetchone())


def count_candles_upto(conn: Connection, symbol: str, timeframe: str, start: datetime | None, end: datetime | None,
                       limit: int) -> int:
    """How many candles lie in [start, end], counting no further than `limit`."""
    clause, params = _range_clause(symbol, timeframe, start, end)
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) AS n FROM (SELECT 1 FROM candles {clause} LIMIT %s) c", [*params, limit])
        return int(cur.fetchone()["n"])
