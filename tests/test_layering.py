"""The core knows nothing of Flask, RQ, Redis or PostgreSQL."""

import subprocess
import sys

CORE = ["trad.data.synthetic", "trad.data.importer", "trad.data.frames", "trad.strategies",
        "trad.backtest", "trad.optimize"]
OUTER = ["flask", "rq", "redis", "psycopg2"]


def test_core_imports_no_service_library():
    code = ("import importlib, sys\n"
            f"for name in {CORE!r}:\n"
            "    importlib.import_module(name)\n"
            f"print(sorted(m for m in {OUTER!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
