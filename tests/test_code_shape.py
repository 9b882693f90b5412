"""Short files a reader can hold: no function in src/ over 60 lines, no module over 400 (README: how we want
the code). A longer one fails here with its place; split it where it has parts."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "genlab"
MAX_FUNCTION, MAX_FILE = 60, 400


def too_long(src: Path = SRC) -> list[str]:
    """Every function over MAX_FUNCTION lines and module over MAX_FILE lines under `src`, as "path:line name (n)"."""
    out = []
    for path in sorted(src.rglob("*.py")):
        text = path.read_text()
        if (n := len(text.splitlines())) > MAX_FILE:
            out.append(f"{path.relative_to(src.parent)}: {n} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION:
                    out.append(f"{path.relative_to(src.parent)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_over_60_lines_and_no_module_over_400():
    assert too_long() == []


def test_the_shape_check_can_fail(tmp_path):
    pkg = tmp_path / "genlab"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION))
    (pkg / "long.py").write_text(f"def f():\n{body}\n" + "\n" * (MAX_FILE - MAX_FUNCTION))
    assert too_long(pkg) == [f"genlab/long.py: {MAX_FILE + 1} lines", f"genlab/long.py:1 f ({MAX_FUNCTION + 1} lines)"]
