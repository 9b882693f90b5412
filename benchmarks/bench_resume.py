"""Cost of mid-run resume snapshots on a small sweep: record.resume_every = 0 (the default: only after 300 s
of training) vs 1 (a snapshot after every epoch), through the store (atomic writes), solo and ensembles.

    python benchmarks/bench_resume.py
Prints CPU seconds (process time, robust on a shared machine) and the overhead; asserts nothing.
"""

from __future__ import annotations

import tempfile
import time

import torch

from genlab.executors import Job
from genlab.executors.local import run_local
from genlab.spec.loader import PlannedRun
from genlab.spec import RunConfig
from genlab.store import Store


def jobs(every: int) -> list[Job]:
    cfgs = [RunConfig.model_validate({
        "experiment": "bench_resume", "seed": s, "data": {"name": "digits"}, "model": {"name": "mlp", "widths": [64]},
        "optim": {"lr": lr, "momentum": 0.9}, "train": {"epochs": 20, "batch_size": 32},
        "record": {"resume_every": every}}) for lr in (0.01, 0.05) for s in range(4)]
    return [Job(PlannedRun(c, {}), {"experiment": "bench_resume"}) for c in cfgs]


def cpu(every: int, ensemble: tuple[int, bool]) -> float:
    with tempfile.TemporaryDirectory() as root:
        t = time.process_time()
        run_local(jobs(every), Store(root), ensemble=ensemble)
        return time.process_time() - t


def main() -> None:
    torch.set_num_threads(1)
    cpu(0, (1, False))  # warm: imports, the data cache
    for name, ens in (("solo", (1, False)), ("ensemble of 8", (8, False))):
        base = min(cpu(0, ens) for _ in range(3))
        snap = min(cpu(1, ens) for _ in range(3))
        print(f"{name}: 8 runs × 20 epochs, resume_every=0 {base:.2f} CPU s, =1 {snap:.2f} CPU s: "
              f"{100 * (snap / base - 1):+.1f} % (a snapshot after every epoch)")


if __name__ == "__main__":
    main()
