"""The measures package as it was at a git commit, importable beside today's, for side-by-side benchmarks.

`load_reference("3fd97c0")` writes that commit's `src/genlab/measures/*.py` (commands.py left out) into a
temporary folder as the package `genlab_measures_3fd97c0`, with its `genlab.measures` imports renamed, and
imports it: it has its own registry, `MeasureData` and `compute`, and shares only `genlab.registry` and
`genlab.losses` with the working tree.
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


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout


def load_reference(commit: str) -> ModuleType:
    """The measures package at `commit`, imported as `genlab_measures_<commit>`."""
    name = f"genlab_measures_{commit}"
    if name in sys.modules:
        return sys.modules[name]
    folder = Path(tempfile.mkdtemp(prefix="genlab_ref_"))
    (folder / name).mkdir()
    for path in _git("ls-tree", "--name-only", f"{commit}:{PACKAGE}").split():
        if path.endswith(".py") and path not in SKIP:
            text = _git("show", f"{commit}:{PACKAGE}/{path}").replace("genlab.measures", name)
            (folder / name / path).write_text(text)
    sys.path.insert(0, str(folder))
    return importlib.import_module(name)
