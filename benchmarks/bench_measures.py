"""All registered measures on a trained bias-free ConvNet3-32 (512 CIFAR-shaped samples): today's code against
the measures package of an earlier commit, side by side in one process, interleaved, medians reported.

    python benchmarks/bench_measures.py [--n 512] [--width 32] [--repeats 3] [--commit 3fd97c0]
                                        [--paths old64,old32,new32,new64,new32same] [--breakdown] [--device cpu]

The checkpoint: a ConvNet3 (width 32, no biases, 48,480 weights) trained with SGD on 2n synthetic N(0, 1)
images labelled by a second, random ConvNet3 (a teacher), until every one of its n training points is
classified right (deterministic: seed 0). Measures see n training and n test points, the init weights, and
cross-entropy. Each path is one `compute(all its registered measures)` call, as the trainer makes:
  old64 / old32  the package at `--commit` (loaded by bench_measures_ref.py) in float64 (its default) / float32;
  new64 / new32  today's package in float64 / float32 (the default of `record` and `genlab measure`);
  new32same      today's package in float32 on the measures the old package has (the same work, like for like).
Paths run in a rotating order within each repeat (the machine is shared: medians of interleaved runs, in CPU
seconds of this process). Set OMP_NUM_THREADS=1 for the 1-thread numbers. Prints
the medians, the ratios, and every value on which new32 or new64 differs from old64 by more than 1e-4 relative;
`--breakdown` adds each measure's time alone, old and new, and the bound the PAC-Bayes searches put on any
speed-up that keeps their values. The process sets glibc's allocator as `genlab measure` does (genlab.runtime):
both packages run under it.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F

from bench_measures_ref import load_reference
from genlab.runtime import keep_freed_memory
from genlab.losses import get_loss
from genlab.models import create_model

IN_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
MAX_EPOCHS = 60
SHOWN_REL = 1e-4  # value differences printed above this relative size
PACBAYES_SEARCHES = ("pacbayes_flatness", "pacbayes_mag_flatness")


def fit_to_zero_error(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, n: int, gen: torch.Generator,
                      max_epochs: int) -> int:
    """SGD (lr 0.05, momentum 0.9, batch 64, data order from `gen`) on the first n points until every one is
    classified right (checked in eval mode after each epoch) or max_epochs; returns the epochs trained."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(1, max_epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            if bool((model(x[:n]).argmax(1) == y[:n]).all()):
                break
    return epoch


def checkpoint(n: int, width: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, dict, int]:
    """(trained float32 model, x (2n, 3, 32, 32), teacher labels (2n,), init state_dict, epochs trained)."""
    torch.manual_seed(0)
    model = create_model("convnet3", IN_SHAPE, NUM_CLASSES, width=width)
    teacher = create_model("convnet3", IN_SHAPE, NUM_CLASSES, width=width)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2 * n, *IN_SHAPE, generator=gen)
    with torch.no_grad():
        y = teacher(x).argmax(1)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    epoch = fit_to_zero_error(model, x, y, n, gen, MAX_EPOCHS)
    for m in model.modules():  # torch's own conv class (genlab's subclass only adds a matmul path, unused at
        if isinstance(m, torch.nn.Conv2d):  # 16×16 and 8×8 maps): the old package looks convs up by exact type
            m.__class__ = torch.nn.Conv2d
    return model.eval(), x, y, init, epoch


def timed(fn: Callable[[], dict[str, float]]) -> tuple[float, dict[str, float]]:
    """(CPU seconds of this process, fn()): on a shared machine wall seconds mostly measure the neighbours'
    load (issue 28: wall medians of 34-52 s for one path); CPU seconds sum over torch's threads."""
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def paths(pkg_old: Any, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, init: dict, n: int,
          device: str) -> dict[str, Callable[[], dict[str, float]]]:
    """name → a function computing that path's registered measures once (fresh memo for the old package)."""
    import genlab.measures as pkg_new

    loss = get_loss("cross_entropy")

    def run(pkg: Any, dtype: torch.dtype, names: list[str] | None = None) -> Callable[[], dict[str, float]]:
        def go() -> dict[str, float]:
            memo = getattr(getattr(pkg, "spectral", None), "_CONV_NORMS", None)
            if memo is not None:
                memo.clear()  # the old package memoized conv norms across calls: each run starts cold
            data = pkg.MeasureData(x[:n], y[:n], x[n:], y[n:], loss, init, NUM_CLASSES)
            return pkg.compute(names or pkg.list_measures(), model, data, device=device, dtype=dtype)
        return go

    same = [k for k in pkg_new.list_measures() if k in set(pkg_old.list_measures())]
    return {"old64": run(pkg_old, torch.float64), "old32": run(pkg_old, torch.float32),
            "new32": run(pkg_new, torch.float32), "new64": run(pkg_new, torch.float64),
            "new32same": run(pkg_new, torch.float32, same)}  # today's code on the measures the old one has


