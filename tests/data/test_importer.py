"""CSV parsing: the shapes people have, and errors that name the line."""

from __future__ import annotations

import codecs
import io

import pandas as pd
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from trad.data.frames import sample_csv
from trad.data.importer import read_candles_csv
from trad.errors import InvalidInput

GOOG = str(sample_csv())


def parse(text: str) -> pd.DataFrame:
    return read_candles_csv(io.StringIO(text))


def test_reads_the_backtesting_py_sample_as_is():
    frame = read_candles_csv(GOOG)
    assert len(frame) == 2148
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2004-08-19", tz="UTC")
    assert frame.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [100, 104.06, 95.96, 100.34, 22351900]


@pytest.mark.parametrize("stamp, expected", [
    ("1700000000", "2023-11-14 22:13:20"),
    ("1700000000000", "2023-11-14 22:13:20"),
    ("1700000000000000", "2023-11-14 22:13:20"),
    ("2023-11-14T22:13:20Z", "2023-11-14 22:13:20"),
    ("2023-11-14 23:13:20+01:00", "2023-11-14 22:13:20"),
    ("2023-11-14 22:13:20", "2023-11-14 22:13:20"),
])
def test_timestamps_in_seconds_ms_us_or_iso(stamp, expected):
    frame = parse(f"time,open,high,low,close,volume\n{stamp},1,2,0.5,1.5,10\n")
    assert frame["timestamp"].iloc[0] == pd.Timestamp(expected, tz="UTC")


def test_no_header_means_the_standard_column_order():
    frame = parse("1700000000,1,2,0.5,1.5,10\n1700000300,1.5,2,1,1.2,11\n")
    assert frame["close"].tolist() == [1.5, 1.2]


@pytest.mark.parametrize("header", [
    "Date,Open,High,Low,Close,Volume",
    "timestamp,o,h,l,c,v",
    "open_time,open,high,low,close,vol",
    "Time,Close,Open,Volume,High,Low",
])
def test_common_column_names_in_any_order(header):
    names = [h.strip().lower() for h in header.split(",")]
    values = {"date": "2024-01-01", "timestamp": "2024-01-01", "open_time": "2024-01-01", "time": "2024-01-01",
              "open": "10", "o": "10", "high": "12", "h": "12", "low": "9", "l": "9",
              "close": "11", "c": "11", "volume": "5", "vol": "5", "v": "5"}
    frame = parse(header + "\n" + ",".join(values[n] for n in names) + "\n")
    assert frame.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [10, 12, 9, 11, 5]


def test_rows_are_sorted_by_time():
    frame = parse("t,open,high,low,close,volume\n2024-01-02,1,2,1,1,1\n2024-01-01,1,2,1,1,1\n")
    assert frame["timestamp"].is_monotonic_increasing


@pytest.mark.parametrize("row, line, words", [
    ("2024-01-03,1,2,0.5,abc,10", 4, "close 'abc' is not a number"),
    ("not-a-date,1,2,0.5,1,10", 4, "timestamp 'not-a-date'"),
    ("2024-01-03,1,0.9,0.5,1,10", 4, "high '0.9' is below"),
    ("2024-01-03,1,2,1.5,1.2,10", 4, "low '1.5' is above"),
    ("2024-01-03,1,2,0.5,1,-3", 4, "volume '-3' must be >= 0"),
    ("2024-01-03,0,2,0.5,1,3", 4, "open '0' must be > 0"),
    ("2024-01-01,1,2,0.5,1,3", 4, "repeats an earlier candle's time"),
    ("2024-01-03,1,2,0.5,1", 4, "volume '' is not a number"),
    ("2024-01-03,1,2,0.5,1,3,7", 4, "line 4"),
])
def test_a_bad_row_is_named_by_its_line(row, line, words):
    text = "date,open,high,low,close,volume\n2024-01-01,1,2,0.5,1,10\n2024-01-02,1,2,0.5,1,10\n" + row + "\n"
    with pytest.raises(InvalidInput) as caught:
        parse(text)
    assert f"line {line}" in caught.value.message
    assert words in caught.value.message


def test_missing_columns_are_named():
    with pytest.raises(InvalidInput, match="no column for volume"):
        parse("date,open,high,low,close\n2024-01-01,1,2,0.5,1\n")


def test_empty_file_is_an_error():
    with pytest.raises(InvalidInput, match="empty"):
        parse("")


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30), min_size=1, max_size=8))
def test_arbitrary_text_parses_or_fails_cleanly(lines):
    try:
        frame = parse("\n".join(lines))
    except InvalidInput:
        return
    assert list(frame.columns) == ["timestamp", "open", "high", "low", "close", "volume"]


@pytest.mark.parametrize("stray, unit", [("1700000120000", "seconds"), ("1700000120", "milliseconds")])
def test_a_unix_time_in_another_unit_is_named_by_its_line(stray, unit):
    step = 60 if unit == "seconds" else 60_000
    start = 1_700_000_000 if unit == "seconds" else 1_700_000_000_000
    lines = ["timestamp,open,high,low,close,volume"] + [f"{start + step * i},1,2,0.5,1.5,10" for i in range(6)]
    lines[4] = f"{stray},1,2,0.5,1.5,10"  # file line 5
    with pytest.raises(InvalidInput, match=f"line 5: timestamp '{stray}' is not in the unit of the file's "
                                           f"other Unix times \\({unit}\\)"):
        read_candles_csv(io.StringIO("\n".join(lines)))


