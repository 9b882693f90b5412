"""The files of a run: whole files written atomically with one mode for all, and the `RunWriter` that writes a
run while holding its lease (Store.start creates it). See genlab.store for the layout.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from genlab import claims, integrity
from genlab.integrity import DONE

RESUME = "resume.pt"
ERROR = "error.json"


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


def _clean(obj: Any) -> Any:
    """JSON-safe: non-finite floats become None (JSON has no NaN/inf)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`; an OSError names `path`."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _named(e, path) from None
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600; metrics.jsonl (plain open) gets FILE_MODE
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise _named(e, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _named(e: OSError, path: Path) -> OSError:
    """The same error with `path` as its file name, so the message says which file (a full disk raises
    ENOSPC from write() with no name)."""
    return type(e)(e.errno, e.strerror or str(e), str(path)) if e.errno and not e.filename else e


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(_clean(obj), indent=1, sort_keys=True) + "\n").encode())


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


def _torch_bytes(obj: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


RESUME_MAGIC = b"genlab-resume 2 sha256="  # then 64 hex digits of the body's SHA-256, a newline, the body


class BadResume(ValueError):
    """A resume file genlab cannot use (damaged, foreign, written by an older genlab): set aside, start over."""


def pack_resume(rows: int, state: Any) -> bytes:
    """resume.pt's bytes: a header with the SHA-256 of the body, then the body, torch.save of
    {"rows", "state"} holding only tensors and plain data (train/resume.py), so weights_only=True reads it."""
    import hashlib

    body = _torch_bytes({"rows": int(rows), "state": state})
    return RESUME_MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def unpack_resume(data: bytes, name: str = RESUME) -> tuple[int, Any]:
    """(rows, state) from resume.pt's bytes, the hash checked before anything is read and the body read with
    torch.load(weights_only=True): never unpickled. Raises BadResume saying why."""
    import hashlib

    import torch

    head, _, body = data.partition(b"\n")
    if not head.startswith(RESUME_MAGIC) or len(head) != len(RESUME_MAGIC) + 64:
        raise BadResume(f"{name}: not a genlab resume file (format 2); written by an older genlab, or damaged")
    if hashlib.sha256(body).hexdigest().encode() != head[len(RESUME_MAGIC):]:
        raise BadResume(f"{name}: its SHA-256 differs from the one written with it (damaged or edited)")
    try:
        saved = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError (a forbidden global), RuntimeError (a bad zip), …: never run
        raise BadResume(f"{name}: unreadable as plain tensors ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
                        ) from None
    if not isinstance(saved, dict) or not isinstance(saved.get("rows"), int) or saved["rows"] < 0 \
            or "state" not in saved:
        raise BadResume(f"{name}: not {{rows, state}}")
    return saved["rows"], saved["state"]


def write_error(path: Path, error: BaseException) -> None:
    """error.json: the error, its traceback, where and when."""
    write_json(path, {"error": f"{type(error).__name__}: {error}",
                      "traceback": "".join(traceback.format_exception(error)),
                      "host": claims.socket.gethostname(), "pid": os.getpid(),
                      "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def write_done(folder: Path) -> None:
    """DONE with the manifest of every file now in `folder` (written last: it certifies the others)."""
    write_json(folder / DONE, {"manifest": integrity.manifest(folder), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               "host": claims.socket.gethostname(), "pid": os.getpid()})


class RunWriter:
    """Writes one run's files while holding its lease. Created by `Store.start`; `finish` writes result.json,
    then DONE; `fail` keeps the error. Every write first checks the lease is still ours (else LeaseLost): per
    epoch from the heartbeat's flag, before resume states, DONE and error.json by reading the lease back.
    `resumed` is the object of the last `save_resume` of an earlier holder (None for a fresh run)."""

    def __init__(self, path: Path, lease: claims.Lease, owns_lease: bool, rows: int = 0, resumed: Any = None):
        self.path, self.lease, self._owns, self.rows, self.resumed = path, lease, owns_lease, rows, resumed
        self._metrics = open(path / "metrics.jsonl", "a")

    def log(self, row: dict[str, Any]) -> None:
        """Append one epoch's metrics (flushed, so `genlab` can show progress of a live run)."""
        self.lease.check()
        self._metrics.write(json.dumps(_clean(row), sort_keys=True) + "\n")
        self._metrics.flush()
        self.rows += 1

    def save_state(self, name: str, state: dict[str, Any]) -> None:
        self.lease.check()
        atomic_write(self.path / f"{name}.pt", _torch_bytes(state))

    def save_resume(self, obj: Any) -> None:
        """Atomically store `obj` (tensors and plain data: weights, optimizer, RNG states, …) as the point
        to resume from, with the number of metrics rows logged so far: a resumed run's metrics.jsonl is cut
        back to them, so rows logged after this call are logged again, once."""
        self._confirm()
        self._metrics.flush()
        atomic_write(self.path / RESUME, pack_resume(self.rows, obj))

    def finish(self, result: dict[str, Any]) -> None:
        self._confirm()
        self._metrics.close()
        write_json(self.path / "result.json", result)
        for name in integrity.TRANSIENT:
            (self.path / name).unlink(missing_ok=True)
        write_done(self.path)
        self._release()

    def fail(self, error: BaseException) -> None:
        """Keep the error and its traceback in the folder (error.json; `genlab status` shows it), then let go."""
        self._metrics.close()
        if self.lease.renew():  # still ours (read back from the lease file): the folder is ours to write
            write_error(self.path / ERROR, error)
        self._release()

    def close(self) -> None:
        self._metrics.close()
        self._release()

    def _confirm(self) -> None:
        """Read the lease back (and renew it) before a write that matters: a flag set by the heartbeat thread
        could be up to one interval late."""
        self.lease.renew()
        self.lease.check()

    def _release(self) -> None:
        if self._owns:
            self.lease.release()