def rel(a: float, b: float) -> float:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def breakdown(pkg_old: Any, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, init: dict, n: int,
              device: str, old_total: float | None) -> None:
    """Each measure alone in float32 (one compute call each: nothing shared), the old package's and today's;
    then Amdahl's bound: the most any code could gain over old32 while its PAC-Bayes searches make the same
    forward passes (the same σ tests on the same draws and rows) — old32's total over their time."""
    import genlab.measures as pkg_new

    secs: dict[str, dict[str, float]] = {}
    for label, pkg in (("old32", pkg_old), ("new32", pkg_new)):
        data = pkg.MeasureData(x[:n], y[:n], x[n:], y[n:], get_loss("cross_entropy"), init, NUM_CLASSES)
        for name in pkg.list_measures():
            memo = getattr(getattr(pkg, "spectral", None), "_CONV_NORMS", None)
            if memo is not None:
                memo.clear()
            secs.setdefault(name, {})[label], _ = timed(
                lambda: pkg.compute([name], model, data, device=device, dtype=torch.float32))
    print(f"\none measure per call, float32 seconds:\n  {'':30s} {'old32':>7s} {'new32':>7s}")
    for name, t in sorted(secs.items()):
        print(f"  {name:30s} " + " ".join(f"{t[k]:7.2f}" if k in t else f"{'-':>7s}" for k in ("old32", "new32")))
    searches = sum(secs[k]["old32"] for k in PACBAYES_SEARCHES)
    if old_total is not None:
        print(f"old32's PAC-Bayes searches alone: {searches:.2f} s of its {old_total:.2f} s. While they make the "
              f"same forward passes (same σ tests, draws and rows), no code is more than {old_total / searches:.2f}x "
              "faster than old32, even if every other measure took 0 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="training (and test) points")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--commit", default="3fd97c0", help="the reference measures package (git commit)")
    ap.add_argument("--paths", default="old64,old32,new32,new64")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--breakdown", action="store_true", help="also time each measure alone, old and new (float32)")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, python {platform.python_version()}, device {args.device}")
    print(f"glibc allocator: keep_freed_memory {keep_freed_memory()} (as in `genlab measure`; genlab/runtime.py)")
    old = load_reference(args.commit)
    t0 = time.perf_counter()
    model, x, y, init, epochs = checkpoint(args.n, args.width)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"convnet3 width {args.width}: {n_params:,} weights, trained {epochs} epochs to 0 training errors on "
          f"n = {args.n} ({time.perf_counter() - t0:.0f} s); reference: commit {args.commit}")
    model = model.to(args.device)
    x, y, init = x.to(args.device), y.to(args.device), {k: v.to(args.device) for k, v in init.items()}
    fns = paths(old, model, x, y, init, args.n, args.device)
    order = args.paths.split(",")
    times: dict[str, list[float]] = {p: [] for p in order}
    values: dict[str, dict[str, float]] = {}
    for r in range(args.repeats):
        for p in order[r % len(order):] + order[:r % len(order)]:  # rotate: no path always runs first
            dt, values[p] = timed(fns[p])
            times[p].append(dt)
            print(f"  repeat {r + 1}: {p} {dt:7.2f} s ({len(values[p])} values)", flush=True)
    med = {p: statistics.median(t) for p, t in times.items()}
    print("\nmedian CPU seconds: " + ", ".join(f"{p} {med[p]:.2f}" for p in order))
    for a in ("old64", "old32"):
        for b in ("new32", "new32same", "new64"):
            if a in med and b in med:
                print(f"  {a} / {b} = {med[a] / med[b]:5.2f}x")
    if "old64" in values:
        ref = values["old64"]
        for p in [q for q in ("old32", "new32", "new64") if q in values]:
            common = sorted(set(ref) & set(values[p]))
            worst = [(rel(ref[k], values[p][k]), k) for k in common]
            shown = sorted((d, k) for d, k in worst if d > SHOWN_REL)
            print(f"\n{p} vs old64: {len(common)} common values, {len(shown)} differ by > {SHOWN_REL:g} relative")
            for d, k in shown:
                print(f"  {k:40s} old64 {ref[k]:.6g}  {p} {values[p][k]:.6g}  ({d:.1e})")
    if args.breakdown:
        breakdown(old, model, x, y, init, args.n, args.device, med.get("old32"))


if __name__ == "__main__":
    main()
