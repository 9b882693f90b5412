"""Run planned runs in this process, one after another; and `run_one`, what every executor calls."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from genlab.executors import Job, OnDone, RunProgress
from genlab.spec import PlannedRun
from genlab.store import Store


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
    except BaseException:
        writer.close()  # no DONE: the next `genlab run` redoes it
        raise
    result = summary(out, cfg, time.perf_counter() - t0)
    writer.finish(result)
    return result


def run_local(jobs: list[Job], store: Store, *, device: str = "cpu", progress: RunProgress | None = None,
              on_done: OnDone | None = None, ensemble: tuple[int, bool] = (1, False)) -> None:
    """Run each job here, one unit after another (groups of up to `ensemble` runs train as one ensemble);
    an exception in one is reported and the rest go on."""
    from genlab.executors.ensemble import plan, run_unit

    for unit in plan(jobs, ensemble[0], auto=ensemble[1], device=device):
        for job, res, err in run_unit(unit, str(store.root), device, progress):
            if on_done:
                on_done(job, res, err)
