"""Claims on runs: a lease file per run, so many workers (processes, hosts, Slurm tasks, Ray tasks) can share
one store and each run is computed once.

    <root>/<experiment>/.leases/<run_id>.json   {"host", "pid", "token", "start", "heartbeat"}  (times: Unix s)

A worker claims a run by creating its lease exclusively: the lease is written whole to a temp file, then
hard-linked to its name (`link` fails if the name exists, atomically, also on NFS; where a file system has no
hard links, `O_CREAT|O_EXCL` is the fallback). No flock/fcntl locks: NFS does not keep them reliably.
While it works, the holder renews `heartbeat` every `interval` seconds (a daemon thread: temp file + rename).
A lease is stale when its heartbeat is older than `timeout`, or at once when its holder ran on this host and
its pid is gone (a killed `genlab run` is redone right away). A stale lease may be taken over: the taker first
creates `<run_id>.json.takeover` exclusively, so of many takers exactly one proceeds, re-reads the lease, and
replaces it only if it is still the stale one it saw. A holder whose lease was taken over sees another token
at its next renewal and is `lost`: its writer raises `LeaseLost` instead of writing on. Hosts' clocks must agree
to well within `timeout` (NTP does this).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

LEASES = ".leases"
DEFAULT_TIMEOUT_S = 300.0  # a heartbeat older than this is stale (GENLAB_LEASE_TIMEOUT overrides)


class Busy(Exception):
    """The run is claimed by a live worker."""

    def __init__(self, holder: "Holder"):
        super().__init__(f"claimed by {holder.describe()}")
        self.holder = holder


class LeaseLost(RuntimeError):
    """Our lease was taken over (we were silent past the timeout): stop writing this run."""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    token: str | None  # None: an unreadable lease file
    start: float
    heartbeat: float

    def age(self, now: float | None = None) -> float:
        """Seconds since the last heartbeat."""
        return (time.time() if now is None else now) - self.heartbeat

    def describe(self, now: float | None = None) -> str:
        return f"{self.host} pid {self.pid} (heartbeat {self.age(now):.0f} s ago)"


def default_timeout() -> float:
    return float(os.environ.get("GENLAB_LEASE_TIMEOUT", DEFAULT_TIMEOUT_S))


def lease_path(root: Path, experiment: str, run_id: str) -> Path:
    """<root>/<experiment>/.leases/<run_id>.json, checked like every path genlab writes: plain names, and
    resolving inside the root (a symlinked .leases folder pointing out of the store is refused)."""
    from genlab.paths import check_name, under

    return under(root, check_name(experiment, "experiment name"), LEASES, f"{check_name(run_id, 'run id')}.json")


def read(path: Path) -> Holder | None:
    """The lease at `path`, None if there is none. An unreadable one (torn by a crash of the O_EXCL fallback)
    counts as held by nobody known, renewed at its file's mtime."""
    try:
        text = path.read_text()
        st = path.stat()
    except FileNotFoundError:
        return None
    try:
        d = json.loads(text)
        return Holder(str(d["host"]), int(d["pid"]), str(d["token"]), float(d["start"]), float(d["heartbeat"]))
    except (ValueError, KeyError, TypeError):
        return Holder("?", -1, None, st.st_mtime, st.st_mtime)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:  # a zombie (dead, not yet reaped) is dead
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_stale(h: Holder, timeout: float, now: float | None = None) -> bool:
    if h.host == socket.gethostname() and h.pid > 0 and not _pid_alive(h.pid):
        return True  # its process is gone: no need to wait for the timeout
    return h.age(now) > timeout


def _write_tmp(path: Path, data: bytes) -> Path:
    from genlab.store.files import FILE_MODE

    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def _create_exclusive(path: Path, data: bytes) -> bool:
    """Create `path` with `data` unless it exists; True if we created it. Atomic on local and NFS file systems."""
    tmp = _write_tmp(path, data)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links here (some FUSE/SMB mounts): exclusive create, then write
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return True
    finally:
        tmp.unlink(missing_ok=True)


