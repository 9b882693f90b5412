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

from genlab import spec
from genlab.store import claims
from genlab.executors import pending
from genlab.executors.local import run_local
from genlab.store import Store

SWEEP = {"name": "bench_claims", "seeds": [0, 1, 2], "data": {"name": "separable", "dim": 5, "n_train": 512,
                                                              "n_test": 256},
         "model": {"name": "mlp", "widths": [32]}, "train": {"epochs": 10, "batch_size": 8},
         "sweep": {"init.scale": [0.5, 1.0, 2.0, 4.0]}}  # 12 runs of ~0.5 s each on one core
MODES = {"no heartbeat": None, "heartbeat every 30 s (default)": 300.0, "heartbeat every 0.05 s": 0.5}


def sweep_once(timeout: float | None) -> tuple[float, float, float]:
    """(wall seconds of the sweep, seconds spent training as the runs' own wall_s say, CPU seconds of this
    process, every thread: on a shared machine far steadier than wall time)."""
    exp = spec.parse(SWEEP)
    start_heartbeat = claims.Lease.start_heartbeat
    if timeout is None:
        claims.Lease.start_heartbeat = lambda self: self  # claims without a renewal thread
    results = []
    try:
        with tempfile.TemporaryDirectory() as root:
            st = Store(Path(root), lease_timeout=timeout or 300.0)
            t0, c0 = time.perf_counter(), time.process_time()
            run_local(pending(exp, st), st, on_done=lambda job, res, err: results.append(res),
                      ensemble=(1, False))  # solo runs: one claim, one heartbeat thread each
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        claims.Lease.start_heartbeat = start_heartbeat
    assert all(r and r["status"] == "completed" for r in results), results
    return wall, sum(r["wall_s"] for r in results), cpu


def heartbeat_costs(n: int = 200) -> tuple[float, float]:
    """(seconds per renewal: read, temp file, fsync, rename; seconds to start and stop a heartbeat thread)."""
    with tempfile.TemporaryDirectory() as root:
        lease = claims.acquire(Path(root) / "e" / ".leases" / "r.json", timeout=300.0, heartbeat=False)
        t0 = time.perf_counter()
        for _ in range(n):
            lease.renew()
        renew = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for _ in range(n):
            lease.start_heartbeat()
            lease._stop.set()
            lease._thread.join()
            lease._stop.clear()
        thread = (time.perf_counter() - t0) / n
        lease.release()
    return renew, thread


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sweep_once(300.0)  # warm-up: imports, data generation code paths
    times: dict[str, list[tuple[float, float, float]]] = {m: [] for m in MODES}
    for _ in range(args.repeats):
        for mode, timeout in MODES.items():
            times[mode].append(sweep_once(timeout))
    renew, thread = heartbeat_costs()
    run_s = statistics.median(t for ts in times.values() for _, t, _ in ts) / len(spec.parse(SWEEP).runs)
    print(f"one renewal {1000 * renew:.2f} ms, a heartbeat thread started and stopped {1000 * thread:.2f} ms: on a "
          f"{run_s:.2f} s run with renewals every 30 s, {100 * (thread + renew * run_s / 30) / run_s:.3f} % of it; "
          f"on a 1-hour run {100 * (thread + renew * 120) / 3600:.5f} %")
    base = statistics.median(w for w, _, _ in times["no heartbeat"])
    base_cpu = statistics.median(c for _, _, c in times["no heartbeat"])
    n = len(spec.parse(SWEEP).runs)
    for mode, ts in times.items():
        wall, cpu = statistics.median(w for w, _, _ in ts), statistics.median(c for _, _, c in ts)
        book = statistics.median((w - t) / n for w, t, _ in ts)
        print(f"{mode:32s} {n} runs: wall {wall:6.2f} s ({100 * (wall / base - 1):+5.1f} %), CPU {cpu:6.2f} s "
              f"({100 * (cpu / base_cpu - 1):+5.1f} %) vs no heartbeat; outside training {1000 * book:5.1f} ms/run")


if __name__ == "__main__":
    main()
