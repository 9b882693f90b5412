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

from genlab.executors import Job, OnDone, RunProgress
from genlab.experiment import PlannedRun
from genlab.store import Store, StoreError, os_advice


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

    def log(row: dict[str, Any]) -> None:  # progress is read off the rows the store receives
        writer.log(row)
        if progress:
            progress(run.run_id, row, cfg.train.epochs)

    try:
        out = train(cfg, device=device, log=log, save=writer.save_state)
        result = summary(out, cfg, time.perf_counter() - t0)
        writer.finish(result)
    except BaseException as e:
        writer.close()  # no DONE: the next `genlab run` redoes it
        failed(store, [cfg], e)
        raise
    return result


WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS)


def failed(store: Store, configs: list, e: BaseException) -> None:
    """After a run (or an ensemble's unfinished members) failed with `e`: a write the store refused (disk
    full, permissions) becomes one StoreError for the whole sweep; any other error is written to each run's
    folder as error.txt, and re-raised by the caller."""
    from genlab.data.files import DataFileError

    if isinstance(e, OSError) and e.errno in WRITE_ERRNOS and not isinstance(e, DataFileError):
        names = ", ".join(f"{c.experiment}/{c.run_id}" for c in configs[:3])
        raise StoreError(f"store {store.root}: cannot write run {names} ({os_advice(e)})") from None
    if isinstance(e, Exception):
        text = traceback.format_exc()
        for c in configs:
            store.write_error(c.experiment, c.run_id, text)


def run_local(jobs: list[Job], store: Store, *, device: str = "cpu", progress: RunProgress | None = None,
              on_done: OnDone | None = None, ensemble: tuple[int, bool] = (1, False)) -> None:
    """Run each job here, one unit after another (groups of up to `ensemble` runs train as one ensemble);
    an exception in one is reported and the rest go on, except a StoreError (the store cannot be written:
    every other run would fail the same way), which stops them."""
    from genlab.executors.ensemble import plan, run_unit

    for unit in plan(jobs, ensemble[0], auto=ensemble[1], device=device):
        for job, res, err in run_unit(unit, str(store.root), device, progress):
            if on_done:
                on_done(job, res, err)
