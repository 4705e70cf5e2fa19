"""The `trad` command reaches jobs and batches through `trad.jobs`, never through the web app."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import trad.cli

WEB_COMMANDS = ("serve", "demo")  # they run the web app
WEB = ("flask", "flask_openapi3", "werkzeug")


def cli_imports() -> list[str]:
    """Every module trad/cli.py imports, at the top or inside a command, but in the web commands."""
    tree = ast.parse(Path(trad.cli.__file__).read_text())
    skipped = {id(node) for function in ast.walk(tree)
               if isinstance(function, ast.FunctionDef) and function.name in WEB_COMMANDS
               for node in ast.walk(function)}
    modules = {"trad.cli"}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return sorted(modules)


def loaded_web_modules(modules: list[str]) -> list[str]:
    code = ("import importlib, json, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {WEB!r})))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_batch_commands_import_no_flask():
    assert "trad.jobs.batches" in cli_imports()
    assert loaded_web_modules(["trad.cli", "trad.jobs.batches"]) == []


def test_cli_imports_no_flask_but_in_its_web_commands():
    assert loaded_web_modules(cli_imports()) == []
