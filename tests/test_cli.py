"""The `trad` command as a user runs it: real process, real database, exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trad.data.frames import sample_csv
from trad.store.candles import load_frame

GOOG = str(sample_csv())


def trad(env, *args):
    return subprocess.run([sys.executable, "-m", "trad", *args], env=env, capture_output=True, text=True, timeout=120)


def test_db_upgrade_on_a_migrated_database_is_a_no_op(env):
    result = trad(env, "db", "upgrade")
    assert result.returncode == 0 and "up to date" in result.stdout


def test_import_synth_and_list(env, clean_db):
    assert trad(env, "data", "import", GOOG, "--symbol", "GOOG", "--timeframe", "1d").returncode == 0
    synth = trad(env, "data", "synth", "--symbol", "SYN", "--timeframe", "5m", "--candles", "3000", "--seed", "4")
    assert synth.returncode == 0 and "3,000" in synth.stdout
    listing = trad(env, "data", "list").stdout
    assert "GOOG" in listing and "2,148" in listing and "SYN" in listing
    assert len(load_frame(clean_db, "SYN", "5m")) == 3000


@pytest.mark.parametrize("args, words", [
    (("data", "import", "/no/such.csv", "--symbol", "X", "--timeframe", "5m"), "no such file"),
    (("data", "synth", "--symbol", "X", "--candles", "zero"), "'--candles'"),
    (("data", "synth", "--symbol", "X", "--timeframe", "2m"), "unknown timeframe '2m'"),
    (("data", "synth"), "Missing option '--symbol'"),
    (("frobnicate",), "No such command"),
])
def test_bad_flags_give_one_line_and_exit_2(env, args, words):
    result = trad(env, *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert words in result.stderr


def test_unreachable_database_is_a_clear_error(env):
    result = trad({**env, "TRAD_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}, "db", "upgrade")
    assert result.returncode == 1
    assert result.stderr.startswith("error: PostgreSQL is not reachable")
