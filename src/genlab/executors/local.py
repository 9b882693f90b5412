"""Run planned runs in this process, one after another; and `run_one`, what every executor calls."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
import traceback
from functools import lru_cache
from pathlib import Path
from typing import Any

from genlab.claims import Busy, LeaseLost
from genlab.executors import Job, OnDone, RunProgress, dispatch, skipped
from genlab.spec import PlannedRun
from genlab.store import ERROR, Store


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
            progress: RunProgress | None = None, retry_failed: bool = False) -> dict[str, Any]:
    """Claim `run`, train it and write it to the store; returns its result summary, or a `skipped` result when
    another worker holds it, it is finished, or it failed before (and not `retry_failed`). A failure leaves
    its error and traceback in the run folder (error.json) and is raised."""
    from genlab.train.loop import summary, train

    store = Store(store_root)
    cfg = run.config
    try:
        lease = store.claim(cfg.experiment, run.run_id)
    except Busy as e:
        return skipped("running", e.holder.describe())
    try:
        if store.is_done(cfg.experiment, run.run_id):  # checked again under the lease: finished meanwhile?
            return skipped("done")
        if (store.run_dir(cfg.experiment, run.run_id) / ERROR).exists() and not retry_failed:
            return skipped("failed", "failed before; --retry-failed redoes it")
        meta = {**exp_meta, "point": run.point, "device": device, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "pid": os.getpid(), **provenance()}
        writer = store.start(cfg.canonical_json(), cfg.experiment, run.run_id, meta, lease=lease)
        t0 = time.perf_counter()
        try:
            out = train(cfg, device=device, log=writer.log, save=writer.save_state,
                        progress=(lambda e, n: progress(run.run_id, e, n)) if progress else None)
            result = summary(out, cfg, time.perf_counter() - t0)
            writer.finish(result)
        except Exception as e:
            writer.fail(e)  # error.json: `genlab status` shows it, `genlab run --retry-failed` redoes the run
            raise
        except BaseException:
            writer.close()  # interrupted (Ctrl-C): no DONE, no error; the next `genlab run` redoes it
            raise
        return result
    except LeaseLost as e:
        return skipped("running", str(e))
    finally:
        lease.release()


def run_local(jobs: list[Job], store: Store, *, device: str = "cpu", progress: RunProgress | None = None,
              on_done: OnDone | None = None) -> None:
    """Run each job here, one after another, each re-checked when its turn comes; an exception in one is
    reported and the rest go on."""
    for job in dispatch(jobs, store, on_done):
        try:
            res, err = run_one(job.run, job.meta, str(store.root), device, progress, job.retry_failed), None
        except KeyboardInterrupt:
            raise
        except Exception:
            res, err = None, traceback.format_exc()
        if on_done:
            on_done(job, res, err)
