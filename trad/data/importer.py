"""Read OHLCV candles from CSV files of the common shapes, with errors that name the line.

Accepted: a header row or none (then the columns are timestamp, open, high, low, close,
volume); common column names (`Date`, `time`, `Open`, `o`, `Vol`, an unnamed first
column …); timestamps as Unix seconds, milliseconds, microseconds or ISO 8601 text
(naive times are UTC) in the years 1–9999 in UTC; UTF-8 text, or UTF-16 with its byte-order
mark. Every row is checked before anything is written.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from trad.errors import InvalidInput

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")

ALIASES = {
    "timestamp": ("timestamp", "time", "date", "datetime", "ts", "open_time", "opentime",
                  "unix", "time_utc", "date_time", "t"),
    "open": ("open", "o", "open_price", "opening"),
    "high": ("high", "h", "high_price", "max"),
    "low": ("low", "l", "low_price", "min"),
    "close": ("close", "c", "close_price", "closing", "last", "price"),
    "volume": ("volume", "vol", "v", "volume_base", "base_volume", "qty", "quantity"),
}

SYMBOL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}$")


def validate_symbol(symbol: str) -> str:
    """A symbol is 1–32 letters, digits or . _ : / - ; returned as given."""
    if not isinstance(symbol, str) or not SYMBOL_PATTERN.match(symbol):
        raise InvalidInput.field("symbol", f"invalid symbol {symbol!r}: use 1-32 letters, digits or . _ : / -")
    return symbol


def read_candles_csv(source: str | Path | IO[str]) -> pd.DataFrame:
    """Parse a CSV of candles into timestamp (UTC), open, high, low, close, volume, sorted by time."""
    text = _read_text(source)
    lines = text.splitlines()
    if not lines or not any(line.strip() for line in lines):
        raise InvalidInput.field("file", "the file is empty")
    has_header = _looks_like_header(lines[0])
    try:
        # index_col=False: pandas would otherwise take the first column of rows longer than
        # the header as their index, shifting every other column; such rows are found below.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            raw = pd.read_csv(io.StringIO(text), header=0 if has_header else None, dtype=str,
                              keep_default_na=False, skip_blank_lines=False, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise _located(_parser_error_line(str(exc)), str(exc)) from None
    # Rows longer than the header (pandas warns), or a first row longer than the six columns of
    # a file without one (pandas takes its width), may only add blank fields.
    width = len(raw.columns) if has_header else len(COLUMNS)
    if raw.shape[1] > width or any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        _fail_on_extra_fields(text, width, has_header)
    raw = raw.fillna("")
    first_line = 2 if has_header else 1
    columns = _map_columns(list(raw.columns), has_header)
    frame = raw[[columns[c] for c in COLUMNS]].copy()
    frame.columns = list(COLUMNS)
    frame.index = np.arange(first_line, first_line + len(frame))  # file line numbers
    frame = frame[~(frame == "").all(axis=1)]
    if frame.empty:
        raise InvalidInput.field("file", "no candles in the file")
    return _parse_rows(frame)


def _fail_on_extra_fields(text: str, width: int, has_header: bool) -> None:
    """Raise for the first row with non-blank fields beyond `width`; blank extra fields (a
    trailing comma on every line) are let through."""
    expected = f"the header has {width}" if has_header \
        else f"a file without a header has {width} ({', '.join(COLUMNS)})"
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        if has_header and reader.line_num == 1:
            continue
        if len(row) > width and any(field.strip() for field in row[width:]):
            raise _located(f"line {reader.line_num}", f"{len(row)} fields, but {expected}")


def _located(where: str, issue: str) -> InvalidInput:
    """The error of one place of the file (`line N`, or `file`)."""
    return InvalidInput(f"{where}: {issue}", [{"field": where, "issue": issue}])


def _parser_error_line(message: str) -> str:
    """The file line pandas' parser error points at: it says `line N`, or `row N` (0-based, one
    row per line before it) for a quote that is never closed."""
    found = re.search(r"line (\d+)", message)
    if found:
        return f"line {found.group(1)}"
    found = re.search(r"starting at row (\d+)", message)
    return f"line {int(found.group(1)) + 1}" if found else "file"


def _read_text(source: str | Path | IO[str]) -> str:
    if hasattr(source, "read"):
        data = source.read()
        return _decode(data) if isinstance(data, bytes) else data.lstrip("\ufeff")
    path = Path(source)
    if not path.is_file():
        raise InvalidInput.field("file", f"no such file: {path}")
    return _decode(path.read_bytes())


def _decode(data: bytes) -> str:
    """UTF-8 text (with or without a byte-order mark), or UTF-16 with its byte-order mark (what
    spreadsheets save as "Unicode text"); any other encoding is an error naming its first bad line."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InvalidInput.field("file", "starts like UTF-16 text but is not; save it as UTF-8") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _located(f"line {line}", f"byte 0x{data[exc.start]:02x} is not UTF-8 text (Latin-1 or another "
                                       f"encoding?); save the file as UTF-8") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise _located(f"line {line}", "holds NUL characters (UTF-16 without a byte-order mark?); "
                                       "save the file as UTF-8")
    return text


