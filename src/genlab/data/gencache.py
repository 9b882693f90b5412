"""A disk cache of generated data sets (mnist1d): made once per machine, then loaded in milliseconds.

Generating mnist1d's 5,000 signals costs ~4 CPU-s, paid by every process and worker of a sweep before this
cache (half the CPU of a 9-run sweep of small runs). The arrays a generator returns are stored as one `.npz`
under `<data root>/generated/` (`$GENLAB_DATA`, see `genlab.data.files.data_root`), named by the SHA-256 of its
arguments and the generator's version, so different arguments never share a file:

    arrays = cached_arrays("mnist1d", {"num_samples": 5000, ...}, make)   # {name: np.ndarray}

Files are read with `np.load(allow_pickle=False)`: plain numeric arrays, never unpickled. A file that cannot be
read (truncated, foreign) is made again and replaced; writes go to a temporary name and are renamed, so a
reader never sees half a file and concurrent workers may write the same entry. `GENLAB_GEN_CACHE=off` turns
the cache off (every process generates, as before).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

OFF_VAR = "GENLAB_GEN_CACHE"


def cache_dir() -> Path:
    from genlab.data.files import data_root

    return data_root() / "generated"


def cache_path(name: str, args: dict[str, Any], version: str) -> Path:
    """<data root>/generated/<name>-<sha256 of (name, version, args) as canonical JSON, 16 hex>.npz"""
    key = json.dumps([name, version, args], sort_keys=True, separators=(",", ":"))
    return cache_dir() / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _read(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays `keys` of an .npz (no pickles), or None when the file is absent, unreadable or lacks one."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if not all(k in f.files for k in keys):
                return None
            return {k: f[k] for k in keys}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None


def _write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomically: a temporary file in the same folder, renamed. A write that fails leaves no cache entry (the
    arrays are still returned to the caller: the cache is an optimization, never a reason for a run to fail)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


def cached_arrays(name: str, args: dict[str, Any], make: Callable[[], dict[str, Any]], keys: tuple[str, ...],
                  version: str = "") -> dict[str, np.ndarray]:
    """`make()`'s arrays `keys` for these arguments: from the disk cache, else made, stored and returned."""
    if os.environ.get(OFF_VAR, "").lower() in ("off", "0", "false", "no"):
        d = make()
        return {k: np.asarray(d[k]) for k in keys}
    path = cache_path(name, args, version)
    got = _read(path, keys)
    if got is not None:
        return got
    d = make()
    arrays = {k: np.asarray(d[k]) for k in keys}
    if any(a.dtype == object for a in arrays.values()):
        raise TypeError(f"{name}: generated arrays must be numeric to be cached, got object arrays")
    _write(path, arrays)
    return arrays
