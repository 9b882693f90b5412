"""Run jobs on a Slurm cluster through submitit: one array task per run (`genlab run SPEC --cluster slurm`).

Needs the `slurm` extra (`pip install 'genlab[slurm]'`), imported only here. Each task calls `run_one` on its
node and writes its run folder itself, so the store must be on a filesystem the nodes share; this process
only submits, waits and reports. A failed task is reported with its traceback and the others go on; a
re-run submits only the runs not finished, as locally; each task claims its run (genlab.store.claims), so tasks
sharing the store with other workers skip what those hold. `cluster = "local"` (subprocesses on this machine) and
`"debug"` (in this process) are submitit's stand-ins, for trying a spec before a cluster sees it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from genlab.executors import Job, OnDone
from genlab.executors.run import run_one
from genlab.store import Store

CLUSTERS = ("slurm", "local", "debug")


@dataclass(frozen=True)
class SlurmOptions:
    cluster: str = "slurm"  # slurm | local | debug (see the module docstring)
    partition: str | None = None  # Slurm partition (None: the cluster's default)
    gpus: int = 0  # GPUs per task
    cpus: int = 2  # CPUs per task
    timeout_min: int = 24 * 60  # wall-clock limit per task, minutes
    parallelism: int = 64  # array tasks running at once
    folder: Path | None = None  # submitit's logs and pickles (default: <store>/.submitit)


def _task(*args):
    """What each array task runs: `run_one` in a process set up to train (genlab.runtime)."""
    from genlab.runtime import keep_freed_memory

    keep_freed_memory()
    return run_one(*args)


def run_slurm(jobs: list[Job], store: Store, *, options: SlurmOptions = SlurmOptions(), device: str = "auto",
              on_done: OnDone | None = None, poll_s: float = 5.0) -> None:
    """Submit one array task per job, then report each as it finishes (failures with their traceback)."""
    if options.cluster not in CLUSTERS:
        raise ValueError(f"--cluster must be one of {', '.join(CLUSTERS)}, got {options.cluster!r}")
    try:
        import submitit
    except ImportError:
        raise ValueError("the Slurm executor needs submitit: pip install 'genlab[slurm]'") from None
    folder = options.folder or store.root / ".submitit"
    executor = submitit.AutoExecutor(folder=str(folder), cluster=options.cluster)
    params = {"timeout_min": options.timeout_min, "cpus_per_task": options.cpus, "name": "genlab"}
    if options.cluster == "slurm":
        params.update(slurm_array_parallelism=options.parallelism, gpus_per_node=options.gpus,
                      **({"slurm_partition": options.partition} if options.partition else {}))
    executor.update_parameters(**params)
    n = len(jobs)
    futures = executor.map_array(_task, [j.run for j in jobs], [j.meta for j in jobs],
                                 [str(store.root.resolve())] * n, [device] * n, [None] * n,
                                 [j.retry_failed for j in jobs])
    waiting = dict(zip(futures, jobs))
    while waiting:
        finished = [f for f in waiting if options.cluster == "debug" or f.done()]
        for f in finished:
            job = waiting.pop(f)
            try:
                res, err = f.result(), None
            except Exception as e:  # submitit's FailedJobError carries the task's traceback in its message
                res, err = None, f"{type(e).__name__}: {e}"
            if on_done:
                on_done(job, res, err)
        if waiting and not finished:
            time.sleep(poll_s)
