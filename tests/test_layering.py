"""Dependencies point one way, and the core knows nothing of Flask, RQ, Redis or PostgreSQL."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import trad

ROOT = Path(trad.__file__).parent

# Lowest first: a module may import its own layer and those below it. The entry modules
# (cli, demo, serving, watch, …: any module of trad/ not listed) sit above api and are not
# checked; the package root (its version) sits with errors.
LAYERS = [
    ["__init__", "errors"],
    ["data"],
    ["strategies"],
    ["backtest"],
    ["optimize"],
    ["config", "db", "store"],
    ["training"],
    ["jobs"],
    ["api"],
]
CORE = ["data", "strategies", "backtest", "optimize"]
SERVICE_LIBRARIES = ["flask", "rq", "redis", "psycopg2"]

LEVEL = {package: level for level, packages in enumerate(LAYERS) for package in packages}
ENTRY = len(LAYERS)


def modules() -> Iterator[tuple[str, Path]]:
    """Every module of trad/ by its dotted name."""
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("trad", *path.relative_to(ROOT).with_suffix("").parts)
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def package_of(module: str) -> str:
    """The package of trad/ a module is in (`cli` for trad/cli.py, `__init__` for trad itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def level_of(module: str) -> int:
    """The layer of a trad module, ENTRY for the entry modules."""
    return LEVEL.get(package_of(module), ENTRY)


def is_module(name: str) -> bool:
    path = ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or path.is_dir()


def imported(module: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, module name) of every import in a module, those inside functions included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            for alias in node.names:  # `from trad import cli` imports trad.cli
                yield node.lineno, f"{name}.{alias.name}" if is_module(f"{name}.{alias.name}") else name


def test_no_module_imports_a_higher_layer():
    upward = [f"{module}:{line} imports {name}"
              for module, path in modules() if level_of(module) < ENTRY
              for line, name in imported(module, path)
              if name.split(".")[0] == "trad" and level_of(name) > level_of(module)]
    assert upward == []


def test_the_core_imports_no_service_library():
    """Neither in its source (imports inside functions included) nor when every module is loaded."""
    core = [(module, path) for module, path in modules() if package_of(module) in CORE]
    named = [f"{module}:{line} imports {name}" for module, path in core for line, name in imported(module, path)
             if name.split(".")[0] in SERVICE_LIBRARIES]
    assert named == []
    code = ("import importlib, sys\n"
            f"for name in {[module for module, _ in core]!r}:\n"
            "    importlib.import_module(name)\n"
            f"print(sorted(m for m in {SERVICE_LIBRARIES!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
