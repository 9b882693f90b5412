"""Ctrl-C that keeps the work: the first SIGINT/SIGTERM asks every run in flight to stop after its current
epoch; the second exits at once.

    first signal   `request()`: a flag this process (and, through `share`, every pool worker) reads once per
                   epoch (`requested()`, in `train.loop.fit`). Each running run then finishes its epoch,
                   writes a resume snapshot (train.resume, the one snapshot writer), closes its files and
                   releases its claim; the executors start nothing new; `genlab run` prints one line per
                   stopped run and exits 130.
    second signal  os._exit(130): no cleanup. The store holds what was last written atomically (a run's last
                   resume snapshot and metrics rows up to it), and the dead process's claims go stale at once
                   on this host.

Nothing here imports torch: the CLI installs the handlers around training only (`handling`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Iterator

EXIT_CODE = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C'd command

_local = threading.Event()  # this process's flag
_shared: Any = None  # a multiprocessing Event shared with pool workers (None outside a pool)


class Interrupted(KeyboardInterrupt):
    """Training stopped on request after a finished epoch. `stopped`: run id → epochs trained (each of those
    runs has a resume snapshot there, when it has a store to write to)."""

    def __init__(self, stopped: dict[str, int]):
        super().__init__(f"interrupted: {stopped}")
        self.stopped = stopped


def request() -> None:
    """Ask every run in flight (here and in the workers sharing our event) to stop after its epoch."""
    _local.set()
    if _shared is not None:
        _shared.set()


def requested() -> bool:
    return _local.is_set() or (_shared is not None and _shared.is_set())


def reset() -> None:
    """Forget a request (a new `genlab run` in the same process, e.g. in tests or a notebook)."""
    global _received
    _received = 0
    _local.clear()
    if _shared is not None:
        _shared.clear()


def share(event: Any) -> None:
    """Use `event` (a multiprocessing Event, or None to stop sharing) as the flag shared with pool workers;
    a request made before is passed on."""
    global _shared
    _shared = event
    if event is not None and _local.is_set():
        event.set()


def result(epoch: int, epochs: int) -> dict[str, Any]:
    """The result an executor reports for a run it stopped: where it stopped and how long it is."""
    return {"status": "interrupted", "epoch": epoch, "epochs": epochs}


def line(experiment: str, run_id: str, res: dict[str, Any]) -> str:
    """`fig3_5/ab12cd34ef56: stopped at epoch 51/200, resumes there` (epoch 0: nothing trained, starts over)."""
    e, n = res["epoch"], res["epochs"]
    tail = "resumes there" if e > 0 else "starts over"
    return f"{experiment}/{run_id}: stopped at epoch {e}/{n}, {tail}"


_announce = True  # the CLI's process says what happens; pool workers stay quiet
_received = 0  # signals this process received (not requests passed on by another process: a worker gets
#                the terminal's Ctrl-C after its parent has already set the shared flag)


def _handler(signum: int, frame: Any) -> None:
    global _received
    _received += 1
    if _received > 1:
        os._exit(EXIT_CODE)  # the second signal: at once
    request()
    if not _announce:
        return
    try:
        os.write(2, b"\nstopping: each run finishes its epoch and writes a resume snapshot "
                    b"(Ctrl-C again exits at once)\n")
    except OSError:
        pass


def install(worker: bool = False) -> dict[int, Any]:
    """Our handlers for SIGINT and SIGTERM (main thread only); returns the previous ones for `restore`. A pool
    `worker` handles SIGINT only (a terminal's Ctrl-C reaches the whole process group) and says nothing: the
    pool's own SIGTERM (terminating a broken pool) must still end it."""
    global _announce
    _announce = not worker
    signals = (signal.SIGINT,) if worker else (signal.SIGINT, signal.SIGTERM)
    return {s: signal.signal(s, _handler) for s in signals}


def restore(previous: dict[int, Any]) -> None:
    for s, h in previous.items():
        signal.signal(s, h)


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Graceful stops inside the block (a no-op outside the main thread, where signals cannot be handled)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    reset()
    previous = install()
    try:
        yield
    finally:
        if not requested():  # after a first Ctrl-C the handler stays: a second one while the stopped runs are
            restore(previous)  # listed still exits at once with 130, not with Python's KeyboardInterrupt
