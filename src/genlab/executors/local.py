"""Run planned runs in this process, one after another; and `run_one`, what every executor calls."""

from __future__ import annotations

import errno
import platform
import subprocess
import sys
import time
import traceback
from functools import lru_cache
from pathlib import Path
from typing import Any

from genlab.data.files import DataFileError
from genlab.executors import Job, OnDone, RunProgress
from genlab.experiment import PlannedRun
from genlab.store import Store, StoreError, os_advice


WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS)


@lru_cache(maxsize=1)
def provenance() -> dict[str, Any]:
    """Versions and the git hash of the genlab source tree, recorded with every run."""
    import torch

    import genlab

    src = Path(genlab.__file__).resolve().parent
    try:
        git = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        git = None
    return {"genlab": genlab.__version__, "git": git, "torch": torch.__version__,
            "python": sys.version.split()[0], "host": platform.node()}


def run_one(run: PlannedRun, exp_meta: dict[str, Any], store_root: str, device: str = "cpu",
            progress: RunProgress | None = None) -> dict[str, Any]:
    """Train `run` and write it to the store; returns its result summary."""
    from genlab.train.loop import summary, train

    store = Store(store_root)
    cfg = run.config
    meta = {**exp_meta, "point": run.point, "device": device, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **provenance()}
    writer = store.start(cfg.canonical_json(), cfg.experiment, run.run_id, meta)
    t0 = time.perf_counter()
    try:
        out = train(cfg, device=device, log=writer.log, save=writer.save_state,
                    progress=(lambda e, n: progress(run.run_id, e, n)) if progress else None)
        result = summary(out, cfg, time.perf_counter() - t0)
        writer.finish(result)
    except OSError as e:
        writer.close()
        if e.errno not in WRITE_ERRNOS or isinstance(e, DataFileError):
            store.write_error(cfg.experiment, run.run_id, traceback.format_exc())
            raise
        # a write failed (disk full, permissions): the store's problem, not this run's
        raise StoreError(f"store {store.root}: cannot write run {cfg.experiment}/{run.run_id} "
                         f"({os_advice(e)})") from None
    except BaseException as e:
        writer.close()  # no DONE: the next `genlab run` redoes it
        if isinstance(e, Exception):
            store.write_error(cfg.experiment, run.run_id, traceback.format_exc())
        raise
    return result


def run_local(jobs: list[Job], store: Store, *, device: str = "cpu", progress: RunProgress | None = None,
              on_done: OnDone | None = None) -> None:
    """Run each job here, one after another; an exception in one is reported and the rest go on, except a
    StoreError (the store cannot be written: every other run would fail the same way), which stops them."""
    for job in jobs:
        try:
            res, err = run_one(job.run, job.meta, str(store.root), device, progress), None
        except (KeyboardInterrupt, StoreError):
            raise
        except Exception:
            res, err = None, traceback.format_exc()
        if on_done:
            on_done(job, res, err)
