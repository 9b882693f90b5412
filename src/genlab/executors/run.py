"""What every executor shares: `run_one` (claim a run, train it, write it to the store), `claim_to_train` (the
lease and the checks under it), `provenance` (versions and git hash, recorded with every run), `restart` (a
resume state that does not fit: set aside, start over) and `store_failure` (a write the store refuses stops
the sweep)."""

from __future__ import annotations

import errno
import os
import platform
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from genlab.executors import RunProgress, skipped
from genlab.interrupt import Interrupted, result as interrupt_result
from genlab.spec.loader import PlannedRun
from genlab.store import ERROR, RESUME, Store, StoreError, os_advice
from genlab.store.claims import Busy, Lease, LeaseLost


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


def claim_to_train(store: Store, experiment: str, run_id: str, retry_failed: bool
                   ) -> tuple[Lease | None, dict[str, Any] | None]:
    """(our lease, None) if this worker should train the run now; else (None, the `skipped` result saying why:
    another worker holds it, it is finished, or it failed before and `retry_failed` is off)."""
    try:
        lease = store.claim(experiment, run_id)
    except Busy as e:
        return None, skipped("running", e.holder.describe())
    if store.is_done(experiment, run_id):  # checked again under the lease: finished meanwhile?
        lease.release()
        return None, skipped("done")
    if (store.run_dir(experiment, run_id) / ERROR).exists() and not retry_failed:
        lease.release()
        return None, skipped("failed", "failed before; --retry-failed redoes it")
    return lease, None


def run_one(run: PlannedRun, exp_meta: dict[str, Any], store_root: str, device: str = "cpu",
            progress: RunProgress | None = None, retry_failed: bool = False) -> dict[str, Any]:
    """Claim `run`, train it and write it to the store; returns its result summary, or a `skipped` result when
    another worker holds it, it is finished, or it failed before (and not `retry_failed`). A failure leaves
    its error and traceback in the run folder (error.json) and is raised."""
    from genlab.train.loop import summary, train
    from genlab.train.resume import Foreign

    store = Store(store_root)
    cfg = run.config
    lease, skip = claim_to_train(store, cfg.experiment, run.run_id, retry_failed)
    if lease is None:
        return skip
    try:
        meta = {**exp_meta, "point": run.point, "device": device, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "pid": os.getpid(), **provenance()}
        try:
            writer = store.start(cfg.canonical_json(), cfg.experiment, run.run_id, meta, lease=lease)
        except LeaseLost:
            raise
        except Exception as e:
            if (full := store_failure(store, [cfg], e)) is not None:
                raise full from None
            store.write_error(cfg.experiment, run.run_id, e, lease)  # every failed run has its error.json
            raise
        t0 = time.perf_counter()

        def log(row: dict[str, Any]) -> None:  # progress is read off the rows the store receives
            writer.log(row)
            if progress:
                progress(run.run_id, row, cfg.train.epochs)

        try:
            try:
                out = train(cfg, device=device, log=log, save=writer.save_state, save_resume=writer.save_resume,
                            resumed=writer.resumed)  # continue from the last resume state a killed holder left
            except Foreign as e:  # a snapshot that does not fit this run (nothing trained yet): start over
                writer = restart(store, writer, cfg, run.run_id, meta, lease, e)
                out = train(cfg, device=device, log=log, save=writer.save_state, save_resume=writer.save_resume)
            result = summary(out, cfg, time.perf_counter() - t0)
            writer.finish(result)
        except Exception as e:
            if (full := store_failure(store, [cfg], e)) is not None:
                writer.close()
                raise full from None  # the store refuses writes: every run would fail alike, the sweep stops
            writer.fail(e)  # error.json: `genlab status` shows it, `genlab run --retry-failed` redoes the run
            raise
        except Interrupted as e:  # Ctrl-C: stopped after an epoch, its resume snapshot written
            writer.close()
            return interrupt_result(e.stopped.get(run.run_id, 0), cfg.train.epochs)
        except BaseException:
            writer.close()  # interrupted (Ctrl-C): no DONE, no error; the next `genlab run` redoes it
            raise
        return result
    except LeaseLost as e:
        return skipped("running", str(e))
    finally:
        lease.release()


def restart(store: Store, writer, cfg, run_id: str, meta: dict[str, Any], lease: Lease, why: Exception):
    """Set the writer's resume.pt aside (one warning naming it) and open the run afresh under the same lease."""
    store.set_aside(writer.path, f"{RESUME}: {why}")
    writer.close()
    return store.start(cfg.canonical_json(), cfg.experiment, run_id, meta, lease=lease)


WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS)


def store_failure(store: Store, configs: list, e: BaseException) -> StoreError | None:
    """A StoreError for the whole sweep when `e` is a write the store refused (disk full, permissions), else
    None. A missing data file (a FileNotFoundError) is the run's own problem, not the store's."""
    if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
        names = ", ".join(f"{c.experiment}/{c.run_id}" for c in configs[:3])
        return StoreError(f"store {store.root}: cannot write run {names} ({os_advice(e)})")
    return None
