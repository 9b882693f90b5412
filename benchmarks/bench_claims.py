"""The cost of claims on a small sweep: heartbeats (off, every 30 s as by default, every 0.05 s as a stress),
and the per-run bookkeeping around training (claim, state checks, folder, manifest with SHA-256, release).

    OMP_NUM_THREADS=1 python benchmarks/bench_claims.py [--repeats 3]
Runs into temporary stores, in this process (torch 1 thread); modes alternate and the median of each is shown.
Prints numbers, asserts nothing (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from genlab import claims, spec
from genlab.executors import pending
from genlab.executors.local import run_local
from genlab.store import Store

SWEEP = {"name": "bench_claims", "seeds": [0, 1, 2], "data": {"name": "separable", "dim": 5, "n_train": 512,
                                                              "n_test": 256},
         "model": {"name": "mlp", "widths": [32]}, "train": {"epochs": 10, "batch_size": 8},
         "sweep": {"init.scale": [0.5, 1.0, 2.0, 4.0]}}  # 12 runs of ~0.5 s each on one core
MODES = {"no heartbeat": None, "heartbeat every 30 s (default)": 300.0, "heartbeat every 0.05 s": 0.5}


def sweep_once(timeout: float | None) -> tuple[float, float]:
    """(wall seconds of the sweep, seconds spent training as the runs' own wall_s say)."""
    exp = spec.parse(SWEEP)
    start_heartbeat = claims.Lease.start_heartbeat
    if timeout is None:
        claims.Lease.start_heartbeat = lambda self: self  # claims without a renewal thread
    results = []
    try:
        with tempfile.TemporaryDirectory() as root:
            st = Store(Path(root), lease_timeout=timeout or 300.0)
            t0 = time.perf_counter()
            run_local(pending(exp, st), st, on_done=lambda job, res, err: results.append(res))
            wall = time.perf_counter() - t0
    finally:
        claims.Lease.start_heartbeat = start_heartbeat
    assert all(r and r["status"] == "completed" for r in results), results
    return wall, sum(r["wall_s"] for r in results)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sweep_once(300.0)  # warm-up: imports, data generation code paths
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    for _ in range(args.repeats):
        for mode, timeout in MODES.items():
            times[mode].append(sweep_once(timeout))
    base = statistics.median(w for w, _ in times["no heartbeat"])
    n = len(spec.parse(SWEEP).runs)
    for mode, ts in times.items():
        wall = statistics.median(w for w, _ in ts)
        book = statistics.median((w - t) / n for w, t in ts)
        print(f"{mode:32s} sweep of {n} runs {wall:6.2f} s ({100 * (wall / base - 1):+5.1f} % vs no heartbeat); "
              f"outside training {1000 * book:5.1f} ms/run")


if __name__ == "__main__":
    main()
