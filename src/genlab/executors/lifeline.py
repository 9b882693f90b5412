"""Worker processes die with their parent: killing `genlab run` by its pid stops its workers, so nothing keeps
writing the store after it. On Linux the kernel sends SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG,
through ctypes); everywhere, a watchdog thread exits the worker when its parent pid changes (the fallback, e.g.
on macOS, and for the moment between the spawn and the prctl call)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """Call first thing in a worker; `parent_pid` is the pid of the process that started it."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the watchdog still works
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        while True:
            threading.Event().wait(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)  # orphaned: no cleanup, no more writes

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
