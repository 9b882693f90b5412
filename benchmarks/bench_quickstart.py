"""Time the quickstart (000 Figs 3-1..3-7, small profiles) end to end, and the batch-1 SGD step rate.

    python benchmarks/bench_quickstart.py            # prints steps/s and the quickstart wall time
Runs into a temporary store; prints numbers, asserts nothing (benchmarks are not tests).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from genlab.spec import loader as experiment

ROOT = Path(__file__).resolve().parents[1]
SPECS = [str(ROOT / f"experiments/000/fig3_{i}.toml") for i in range(1, 8)]


def step_rate(threads: int, steps: int = 3000) -> float:
    """Batch-1 SGD steps per second of the 5→2 linear net with cross-entropy (the ch. 3 inner loop)."""
    from genlab.spec import RunConfig
    from genlab.train.loop import train

    torch.set_num_threads(threads)
    cfg = RunConfig.model_validate({"experiment": "bench", "data": {"name": "separable", "n_train": steps,
                                                                    "n_test": 10},
                                    "model": {"name": "linear"}, "train": {"epochs": 1, "batch_size": 1},
                                    "record": {"checkpoint": "none", "save_init": False}})
    out = train(cfg)
    return steps / out.history[1]["epoch_s"]


def main() -> None:
    for t in (1, 2):
        print(f"batch-1 SGD, linear 5→2: {step_rate(t):,.0f} steps/s with {t} torch thread(s)")
    with tempfile.TemporaryDirectory() as store:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "genlab", "run", *SPECS, "--profile", "small", "-j", "2",
                        "--store", store], check=True, capture_output=True)
        t1 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "genlab", "figures", *SPECS, "--profile", "small", "--store", store,
                        "--out", str(Path(store) / "figures")], check=True, capture_output=True)
        t2 = time.perf_counter()
    n_runs = sum(len(experiment.load(p).runs) for p in SPECS)
    print(f"quickstart: train {n_runs} runs {t1 - t0:.1f} s, draw 7 figures {t2 - t1:.1f} s, total {t2 - t0:.1f} s "
          f"on {torch.get_num_threads()} cores visible to torch")


if __name__ == "__main__":
    main()
