"""Every public function of trad is annotated: each parameter (but self and cls) and its return."""

from __future__ import annotations

import ast
from pathlib import Path

import trad

PACKAGE = Path(trad.__file__).resolve().parent


def unannotated(tree: ast.Module) -> list[tuple[int, str, list[str]]]:
    """(line, name, what lacks an annotation) of each public function at module level or in a public class."""
    found: list[tuple[int, str, list[str]]] = []

    def visit(body: list[ast.stmt], in_class: bool) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                visit(node.body, in_class=True)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                args = node.args
                params = args.posonlyargs + args.args + args.kwonlyargs
                static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
                if in_class and not static and params and params[0].arg in ("self", "cls"):
                    params = params[1:]
                missing = [p.arg for p in params if p.annotation is None]
                missing += [f"*{a.arg}" for a in (args.vararg, args.kwarg) if a is not None and a.annotation is None]
                if node.returns is None:
                    missing.append("return")
                if missing:
                    found.append((node.lineno, node.name, missing))

    visit(tree.body, in_class=False)
    return found


def test_every_public_function_is_annotated():
    lacking = [f"{path.relative_to(PACKAGE.parent)}:{line} {name}: {', '.join(missing)}"
               for path in sorted(PACKAGE.rglob("*.py"))
               for line, name, missing in unannotated(ast.parse(path.read_text(), str(path)))]
    assert not lacking, "public functions lacking annotations:\n" + "\n".join(lacking)


def test_the_check_finds_what_lacks_an_annotation():
    tree = ast.parse("def bare(a, b: int, *rest, **extra): pass\n"
                     "def _private(a): pass\n"
                     "class Thing:\n"
                     "    def method(self, x: int) -> None: pass\n"
                     "    @classmethod\n"
                     "    def make(cls): pass\n"
                     "    @staticmethod\n"
                     "    def plain(self): pass\n"
                     "def outer() -> None:\n"
                     "    def inner(a): pass\n"
                     "class _Hidden:\n"
                     "    def method(self, a): pass\n")
    assert unannotated(tree) == [(1, "bare", ["a", "*rest", "*extra", "return"]), (6, "make", ["return"]),
                                 (8, "plain", ["self", "return"])]
