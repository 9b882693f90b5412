"""benchmarks/bench_gpu.py is the one script a short GPU session runs: keep it working on the CPU, tiny."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def test_bench_gpu_runs_its_three_parts_on_a_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "GENLAB_DATA": str(tmp_path / "no-cifar-here"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--device", "cpu",
                           "--images", "256", "--members", "2", "--sweep-runs", "2", "--epochs", "2",
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["data"].startswith("synthetic: 256 train")
    assert list(r["solo_images_per_s"]) == ["float32 eager"]  # the CUDA-only variants are skipped on a CPU
    assert r["solo_images_per_s"]["float32 eager"] > 0
    ens = r["ensemble"]
    assert ens["members"] == 2
    assert abs(ens["speedup"] - ens["model_images_per_s"] / r["solo_images_per_s"]["float32 eager"]) < 1e-9
    # two conv runs on a CPU: `auto` keeps them solo, so two units, each projected to its 200 epochs
    assert r["sweep"]["runs"] == 2 and r["sweep"]["units"] == 2
    assert r["sweep"]["projected_minutes"] * 60 > r["sweep"]["measured_s"]
    assert r["torch"] == torch.__version__
