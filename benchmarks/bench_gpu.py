"""Issue 12's GPU targets in one process, prepared for a short device session (and smoke-tested on the CPU).

    python benchmarks/bench_gpu.py --device cuda --out results.json          # the real check (~5 min on a GPU)
    python benchmarks/bench_gpu.py --device cpu --images 512 --members 2 --sweep-runs 2 --epochs 2  # smoke

The data: CIFAR-10's real files when they are under the data root, else `--images` synthetic uint8 images
written in cifar-10-python.tar.gz's format under a temporary data root (speed does not depend on pixel values).
Every timing goes through genlab's own trainers (`train.loop.train`, `train.ensemble.train_ensemble`) on
configs of 000's ch4_convnet3 (ConvNet3 width 64, batch 128, SGD, no early stop), with per-epoch wall times
taken from the trainer's per-epoch log (the first epoch is warm-up: compile, allocator, cuDNN autotune).
An epoch includes the trainer's per-epoch evaluation of the training and test error.

  1. solo: one ConvNet3 — images/s for float32 eager, bf16 autocast, channels_last, torch.compile and all three
     (the CUDA-only ones are skipped on a CPU). Target: ≥ 250k train images/s.
  2. ensemble: `--members` ConvNet3 (ch4's first init stds) as one ensemble — model·images/s against the eager
     solo loop of part 1 (one model at a time). Target: ≥ 10×.
  3. sweep: ch4_convnet3's full profile (56 runs, 200 epochs), planned as `genlab run --ensemble auto` plans
     it on this device; each unit trained `--epochs` epochs and projected to 200 (first epochs as measured,
     the rest at the steady epoch time; no early stop assumed, so an upper bound). Target: < 10 min.

Prints each number as it is made and writes them all to `--out` (JSON). Asserts nothing (a benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.data import files
from genlab.executors import Job
from genlab.executors.ensemble import K_AUTO, ensembles
from genlab.spec.loader import PlannedRun, load
from genlab.spec import RunConfig
from genlab.train.ensemble import train_ensemble
from genlab.train.loop import train

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "experiments" / "000" / "ch4_convnet3.toml"
FULL_EPOCHS = 200  # ch4_convnet3's epochs
TARGETS = {"solo_images_per_s": 250_000, "ensemble_speedup": 10.0, "sweep_minutes": 10.0}


def synthetic_cifar(images: int, root: Path) -> str:
    """Write `images` training and images // 5 test images (uint8, seeded) as cifar-10-python.tar.gz under
    root, point the data layer's checksum at them, and return a description."""
    rng = np.random.default_rng(0)
    n_test = max(images // 5, 10)
    x, xt = (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8) for n in (images, n_test))
    y, yt = rng.integers(0, 10, images), rng.integers(0, 10, n_test)
    path = files.write_cifar10_tar(files.file_path("cifar10", "cifar-10-python.tar.gz", root), x, y, xt, yt,
                                   compresslevel=1)
    files.SOURCES["cifar10"] = tuple(s._replace(sha256=files.sha256_of(path)) for s in files.SOURCES["cifar10"])
    return f"synthetic: {images} train / {n_test} test uint8 images in cifar-10-python.tar.gz format"


def ch4_configs(runs: int | None = None) -> list[RunConfig]:
    """The full profile's runs of ch4_convnet3 (width 32 then 64, 27 stds + the random-label point each)."""
    cfgs = [r.config for r in load(SPEC, "full").runs]
    return cfgs[:runs] if runs else cfgs


def bench_config(cfg: RunConfig, epochs: int, **train: Any) -> RunConfig:
    """cfg trained `epochs` epochs without early stop, measures, checkpoints or init file (pure training)."""
    return cfg.model_copy(update={
        "train": cfg.train.model_copy(update={"epochs": epochs, "stop_at_zero_error": False, **train}),
        "record": cfg.record.model_copy(update={"measures": [], "checkpoint": "none", "save_init": False})})


