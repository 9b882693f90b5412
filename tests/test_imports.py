"""The import graph goes one way: every import in src/genlab (module-level or inside a function) points from a
room (a top-level module or package of genlab) to a room before it in the flow the README's architecture
section writes down once, between `<!-- flow -->` and `<!-- /flow -->`. An arrow against the flow fails here,
naming the module and line; so does a room the README does not place."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "genlab"


def flow(readme: Path = ROOT / "README.md") -> list[str]:
    """The rooms in flow order, as the README lists them (`a → b → c`, over one or more lines)."""
    text = readme.read_text()
    m = re.search(r"<!-- flow -->(.*?)<!-- /flow -->", text, re.S)
    assert m, "README.md: the architecture section must list the flow between <!-- flow --> and <!-- /flow -->"
    body = re.sub(r"\([^)]*\)", " ", m.group(1))  # (comments) between rooms are for the reader
    return [r for r in re.split(r"[\s→`]+", body) if re.fullmatch(r"[a-z_]+", r)]


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    """genlab.store.files → store; genlab.tables → tables; genlab → __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def arrows(src: Path = SRC) -> list[tuple[str, str, str]]:
    """(from room, to room, "module:line") for every import of another genlab room in the package at `src`."""
    files = {module_name(p, src): p for p in src.rglob("*.py")}
    out = []
    for mod, path in sorted(files.items()):
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from .x import y
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + [base]).rstrip(".")
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                if t.startswith(src.name + ".") and t in files and room(t) != room(mod):
                    out.append((room(mod), room(t), f"{mod}:{node.lineno}"))
    return sorted(set(out))


def against_flow(src: Path = SRC, order: list[str] | None = None) -> list[str]:
    """Every arrow that points forward (or to a room the flow does not list), as readable lines."""
    order = order or flow()
    rank = {r: i for i, r in enumerate(order)}
    bad = []
    for a, b, where in arrows(src):
        if a not in rank or b not in rank:
            bad.append(f"{where}: room {a if a not in rank else b!r} is not in the README's flow")
        elif rank[b] >= rank[a]:
            bad.append(f"{where}: {a} imports {b}, which comes after it in the flow")
    return bad


def test_every_import_points_back_along_the_flow():
    assert against_flow() == []


def test_every_room_of_the_package_is_placed_in_the_flow():
    rooms = {room(module_name(p, SRC)) for p in SRC.rglob("*.py")}
    order = flow()
    assert sorted(rooms - set(order)) == [] and len(order) == len(set(order))
    assert sorted(set(order) - rooms) == []  # and the README names no room that is gone


def test_an_arrow_against_the_flow_is_caught(tmp_path):
    """The check can fail: a copy of two rooms where the earlier one imports the later one (inside a function,
    where it is easiest to miss) is reported with its module and line."""
    pkg = tmp_path / "genlab"
    (pkg / "spec").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "spec" / "__init__.py").write_text("def f():\n    from genlab.train.loop import fit\n")
    (pkg / "train").mkdir()
    (pkg / "train" / "__init__.py").write_text("")
    (pkg / "train" / "loop.py").write_text("from genlab.spec import f\n")
    bad = against_flow(pkg, ["spec", "train", "__init__"])
    assert bad == ["genlab.spec:2: spec imports train, which comes after it in the flow"]
    assert against_flow(pkg, ["train", "spec", "__init__"]) == ["genlab.train.loop:1: train imports spec, which comes "
                                                                "after it in the flow"]
    assert "not in the README's flow" in against_flow(pkg, ["spec", "__init__"])[0]


@pytest.mark.parametrize("name", ["README.md"])
def test_the_flow_is_written_once_in_the_readme(name):
    text = (ROOT / name).read_text()
    assert text.count("<!-- flow -->") == 1 and flow()[0] == "suggest" and flow()[-1] == "__main__"
