"""The code stays readable: no module of dags/, include/ or plugins/ over 450 lines, no function over
80 (the C accelerators aside)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE, MAX_FUNCTION = 450, 80


def _sources():
    for folder in ("dags", "include", "plugins"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_module_is_too_long():
    long = {str(p.relative_to(ROOT)): n for p in _sources() if (n := len(p.read_text().splitlines())) > MAX_MODULE}
    assert not long, f"modules over {MAX_MODULE} lines: {long}"


def test_no_function_is_too_long():
    long = {}
    for p in _sources():
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION:
                    long[f"{p.relative_to(ROOT)}:{node.name}"] = n
    assert not long, f"functions over {MAX_FUNCTION} lines: {long}"
