"""One door to every executor: `launch(jobs, store, options, progress, on_done)`, where `Launch` says which
executor and how (this process, a pool of worker processes, Ray or Slurm through submitit) — the same call
for all of them, so a caller (`genlab run`, `--decide`'s rounds) never branches on the executor."""

from __future__ import annotations

from dataclasses import dataclass

from genlab.executors import Job, OnDone, RunProgress
from genlab.store import Store


@dataclass(frozen=True)
class Launch:
    """How to run jobs. `cluster`: None (this machine: one process, or `workers` processes), "ray", or a
    submitit cluster ("slurm", "local", "debug"). `ensemble`: (group size K, auto) — see executors.ensemble.
    `threads`: torch CPU threads per process (per Ray/Slurm task: its CPUs). `gpus`, `partition`, `time_min`
    and `address` are read by the cluster executors only."""

    workers: int = 1
    device: str = "cpu"
    threads: int = 1
    ensemble: tuple[int, bool] = (1, False)
    cluster: str | None = None
    address: str | None = None  # Ray: the cluster to join (None: start a local one)
    partition: str | None = None  # Slurm
    gpus: int = 0  # Slurm / Ray: per run
    time_min: int = 24 * 60  # Slurm: time limit per run

    @property
    def graceful(self) -> bool:
        """Whether Ctrl-C reaches the runs (this process and its pool) so they stop after their epoch."""
        return self.cluster is None


def launch(jobs: list[Job], store: Store, options: Launch, progress: RunProgress | None = None,
           on_done: OnDone | None = None) -> None:
    """Run `jobs` through the executor `options` names; progress and each job's end are reported as they
    happen (Ray and Slurm report ends only)."""
    o = options
    if o.cluster == "ray":
        from genlab.executors.ray import RayOptions, run_ray

        ray = RayOptions(address=o.address, cpus=max(o.threads, 1), gpus=o.gpus)
        return run_ray(jobs, store, options=ray, device=o.device, on_done=on_done, ensemble=o.ensemble)
    if o.cluster is not None:
        from genlab.executors.slurm import SlurmOptions, run_slurm

        slurm = SlurmOptions(cluster=o.cluster, partition=o.partition, gpus=o.gpus, cpus=max(o.threads, 1),
                             timeout_min=o.time_min)
        return run_slurm(jobs, store, options=slurm, device=o.device, on_done=on_done)
    if o.workers > 1:
        from genlab.executors.pool import run_pool

        return run_pool(jobs, store, workers=o.workers, device=o.device, progress=progress, on_done=on_done,
                        threads=o.threads, ensemble=o.ensemble)
    from genlab.executors.local import run_local
    from genlab.runtime import setup_worker

    setup_worker(o.threads)
    run_local(jobs, store, device=o.device, progress=progress, on_done=on_done, ensemble=o.ensemble)