class Lease:
    """A claim we hold. `start_heartbeat()` renews it in a daemon thread; `release()` ends it (idempotent)."""

    def __init__(self, path: Path, host: str, pid: int, token: str, start: float, timeout: float):
        self.path, self.host, self.pid, self.token, self.start, self.timeout = path, host, pid, token, start, timeout
        self.interval = max(min(timeout / 10, 30.0), 0.05)  # many renewals per timeout, at most every 30 s
        self.lost = False
        self.released = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _data(self, now: float) -> bytes:
        return json.dumps({"host": self.host, "pid": self.pid, "token": self.token, "start": self.start,
                           "heartbeat": now}).encode()

    def renew(self) -> bool:
        """Write a fresh heartbeat if the lease is still ours; else mark it lost. Returns whether it is ours."""
        if self.lost or self.released:
            return False
        cur = read(self.path)
        if cur is None or cur.token != self.token:
            self.lost = True
            return False
        tmp = _write_tmp(self.path, self._data(time.time()))
        os.replace(tmp, self.path)
        return True

    def check(self) -> None:
        """Raise LeaseLost if another worker has taken the run over (called before each write)."""
        if self.lost:
            raise LeaseLost(f"lease {self.path} was taken over by {read(self.path) and read(self.path).describe()};"
                            " this worker stops writing the run")
        if self.released:
            raise LeaseLost(f"lease {self.path} was released; this worker no longer holds the run")

    def start_heartbeat(self) -> "Lease":
        def beat() -> None:
            while not self._stop.wait(self.interval):
                try:
                    if not self.renew():
                        return
                except OSError:
                    pass  # a hiccup of a shared file system: try again at the next beat

        self._thread = threading.Thread(target=beat, name=f"lease-{self.path.stem}", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        if self.released:
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        cur = read(self.path)
        if cur is not None and cur.token == self.token:
            self.path.unlink(missing_ok=True)
        self.released = True

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire(path: Path, timeout: float | None = None, heartbeat: bool = True) -> Lease:
    """Claim the run whose lease lives at `path`, taking a stale lease over; raise Busy if a live worker holds it."""
    timeout = default_timeout() if timeout is None else timeout
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    lease = Lease(path, socket.gethostname(), os.getpid(), uuid.uuid4().hex, now, timeout)
    for _ in range(5):  # a lease released between our create and our read: try again
        if _create_exclusive(path, lease._data(now)):
            return lease.start_heartbeat() if heartbeat else lease
        holder = read(path)
        if holder is None:
            continue
        if not is_stale(holder, timeout):
            raise Busy(holder)
        if _take_over(path, holder, lease._data(time.time()), timeout):
            return lease.start_heartbeat() if heartbeat else lease
        raise Busy(holder)  # another worker is taking it over right now
    raise Busy(read(path) or Holder("?", -1, None, now, now))


def _take_over(path: Path, stale: Holder, data: bytes, timeout: float) -> bool:
    """Replace the stale lease `stale` with ours, if no other taker is at it and it is still that lease."""
    guard = path.with_name(path.name + ".takeover")
    if not _create_exclusive(guard, data):
        try:  # a taker that died holding the guard: clear it, the next re-check proceeds
            if time.time() - guard.stat().st_mtime > timeout:
                guard.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return False
    try:
        cur = read(path)
        if cur is not None and (cur.token, cur.heartbeat) != (stale.token, stale.heartbeat):
            return False  # renewed or replaced since we looked: not stale any more
        os.replace(_write_tmp(path, data), path)
        return True
    finally:
        guard.unlink(missing_ok=True)


def holder_of(root: Path, experiment: str, run_id: str) -> Holder | None:
    return read(lease_path(root, experiment, run_id))


def as_dict(h: Holder) -> dict:
    return asdict(h)
