"""Candles in PostgreSQL: exact round trips, all-or-nothing imports, chunked loads."""

from __future__ import annotations

import pandas as pd
import pytest

from trad.data.frames import sample_csv
from trad.data.importer import read_candles_csv
from trad.data.synthetic import synthetic_candles
from trad.errors import InvalidInput
from trad.store import candles as store

GOOG = str(sample_csv())


def as_us(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(timestamp=frame["timestamp"].dt.as_unit("us")).reset_index(drop=True)


def stored(db, symbol: str, timeframe: str) -> pd.DataFrame:
    return as_us(store.load_frame(db, symbol, timeframe))


def test_csv_round_trips_exactly(clean_db, tmp_path):
    frame = synthetic_candles(5_000, seed=7, timeframe="1m")
    path = tmp_path / "candles.csv"
    frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        path, index=False, float_format="%.17g")
    assert store.import_csv(clean_db, path, "RT", "1m") == 5_000
    pd.testing.assert_frame_equal(stored(clean_db, "RT", "1m"), as_us(frame))


def test_the_sample_file_imports_as_read(clean_db):
    store.import_csv(clean_db, GOOG, "GOOG", "1d")
    pd.testing.assert_frame_equal(stored(clean_db, "GOOG", "1d"), as_us(read_candles_csv(GOOG)))


def test_a_malformed_file_leaves_the_table_unchanged(clean_db, tmp_path):
    store.import_synthetic(clean_db, "BAD", "5m", 100, seed=1)
    before = stored(clean_db, "BAD", "5m")
    lines = synthetic_candles(300, seed=2).to_csv(index=False).splitlines()
    lines[250] = lines[250].rsplit(",", 1)[0] + ",lots"  # volume of the 250th candle
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match="line 251: volume 'lots' is not a number"):
        store.import_csv(clean_db, path, "BAD", "5m")
    pd.testing.assert_frame_equal(stored(clean_db, "BAD", "5m"), before)


def test_reimport_replaces_candles_at_the_same_time(clean_db):
    store.import_synthetic(clean_db, "UP", "5m", 200, seed=1)
    newer = synthetic_candles(150, seed=2, start="2024-01-01T00:00:00Z")
    newer = newer.assign(timestamp=newer["timestamp"] + pd.Timedelta(minutes=500))  # overlaps 100..249
    with clean_db.transaction() as conn:
        store.upsert_candles(conn, "UP", "5m", newer)
    frame = stored(clean_db, "UP", "5m")
    assert len(frame) == 250
    pd.testing.assert_frame_equal(frame.iloc[100:].reset_index(drop=True), as_us(newer))


def test_load_a_date_range_in_chunks_with_progress(clean_db):
    store.import_synthetic(clean_db, "RNG", "1h", 1_000, seed=3)
    calls = []
    with clean_db.connection() as conn:
        frame = store.load_candles(conn, "RNG", "1h", start=pd.Timestamp("2024-01-05", tz="UTC"),
                                   end=pd.Timestamp("2024-01-20 23:00", tz="UTC"), chunk_rows=100,
                                   progress_callback=lambda done, total: calls.append((done, total)))
    assert len(frame) == 16 * 24
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-01-05", tz="UTC")
    assert frame["timestamp"].is_monotonic_increasing
    assert calls == [(100, 384), (200, 384), (300, 384), (384, 384)]


def test_a_load_without_its_series_is_refused_not_widened(clean_db):
    """A range is always of one series: no symbol or timeframe must not read every series."""
    store.import_synthetic(clean_db, "ONE", "1h", 50, seed=3)
    store.import_synthetic(clean_db, "TWO", "1h", 50, seed=4)
    with clean_db.connection() as conn:
        assert store.count_candles(conn, "ONE", "1h", start=pd.Timestamp("2000-01-01", tz="UTC")) == 50
        for symbol, timeframe in ((None, "1h"), ("", "1h"), ("ONE", None)):
            with pytest.raises(ValueError, match="symbol and a timeframe"):
                store.load_candles(conn, symbol, timeframe)
            with pytest.raises(ValueError, match="symbol and a timeframe"):
                store.count_candles(conn, symbol, timeframe)


def test_unknown_symbol_loads_empty(clean_db):
    frame = store.load_frame(clean_db, "NOPE", "5m")
    assert frame.empty and list(frame.columns) == ["timestamp", "open", "high", "low", "close", "volume"]


def test_summary_per_symbol_and_timeframe(clean_db):
    store.import_synthetic(clean_db, "A", "5m", 10)
    store.import_synthetic(clean_db, "A", "1h", 20)
    with clean_db.connection() as conn:
        rows = store.candle_summary(conn)
    assert [(r["symbol"], r["timeframe"], r["candles"]) for r in rows] == [("A", "1h", 20), ("A", "5m", 10)]


@pytest.mark.parametrize("symbol, timeframe, field", [("bad symbol", "5m", "symbol"), ("OK", "7m", "timeframe")])
def test_bad_symbol_or_timeframe(clean_db, symbol, timeframe, field):
    with pytest.raises(InvalidInput) as caught:
        store.import_synthetic(clean_db, symbol, timeframe, 10)
    assert caught.value.details[0]["field"] == field


def counted(db) -> list[dict]:
    """What counting every candle says, to hold the kept summary against."""
    with db.cursor() as cur:
        cur.execute("""SELECT symbol, timeframe, count(*) AS candles, min(ts) AS first, max(ts) AS last
                         FROM candles GROUP BY 1, 2 ORDER BY 1, 2""")
        return [dict(r) for r in cur.fetchall()]


def test_the_series_summary_stays_true_whoever_writes_candles(clean_db):
    """`candle_series` is kept by triggers: imports, re-imports (upserts), and what psql does by
    hand — inserts, deletes, moves in time or to another series, TRUNCATE."""
    def summary() -> list[dict]:
        with clean_db.connection() as conn:
            return store.candle_summary(conn)

    store.import_synthetic(clean_db, "A", "5m", 1_000, seed=1)
    store.import_synthetic(clean_db, "B", "1h", 300, seed=2)
    assert summary() == counted(clean_db) and [r["candles"] for r in summary()] == [1_000, 300]
    store.import_synthetic(clean_db, "A", "5m", 1_500, seed=3)  # 1,000 replaced, 500 added
    assert summary() == counted(clean_db) and summary()[0]["candles"] == 1_500
    steps = [
        "DELETE FROM candles WHERE symbol = 'A' AND ts < (SELECT min(ts) + interval '1 day' FROM candles WHERE symbol = 'A')",
        "UPDATE candles SET ts = ts - interval '10 years' WHERE symbol = 'B' AND ts = (SELECT max(ts) FROM candles WHERE symbol = 'B')",
        "UPDATE candles SET symbol = 'C' WHERE symbol = 'B' AND ts > (SELECT min(ts) + interval '5 days' FROM candles WHERE symbol = 'B')",
        "UPDATE candles SET volume = volume + 1 WHERE symbol = 'A'",
        "INSERT INTO candles SELECT 'D', '1d', ts, open, high, low, close, volume FROM candles WHERE symbol = 'C' "
        "ON CONFLICT DO NOTHING",
        "DELETE FROM candles WHERE symbol = 'D'",
    ]
    for step in steps:
        with clean_db.cursor() as cur:
            cur.execute(step)
        assert summary() == counted(clean_db), step
    assert {r["symbol"] for r in summary()} == {"A", "B", "C"}
    with clean_db.cursor() as cur:
        cur.execute("TRUNCATE candles")
    assert summary() == [] == counted(clean_db)
