"""Run jobs as Ray tasks (`genlab run SPEC --cluster ray [--address HOST:PORT]`): one task per run, with its
CPUs and GPUs, scheduled by Ray on whatever nodes the cluster has.

Needs the `ray` extra (`pip install 'genlab[ray]'`), imported only here. Each task calls `run_one` on its node,
which claims the run in the store (genlab.claims) before it trains: the store must be a file system every
node sees, and a Ray run, a Slurm array and local pools can share it. Without `address` a local Ray cluster
is started for the command (and stopped after); with one, the tasks join that cluster.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from genlab.executors import Job, OnDone
from genlab.store import Store


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # an existing cluster ("auto", "ray://host:10001", "host:6379"); None: start one
    cpus: float = 1  # CPUs per run (also its torch threads, rounded)
    gpus: float = 0  # GPUs per run (fractions share a GPU)
    num_cpus: int | None = None  # a local cluster's CPUs (default: the machine's)


def _task(run, meta: dict[str, Any], root: str, device: str, retry_failed: bool,
          threads: int) -> tuple[dict | None, str | None]:
    """What each Ray task runs: one run, its failure as a traceback string (as the pool executor)."""
    import torch

    from genlab.executors.local import run_one

    torch.set_num_threads(threads)
    try:
        return run_one(run, meta, root, device, None, retry_failed), None
    except Exception:
        return None, traceback.format_exc()


def run_ray(jobs: list[Job], store: Store, *, options: RayOptions = RayOptions(), device: str = "auto",
            on_done: OnDone | None = None) -> None:
    """Submit one Ray task per job, then report each as it finishes (failures with their traceback)."""
    try:
        import ray
    except ImportError:
        raise ValueError("the Ray executor needs ray: pip install 'genlab[ray]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=options.address, num_cpus=options.num_cpus if options.address is None else None,
                 include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=options.cpus, num_gpus=options.gpus, max_retries=0)(_task)
        root, threads = str(store.root.resolve()), max(int(options.cpus), 1)
        waiting = {task.remote(j.run, j.meta, root, device, j.retry_failed, threads): j for j in jobs}
        while waiting:
            ready, _ = ray.wait(list(waiting), num_returns=1)
            for ref in ready:
                job = waiting.pop(ref)
                try:
                    res, err = ray.get(ref)
                except Exception as e:  # the task's worker died (killed, out of memory): Ray's error says how
                    res, err = None, f"{type(e).__name__}: {e}"
                if on_done:
                    on_done(job, res, err)
    finally:
        if started:
            ray.shutdown()
