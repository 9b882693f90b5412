"""The files of a run: the resume state (plain tensors behind a SHA-256 header), the error record, DONE, and the
`RunWriter` that writes a run while holding its lease (Store.start creates it). See genlab.store for the layout.
"""

from __future__ import annotations

import io
import os
import json
import time
import traceback
from pathlib import Path
from typing import Any

from genlab.store import claims, integrity
from genlab.store.files import FILE_MODE, atomic_write, clean, read_json, read_jsonl, write_json  # noqa: F401
from genlab.store.integrity import DONE

RESUME = "resume.pt"
ERROR = "error.json"


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
        self._metrics.write(json.dumps(clean(row), sort_keys=True) + "\n")
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
