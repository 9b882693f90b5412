"""Run jobs as Ray tasks (`genlab run SPEC --cluster ray [--address HOST:PORT]`): one task per unit (a run, or
an ensemble group: executors/ensemble.py), with its CPUs and GPUs, scheduled by Ray on the cluster's nodes.

Needs the `ray` extra (`pip install 'genlab[ray]'`), imported only here. Each task calls `run_unit` on its node,
which claims each run in the store (genlab.store.claims) before it trains: the store must be a file system every
node sees, and a Ray run, a Slurm array and local pools can share it. Without `address` a local Ray cluster
is started for the command (and stopped after); with one, the tasks join that cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from genlab.executors import Job, OnDone
from genlab.store import Store


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # an existing cluster ("auto", "ray://host:10001", "host:6379"); None: start one
    cpus: float = 1  # CPUs per run (also its torch threads, rounded)
    gpus: float = 0  # GPUs per run (fractions share a GPU)
    num_cpus: int | None = None  # a local cluster's CPUs (default: the machine's)


def _task(unit: list[Job], root: str, device: str, threads: int) -> list[tuple[dict | None, str | None]]:
    """What each Ray task runs: one unit, each run's failure as a traceback string (as the pool executor)."""
    from genlab.runtime import setup_worker
    from genlab.executors.ensemble import run_unit

    setup_worker(threads)
    return [(res, err) for _, res, err in run_unit(unit, root, device)]


def run_ray(jobs: list[Job], store: Store, *, options: RayOptions = RayOptions(), device: str = "auto",
            on_done: OnDone | None = None, ensemble: tuple[int, bool] = (1, False)) -> None:
    """Submit one Ray task per unit (groups of up to `ensemble` runs train as one ensemble), then report each
    run as its task finishes (failures with their traceback)."""
    from genlab.executors.ensemble import ensembles

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
        units = ensembles(jobs, ensemble[0], auto=ensemble[1], device=device, threads=threads)
        waiting = {task.remote(u, root, device, threads): u for u in units}
        while waiting:
            ready, _ = ray.wait(list(waiting), num_returns=1)
            for ref in ready:
                unit = waiting.pop(ref)
                try:
                    outs = ray.get(ref)
                except Exception as e:  # the task's worker died (killed, out of memory): Ray's error says how
                    outs = [(None, f"{type(e).__name__}: {e}")] * len(unit)
                for job, (res, err) in zip(unit, outs):
                    if on_done:
                        on_done(job, res, err)
    finally:
        if started:
            ray.shutdown()
