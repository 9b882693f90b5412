"""The one way genlab writes a file a user asked for (report, figures, tables, plots): the path checked, the
bytes written to a temporary file beside it and renamed over it.

    check_out(path)            refuses a path that is a symlink (never followed, whatever it points at: as
                               `figures` refuses one) or a folder; returns the path
    write_out(path, data)      bytes or text, atomically: a full disk or a kill leaves the old file or none,
                               never a 0-byte or half-written one; an OSError names the path
    write_with(path, fn)       the same for writers that want a file name: fn(tmp_path) writes it
                               (matplotlib's savefig, DuckDB's COPY)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from genlab.paths import UnsafePathError
from genlab.store.files import FILE_MODE, named


def check_out(path: str | Path, what: str = "output") -> Path:
    """`path` if genlab may write a file there: not a symlink, not a folder (UnsafePathError / IsADirectoryError)."""
    p = Path(path)
    if p.is_symlink():
        raise UnsafePathError(f"{what} {p} is a symlink (to {os.readlink(p)}); genlab does not write through "
                              "links: remove it or choose another path")
    if p.is_dir():
        raise IsADirectoryError(21, f"{what} is a folder, not a file", str(p))
    return p


def write_with(path: str | Path, fn: Callable[[Path], None], what: str = "output") -> Path:
    """Check `path`, let `fn(tmp)` write a temporary file beside it, then rename it over `path`."""
    p = check_out(path, what)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp" + "".join(p.suffixes[-1:]))
        os.close(fd)
    except OSError as e:
        raise named(e, p, replace=True) from None
    try:
        fn(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; an output gets the mode open() would give
        check_out(p, what)  # still not a link at the moment of the rename
        os.replace(tmp, p)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise named(e, p, replace=True) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def write_out(path: str | Path, data: bytes | str, what: str = "output") -> Path:
    """Write `data` (text is UTF-8) to `path` atomically, checked (see the module docstring)."""
    raw = data.encode() if isinstance(data, str) else data
    return write_with(path, lambda tmp: tmp.write_bytes(raw), what)
