"""The measures package as it was at a git commit, importable beside today's, for side-by-side benchmarks.

`load_reference("3fd97c0")` writes that commit's `src/genlab/measures/*.py` (commands.py left out) into a
temporary folder as the package `genlab_measures_3fd97c0`, with its `genlab.measures` imports renamed, and
imports it: it has its own registry, `MeasureData` and `compute`, and shares only `genlab.registry`,
`genlab.losses` and the learning rules with the working tree (imports of modules that moved since are renamed:
`MOVED`). Where there is no git history (the device machine gets a copy of the
working tree), the files are read from `.ref/<commit>/`, which `benchmarks/device.sh prepare` exports.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "src/genlab/measures"
SKIP = {"commands.py"}  # the store-facing layer: not part of the measures being timed
MOVED = {"genlab.train.rules": "genlab.models.rules"}  # modules an old package imports that moved since (issue 25)


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout


def load_reference(commit: str) -> ModuleType:
    """The measures package at `commit`, imported as `genlab_measures_<commit>`."""
    name = f"genlab_measures_{commit}"
    if name in sys.modules:
        return sys.modules[name]
    folder = Path(tempfile.mkdtemp(prefix="genlab_ref_"))
    (folder / name).mkdir()
    for path, text in _files(commit):
        if path.endswith(".py") and path not in SKIP:
            for old, new in MOVED.items():
                text = text.replace(old, new)
            (folder / name / path).write_text(text.replace("genlab.measures", name))
    sys.path.insert(0, str(folder))
    return importlib.import_module(name)


def _files(commit: str) -> list[tuple[str, str]]:
    """(file name, text) of the measures package at `commit`: from `.ref/<commit>/` if exported, else git."""
    exported = ROOT / ".ref" / commit / PACKAGE
    if exported.is_dir():
        return [(p.name, p.read_text()) for p in sorted(exported.iterdir())]
    return [(path, _git("show", f"{commit}:{PACKAGE}/{path}"))
            for path in _git("ls-tree", "--name-only", f"{commit}:{PACKAGE}").split()]
