"""The core stays free of the web, queue and database layers."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("flask", "rq", "redis", "psycopg2")


def test_strategies_and_backtest_import_no_service_library():
    code = ("import sys, trad.strategies, trad.backtest; "
            f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
