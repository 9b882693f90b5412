"""Ensemble trainer vs solo trainer, side by side in one process (1 torch thread), on the same runs.

    python benchmarks/bench_ensemble.py                 # quickstart + 16 MLPs on mnist1d + per-family groups
    python benchmarks/bench_ensemble.py --only mlp16    # one part: quickstart | mlp16 | dropout | families
    python benchmarks/bench_ensemble.py --device cuda   # the same on a GPU

Each part trains every run with `genlab.train.loop.train` (one run at a time, the solo trainer) and with the
ensemble executor's plan (`executors.ensemble.plan`, `train.ensemble.train_ensemble`), `--repeats` times each,
interleaved, and prints the medians of CPU seconds (process time: robust on a shared machine) and wall seconds,
their ratios, and the CPU seconds' split into training epochs (the steps) and evaluations (every epoch's pass
over the train and test sets). The process sets glibc's allocator as `genlab run` does (genlab.runtime). Targets (issue 12): quickstart
≥ 10×, 16 MLPs on mnist1d ≥ 3×, every family ≥ 1× (never slower than solo for a group the executor batches).
Each part also prints the worst relative difference between the trainers' final losses and errors; with
`--sensitivity` the same between each solo run and itself with lr·(1 + 2⁻²²) — chaotic runs (resnet20 at these
learning rates, MLPs at lr 0.1 with momentum) move that far from rounding alone, so that is the scale to read
the ensemble's difference against. Prints numbers; asserts nothing (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from genlab.executors import Job
from genlab.executors.ensemble import K_AUTO, ensembles
from genlab.runtime import keep_freed_memory
from genlab.spec.loader import PlannedRun, load
from genlab.spec import RunConfig
from genlab.train import loop, stacked
from genlab.train.ensemble import train_ensemble
from genlab.train.loop import train
from genlab.train.state import Outcome

ROOT = Path(__file__).resolve().parents[1]


PARTS: collections.Counter = collections.Counter()  # CPU s of the trainers' epochs and evaluations


def _clocked(cls: type, method: str, part: str) -> None:
    """Add the CPU seconds of every call of cls.method to PARTS[part]."""
    fn = getattr(cls, method)

    def clocked(*a, **k):
        c0 = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            PARTS[part] += time.process_time() - c0
    setattr(cls, method, clocked)


for _cls in (loop.Solo, stacked.Stacked):
    _clocked(_cls, "train_epoch", "steps")
    _clocked(_cls, "evaluate", "evaluation")


def timed(fn) -> tuple[float, float, Any, dict[str, float]]:
    """(CPU s, wall s, fn(), CPU s of its epochs' steps and evaluations)."""
    PARTS.clear()
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c0, time.perf_counter() - w0, out, dict(PARTS)


def medians(runs: list[tuple]) -> tuple[float, float, Any, dict[str, float]]:
    """The medians of repeated `timed` results (the outcomes of the first)."""
    parts = {k: statistics.median(r[3].get(k, 0.0) for r in runs) for k in ("steps", "evaluation")}
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), runs[0][2], parts


def worst_difference(solo: list[Outcome], ens: list[Outcome]) -> float:
    """The largest relative difference between the two trainers' final losses and errors over the runs."""
    worst = 0.0
    for a, b in zip(solo, ens):
        for k in ("train_loss", "test_loss", "train_error", "test_error"):
            x, y = a.history[-1][k], b.history[-1][k]
            if x != y:
                worst = max(worst, abs(x - y) / max(abs(x), abs(y)))
    return worst


def nudged(cfg: RunConfig) -> RunConfig:
    """cfg with its learning rate changed by 2⁻²² relative: a float-level change, to measure how far the run
    itself moves under rounding (chaotic runs move far; the ensemble cannot be closer to solo than that)."""
    return cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"lr": cfg.optim.lr * (1 + 2 ** -22)})})


def compare(name: str, configs: list[RunConfig], device: str, k_max: int = K_AUTO, sensitivity: bool = False,
            repeats: int = 1) -> None:
    units = ensembles([Job(PlannedRun(c, {}), {}) for c in configs], k_max)
    groups = [[j.run.config for j in u] for u in units]
    for c in configs[:1]:  # warm: imports, and the data set in build_dataset's cache (both trainers use it)
        train(with_epochs(c, 0), device=device)
    runs: dict[str, list] = {"solo": [], "ensemble": []}
    for _ in range(repeats):  # interleaved: a neighbour's load falls on both
        runs["solo"].append(timed(lambda: [train(c, device=device) for c in configs]))
        runs["ensemble"].append(timed(lambda: [o for g in groups for o in (
            train_ensemble(g, device=device) if len(g) > 1 else [train(g[0], device=device)])]))
    solo, ens = medians(runs["solo"]), medians(runs["ensemble"])
    order = [configs.index(c) for g in groups for c in g]  # ensemble outcomes come in group order
    by_config = [o for _, o in sorted(zip(order, ens[2]), key=lambda t: t[0])]
    sizes = sorted((len(g) for g in groups), reverse=True)
    auto = sorted((len(u) for u in ensembles([Job(PlannedRun(c, {}), {}) for c in configs], K_AUTO, auto=True,
                                        device=device)), reverse=True)  # what `--ensemble auto` would do
    split = "   (steps {steps:.2f}, evaluation {evaluation:.2f})"
    print(f"{name}: {len(configs)} runs in {len(groups)} units (sizes {sizes}; under auto {auto}) on {device}; "
          f"medians of {repeats}\n"
          f"  solo     {solo[0]:8.2f} CPU s {solo[1]:8.2f} wall s" + split.format(**solo[3]) + "\n"
          f"  ensemble {ens[0]:8.2f} CPU s {ens[1]:8.2f} wall s" + split.format(**ens[3]) + "\n"
          f"  speed-up {solo[0] / ens[0]:8.1f}× CPU   {solo[1] / ens[1]:8.1f}× wall"
          f"   (steps {solo[3]['steps'] / max(ens[3]['steps'], 1e-9):.1f}×, evaluation "
          f"{solo[3]['evaluation'] / max(ens[3]['evaluation'], 1e-9):.1f}×)\n"
          f"  worst relative difference of the final losses and errors: "
          f"{worst_difference(solo[2], by_config):.1e}", flush=True)
    if sensitivity:
        moved = worst_difference(solo[2], [train(nudged(c), device=device) for c in configs])
        print(f"  the same for solo vs solo with lr·(1 + 2⁻²²) (the runs' own float sensitivity): {moved:.1e}",
              flush=True)