def _looks_like_header(line: str) -> bool:
    """A first line is a header unless every field (trailing blank ones aside: a trailing
    comma) reads as a number or a date."""
    if not line.strip():
        raise InvalidInput.field("line 1", "is empty; expected a header or a candle")
    fields = next(csv.reader([line]))
    while fields and not fields[-1].strip():
        fields.pop()
    for field in fields:
        field = field.strip()
        if not field:
            return True
        try:
            float(field)
            continue
        except ValueError:
            pass
        if pd.isna(pd.to_datetime(field, errors="coerce", utc=True, format="ISO8601")):
            return True
    return False


def _map_columns(names: list, has_header: bool) -> dict[str, object]:
    """Which raw column holds each of timestamp/open/high/low/close/volume."""
    if not has_header:
        if len(names) < 6:
            raise InvalidInput.field("file", f"line 1: expected 6 columns (timestamp, open, high, low, close, volume), found {len(names)}")
        return dict(zip(COLUMNS, names))
    normalised = {str(n).strip().lower().replace(" ", "_"): n for n in names}
    found, missing = {}, []
    for column, aliases in ALIASES.items():
        match = next((normalised[a] for a in aliases if a in normalised), None)
        if match is None and column == "timestamp" and str(names[0]).startswith("Unnamed"):
            match = names[0]
        if match is None:
            missing.append(column)
        else:
            found[column] = match
    if missing:
        raise InvalidInput.field("file", f"line 1: no column for {', '.join(missing)} (header: {', '.join(map(str, names))})")
    return found


def _parse_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Convert and check every row; the first bad one raises with its line number."""
    out = pd.DataFrame(index=frame.index)
    out["timestamp"], unit, off_unit = parse_timestamps(frame["timestamp"])
    if unit is not None:
        _fail_on(off_unit, frame, "timestamp",
                 f"is not in the unit of the file's other Unix times ({UNIT_NAMES[unit]})")
    _fail_on(out["timestamp"].isna(), frame, "timestamp", "is not a Unix time or an ISO 8601 date")
    _fail_on((out["timestamp"] < EARLIEST) | (out["timestamp"] > LATEST), frame, "timestamp",
             "lies outside the years 1 to 9999 in UTC")
    for column in COLUMNS[1:]:
        values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
        _fail_on(values.isna() | ~np.isfinite(values), frame, column, "is not a number")
        out[column] = values.astype("float64")
    for column in ("open", "high", "low", "close"):
        _fail_on(out[column] <= 0, frame, column, "must be > 0")
    _fail_on(out["volume"] < 0, frame, "volume", "must be >= 0")
    _fail_on(out["high"] < out[["open", "close", "low"]].max(axis=1), frame, "high",
             "is below the open, close or low of the same candle")
    _fail_on(out["low"] > out[["open", "close"]].min(axis=1), frame, "low",
             "is above the open or close of the same candle")
    duplicated = out["timestamp"].duplicated(keep="first")
    _fail_on(duplicated, frame, "timestamp", "repeats an earlier candle's time")
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _fail_on(bad: pd.Series, frame: pd.DataFrame, column: str, issue: str) -> None:
    if bad.any():
        line = int(bad[bad].index[0])
        raise _located(f"line {line}", f"{column} {frame.at[line, column]!r} {issue}")


def parse_timestamps(values: pd.Series) -> tuple[pd.Series, str | None, pd.Series]:
    """UTC timestamps from Unix s/ms/µs/ns numbers or ISO text, unparseable → NaT; the epoch
    unit (None for dates) and which values are Unix times in another unit (NaT too).

    The kind most rows have (the first row's on a tie) is the file's: the rows of the other
    kind are the bad ones — a lone number among dates is an error, not 1970, and a blank
    among numbers is an error on its own line. Likewise the epoch unit is that of the median
    number, and a number of another magnitude (milliseconds among seconds) is NaT, so it is
    an error on its own line instead of a guess that shifts every other row.
    """
    stripped = values.astype(str).str.strip()
    numbers = pd.to_numeric(stripped, errors="coerce")
    numeric = numbers.notna()
    if len(numbers) and (2 * int(numeric.sum()) > len(numbers)
                         or (2 * int(numeric.sum()) == len(numbers) and numeric.iloc[0])):
        unit, off_unit = _epoch_unit(numbers)
        return pd.to_datetime(numbers.where(~off_unit), unit=unit, utc=True, errors="coerce"), unit, off_unit
    parsed = pd.to_datetime(stripped, utc=True, errors="coerce", format="ISO8601")
    return parsed.where(~numeric), None, pd.Series(False, index=values.index)


EARLIEST = pd.Timestamp("0001-01-01T00:00:00Z")  # what PostgreSQL and Python datetimes share
LATEST = pd.Timestamp("9999-12-31T23:59:59.999999Z")
EPOCH_UNITS = ("s", "ms", "us", "ns")
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
_UNIT_BOUNDS = (1e11, 1e14, 1e17)  # below 1e11 seconds reach the year 5138


def _epoch_unit(numbers: pd.Series) -> tuple[str, pd.Series]:
    """The epoch unit of the median magnitude, and which numbers are of another magnitude."""
    magnitudes = numbers.abs()
    classes = pd.Series(np.digitize(magnitudes.fillna(0).to_numpy(), _UNIT_BOUNDS), index=numbers.index)
    unit = int(np.digitize([float(magnitudes.median())], _UNIT_BOUNDS)[0])
    return EPOCH_UNITS[unit], numbers.notna() & (classes != unit)