HEADER = "timestamp,open,high,low,close,volume"
ROWS = [f"{1_700_000_000 + 60 * i},1,2,0.5,1.5,10" for i in range(5)]


@pytest.mark.parametrize("lines, line", [
    ([HEADER, ROWS[0] + ",99"] + ROWS[1:], 2),           # a stray field in the first row
    ([HEADER] + [row + ",99" for row in ROWS], 2),        # every row one field longer than the header
    ([HEADER] + ROWS[:3] + [ROWS[3] + ",7"] + ROWS[4:], 5),
    ([ROWS[0] + ",99"] + ROWS[1:], 1),                    # no header: the first row sets the width
    (ROWS[:2] + [ROWS[2] + ",7"] + ROWS[3:], 3),
])
def test_a_row_with_extra_fields_is_named_by_its_line_never_shifted(lines, line):
    with pytest.raises(InvalidInput, match=f"^line {line}: "):
        parse("\n".join(lines))


@pytest.mark.parametrize("lines", [[HEADER + ","] + [row + "," for row in ROWS], [row + "," for row in ROWS]])
def test_a_trailing_comma_on_every_line_is_fine(lines):
    frame = parse("\n".join(lines))
    assert len(frame) == 5 and frame["volume"].tolist() == [10.0] * 5


# Encodings and the edges of time.

ROWS = "timestamp,open,high,low,close,volume\n1700000000,1,2,0.5,1.5,10\n"


@pytest.mark.parametrize("data", [ROWS.encode("utf-8-sig"), ROWS.encode("utf-16"), ROWS.encode("utf-16-be"),
                                  codecs.BOM_UTF16_BE + ROWS.encode("utf-16-be")],
                         ids=["UTF-8 with BOM", "UTF-16 with BOM", "UTF-16 without BOM", "UTF-16BE with BOM"])
def test_utf8_and_utf16_with_its_byte_order_mark_are_read_other_encodings_named(data):
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        assert len(read_candles_csv(io.BytesIO(data))) == 1
    else:
        with pytest.raises(InvalidInput, match=r"^line 1: holds NUL characters .*save the file as UTF-8"):
            read_candles_csv(io.BytesIO(data))


def test_a_latin1_byte_is_named_by_its_line():
    data = (ROWS + "1700000300,1,2,0.5,1.5,10\n# café\n").encode("latin-1")
    with pytest.raises(InvalidInput, match=r"^line 4: byte 0xe9 is not UTF-8 text"):
        read_candles_csv(io.BytesIO(data))


@pytest.mark.parametrize("first, stamp", [("2020-01-01", "0001-01-01T00:00:00+05:00"),
                                          ("2020-01-01", "9999-12-31T23:59:59-05:00"),
                                          ("-62135596800", "-99999999999"), ("1", "-62135596801")])
def test_a_time_outside_the_years_1_to_9999_in_utc_is_named_by_its_line(first, stamp):
    with pytest.raises(InvalidInput, match=r"^line 3: timestamp .* lies outside the years 1 to 9999 in UTC"):
        parse(f"time,open,high,low,close,volume\n{first},1,2,0.5,1.5,10\n{stamp},1,2,0.5,1.5,10\n")


def test_the_first_and_last_moments_of_the_years_1_to_9999_are_read():
    dates = parse("time,open,high,low,close,volume\n0001-01-01T00:00:00-05:00,1,2,0.5,1.5,10\n"
                  "9999-12-31T23:59:59+05:00,1,2,0.5,1.5,10\n")
    unix = parse("time,open,high,low,close,volume\n-62135596800,1,2,0.5,1.5,10\n")
    assert dates["timestamp"].dt.year.tolist() == [1, 9999] and unix["timestamp"].dt.year.tolist() == [1]


def test_the_cli_names_a_bad_file_in_one_line_and_exits_2(env, clean_db, tmp_path):
    from tests.test_cli import trad

    files = {"latin1.csv": (ROWS + "# café\n").encode("latin-1"), "utf16.csv": ROWS.encode("utf-16-le"),
             "year0.csv": ROWS.replace("1700000000", "0001-01-01T00:00:00+05:00").encode(),
             "year10000.csv": ROWS.replace("1700000000", "9999-12-31T23:59:59-05:00").encode(),
             "ancient.csv": ROWS.replace("1700000000", "-99999999999").encode()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        result = trad(env, "data", "import", str(tmp_path / name), "--symbol", "EDGE", "--timeframe", "5m")
        assert result.returncode == 2 and result.stderr.count("\n") == 1, (name, result.stderr)
        assert result.stderr.startswith("error: line ") and "Traceback" not in result.stderr, name
    synth = trad(env, "data", "synth", "--symbol", "EDGE", "--candles", "10", "--start", "9999-12-31T23:30:00")
    assert synth.returncode == 2 and synth.stderr.count("\n") == 1 and "years 1 to 9999" in synth.stderr
    assert trad(env, "data", "list").stdout.count("EDGE") == 0