def with_epochs(cfg: RunConfig, epochs: int) -> RunConfig:
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": epochs})})


def quickstart() -> list[RunConfig]:
    return [r.config for i in range(1, 8) for r in load(ROOT / f"experiments/000/fig3_{i}.toml", "small").runs]


def mlp16() -> list[RunConfig]:
    """16 MLPs (40→100→10) on mnist1d: 4 learning rates × 4 seeds, batch 64, 20 epochs."""
    return [RunConfig.model_validate({
        "experiment": "bench_mlp16", "seed": s, "data": {"name": "mnist1d"},
        "model": {"name": "mlp", "widths": [100]}, "optim": {"lr": lr, "momentum": 0.9},
        "train": {"epochs": 20, "batch_size": 64}, "record": {"checkpoint": "none", "save_init": False}})
        for lr in (0.01, 0.02, 0.05, 0.1) for s in range(4)]


def dropout8() -> list[RunConfig]:
    """8 mlp_uniform (2 × 64, ReLU) on digits: dropout 0, 0.25, 0.5, 0.75 × 2 seeds, 5 epochs — one group, each
    member drawing its own masks from its run's dropout stream."""
    return [RunConfig.model_validate({
        "experiment": "bench_dropout8", "seed": s, "data": {"name": "digits"},
        "model": {"name": "mlp_uniform", "width": 64, "depth": 2, "dropout": p}, "optim": {"lr": 0.05},
        "train": {"epochs": 5, "batch_size": 32}, "record": {"checkpoint": "none", "save_init": False}})
        for p in (0.0, 0.25, 0.5, 0.75) for s in range(2)]


def families() -> dict[str, list[RunConfig]]:
    """One small group per model family the executor batches (8 runs each: 4 lrs × 2 seeds, 2 epochs)."""
    base = {"experiment": "bench_family", "record": {"checkpoint": "none", "save_init": False},
            "train": {"epochs": 2, "batch_size": 64}}
    fams = {"linear (digits)": ({"name": "digits"}, {"name": "linear"}),
            "mlp 2x256 (digits)": ({"name": "digits"}, {"name": "mlp", "widths": [256, 256]}),
            "convnet3 w32 (digits)": ({"name": "digits"}, {"name": "convnet3", "width": 32}),
            "conv4 c16, BN (digits)": ({"name": "digits"}, {"name": "conv4", "width": 16}),
            "conv4 c22, BN, 1-D (mnist1d)": ({"name": "mnist1d", "num_samples": 2000, "as_image": True},
                                             {"name": "conv4", "width": 22}),
            "resnet20 (digits)": ({"name": "digits"}, {"name": "resnet20"})}
    return {k: [RunConfig.model_validate({**base, "data": d, "model": m, "optim": {"lr": lr}, "seed": s})
                for lr in (0.01, 0.02, 0.05, 0.1) for s in (0, 1)] for k, (d, m) in fams.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", choices=["quickstart", "mlp16", "dropout", "families"])
    ap.add_argument("--sensitivity", action="store_true",
                    help="also train each run solo with lr·(1 + 2⁻²²): how far rounding alone moves it")
    ap.add_argument("--repeats", type=int, default=3, help="timings each way, interleaved (medians printed)")
    a = ap.parse_args()
    allocator = keep_freed_memory()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, device {a.device}, 1 torch thread; glibc keep_freed_memory: {allocator}")
    kw = {"sensitivity": a.sensitivity, "repeats": a.repeats}
    if a.only in (None, "mlp16"):
        compare("16 MLPs on mnist1d", mlp16(), a.device, **kw)
    if a.only in (None, "dropout"):
        compare("8 dropout MLPs on digits", dropout8(), a.device, **kw)
    if a.only in (None, "families"):
        for name, cfgs in families().items():
            compare(name, cfgs, a.device, **kw)
    if a.only in (None, "quickstart"):
        compare("quickstart (000 Figs 3-1..3-7, small)", quickstart(), a.device, **kw)


if __name__ == "__main__":
    main()