class Clock:
    """Wall time at each epoch's log row (the row's floats force the device to finish the epoch)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.marks: list[float] = []

    def __call__(self, row: dict) -> None:
        self.marks.append(time.perf_counter())

    def epochs(self) -> list[float]:
        """Seconds per epoch, the first including the warm-up."""
        edges = [self.t0, *self.marks]
        return [b - a for a, b in zip(edges, edges[1:])]

    def steady(self) -> float:
        """Median epoch time after the first (the first alone when only one ran)."""
        e = self.epochs()
        return statistics.median(e[1:]) if len(e) > 1 else e[0]


def solo(cfg: RunConfig, device: str, epochs: int, n_train: int) -> dict[str, float]:
    """Part 1: images/s of one run per CUDA option set (eager float32 first: the reference of part 2)."""
    variants = {"float32 eager": {}, "bf16": {"precision": "bf16"}, "channels_last": {"channels_last": True},
                "compile": {"compile": True},
                "bf16 + channels_last + compile": {"precision": "bf16", "channels_last": True, "compile": True}}
    out = {}
    for name, opts in variants.items():
        if opts and not device.startswith("cuda"):
            print(f"  solo {name}: skipped (CUDA only)")
            continue
        clock = Clock()
        train(bench_config(cfg, epochs, **opts), device=device, log=clock)
        out[name] = n_train / clock.steady()
        print(f"  solo {name}: {clock.steady():.3f} s/epoch, {out[name]:,.0f} images/s "
              f"(first epoch {clock.epochs()[0]:.2f} s)", flush=True)
    return out


def ensemble(cfgs: list[RunConfig], device: str, epochs: int, n_train: int, solo_rate: float) -> dict[str, float]:
    """Part 2: the members as one ensemble; model·images/s and the ratio to one eager solo model."""
    clock = Clock()
    logs = [clock] + [None] * (len(cfgs) - 1)
    train_ensemble([bench_config(c, epochs) for c in cfgs], device=device, logs=logs)
    rate = len(cfgs) * n_train / clock.steady()
    print(f"  ensemble of {len(cfgs)}: {clock.steady():.3f} s/epoch, {rate:,.0f} model·images/s = "
          f"{rate / solo_rate:.1f}× the eager solo loop", flush=True)
    return {"members": len(cfgs), "seconds_per_epoch": clock.steady(), "model_images_per_s": rate,
            "speedup": rate / solo_rate}


def sweep(cfgs: list[RunConfig], device: str, epochs: int) -> dict[str, float]:
    """Part 3: the sweep's units as the executor plans them, each timed and projected to FULL_EPOCHS."""
    units = ensembles([Job(PlannedRun(c, {}), {}) for c in cfgs], K_AUTO, auto=True, device=device)
    total, measured = 0.0, 0.0
    for i, unit in enumerate(units):
        group = [bench_config(j.run.config, epochs) for j in unit]
        clock = Clock()
        if len(group) > 1:
            train_ensemble(group, device=device, logs=[clock] + [None] * (len(group) - 1))
        else:
            train(group[0], device=device, log=clock)
        spent = sum(clock.epochs())
        full_epochs = max(c.train.epochs for c in (j.run.config for j in unit))
        projected = spent + max(full_epochs - epochs, 0) * clock.steady()
        total, measured = total + projected, measured + spent
        print(f"  unit {i + 1}/{len(units)}: {len(group)} runs, {clock.steady():.3f} s/epoch → "
              f"{projected / 60:.2f} min for {full_epochs} epochs", flush=True)
    print(f"  sweep: {len(cfgs)} runs in {len(units)} units, projected {total / 60:.2f} min "
          f"(measured {measured:.0f} s)", flush=True)
    return {"runs": len(cfgs), "units": len(units), "projected_minutes": total / 60, "measured_s": measured}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--images", type=int, default=50_000, help="synthetic training images (no real CIFAR-10)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs timed per run (the first is warm-up)")
    ap.add_argument("--members", type=int, default=25, help="ensemble size of part 2")
    ap.add_argument("--sweep-runs", type=int, default=None, help="only the first N runs of the sweep (smoke)")
    ap.add_argument("--parts", default="solo,ensemble,sweep")
    ap.add_argument("--out", type=Path, default=None, help="write the numbers here (JSON)")
    a = ap.parse_args()
    parts = set(a.parts.split(","))
    where = torch.cuda.get_device_name(a.device) if a.device.startswith("cuda") else (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    result: dict[str, Any] = {"device": where, "torch": torch.__version__, "python": sys.version.split()[0],
                              "targets": TARGETS}
    with tempfile.TemporaryDirectory() as tmp:
        real = files.file_path("cifar10", "cifar-10-python.tar.gz")
        if real.is_file():
            result["data"] = f"real CIFAR-10 ({real})"
        else:
            os.environ[files.ENV_VAR] = tmp
            result["data"] = synthetic_cifar(a.images, Path(tmp))
        cfgs = ch4_configs(a.sweep_runs)
        width64 = [c for c in cfgs if c.model.options.get("width") == 64 and c.data.options.get("corrupt_prob", 0) == 0]
        base = (width64 or cfgs)[0]
        from genlab.data import build_dataset
        n_train = len(build_dataset(base.data.name, **base.data.options).y_train)
        print(f"torch {torch.__version__} on {where}; data: {result['data']}; {n_train} training images",
              flush=True)
        if parts & {"solo", "ensemble"}:
            result["solo_images_per_s"] = solo(base, a.device, a.epochs, n_train)
        if "ensemble" in parts:
            members = (width64 or cfgs)[:a.members]
            result["ensemble"] = ensemble(members, a.device, a.epochs, n_train,
                                          result["solo_images_per_s"]["float32 eager"])
        if "sweep" in parts:
            result["sweep"] = sweep(cfgs, a.device, a.epochs)
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
