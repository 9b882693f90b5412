"""Whole files written atomically (temp file + rename) with one mode for all (0666 less the umask), and JSON /
JSON-lines read back with errors that name the file and line. Every file genlab writes goes through here: a
killed process never leaves a half-written file that looks whole.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def _file_mode() -> int:
    """0666 less the process umask: the mode `open()` gives, so every file of the store has the same one."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it (and back)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def clean(obj: Any) -> Any:
    """JSON-safe: non-finite floats become None (JSON has no NaN/inf)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`; an OSError names `path`."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise named(e, path) from None
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600; metrics.jsonl (plain open) gets FILE_MODE
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise named(e, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def named(e: OSError, path: Path, replace: bool = False) -> OSError:
    """The same error with `path` as its file name, so the message says which file (a full disk raises
    ENOSPC from write() with no name); `replace`: also over a name it has (a temporary file's)."""
    return type(e)(e.errno, e.strerror or str(e), str(path)) if e.errno and (replace or not e.filename) else e


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(clean(obj), indent=1, sort_keys=True) + "\n").encode())


def read_json(path: Path, kind: type | None = None) -> Any:
    """A JSON file's value (of `kind`, when given); ValueError naming the file and the cause when it is not
    UTF-8, not JSON, or not a `kind` (e.g. a result.json holding `[]`)."""
    data = path.read_bytes()
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if kind is not None and not isinstance(value, kind):
        want = {dict: "a JSON object {...}", list: "a JSON list"}.get(kind, kind.__name__)
        raise ValueError(f"{path}: holds {type(value).__name__ if value is not None else 'null'} "
                         f"{json.dumps(value)[:40]}, not {want}")
    return value


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a .jsonl file (one JSON object a line; a torn last line, as a kill leaves it, is dropped);
    ValueError naming the file, the line and the cause otherwise."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: line {i} is not UTF-8 text (byte {line[e.start]:#04x})") from None
        except json.JSONDecodeError as e:
            if i == len(lines):  # the last line, without its newline: half-written
                break
            raise ValueError(f"{path}: line {i} is not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}: line {i} holds {type(row).__name__}, not a JSON object")
        rows.append(row)
    return rows
