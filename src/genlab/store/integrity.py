"""Integrity of finished runs: DONE carries a manifest (SHA-256 and size of every file of the run folder),
and a run is damaged when a file differs from it, is missing, was added, or config.json no longer hashes to
the folder's name. `check(folder)` says which file and why; readers skip damaged runs, `genlab run` redoes them.

    DONE = {"manifest": {"config.json": {"sha256": "…", "bytes": 1234}, …}, "finished": "…", "host": …, "pid": …}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

DONE = "DONE"
# Files that live in a run folder only while it is unfinished (never in a manifest).
TRANSIENT = ("resume.pt", "error.json")


@dataclass(frozen=True)
class Damage:
    file: str
    why: str

    def __str__(self) -> str:
        return f"{self.file}: {self.why}"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def config_id(text: str) -> str:
    """The run id a config.json's content hashes to: sha256 of its canonical (sorted, compact) JSON, 12 hex."""
    canonical = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def run_files(folder: Path) -> list[Path]:
    """The files a manifest covers: every plain file but DONE, hidden temp files and transient files."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.name != DONE and p.name not in TRANSIENT)


def manifest(folder: Path) -> dict[str, dict]:
    return {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size} for p in run_files(folder)}


def check_config(folder: Path) -> Damage | None:
    """config.json must exist, be JSON, and hash to the folder's name (the run id)."""
    path = folder / "config.json"
    if not path.is_file():
        return Damage("config.json", "missing")
    try:
        rid = config_id(path.read_text())
    except (ValueError, UnicodeDecodeError):
        return Damage("config.json", "not valid JSON")
    if rid != folder.name:
        return Damage("config.json", f"hashes to {rid}, not to its folder's name {folder.name} (edited after the run)")
    return None


def check(folder: Path) -> Damage | None:
    """None if the finished run in `folder` is intact, else the first damage found (which file, why)."""
    if (bad := check_config(folder)) is not None:
        return bad
    try:
        done = json.loads((folder / DONE).read_text())
        files = done["manifest"]
    except FileNotFoundError:
        return Damage(DONE, "missing")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return Damage(DONE, "has no manifest (the run was written before manifests, or DONE was edited)")
    for name, want in sorted(files.items()):
        p = folder / name
        if not p.is_file():
            return Damage(name, "missing")
        size = p.stat().st_size
        if size != want["bytes"]:
            return Damage(name, f"{size} bytes, the manifest says {want['bytes']} (truncated or appended to)")
        if sha256(p) != want["sha256"]:
            return Damage(name, "SHA-256 differs from the manifest (changed after the run)")
    extra = [p.name for p in run_files(folder) if p.name not in files]
    if extra:
        return Damage(extra[0], "not in the manifest (added after the run finished)")
    return None


def stamp(folder: Path) -> tuple:
    """(name, size, mtime_ns) of every file: when it is unchanged, so is the result of `check` (a cache key)."""
    try:
        return tuple(sorted((p.name, s.st_size, s.st_mtime_ns) for p in folder.iterdir()
                            if not p.name.startswith(".") for s in [p.stat()]))
    except FileNotFoundError:
        return ()
