"""A run's fixed cost (issue 28): genlab's solo trainer vs a plain torch.optim loop, and fig3_1 small through
the CLI with and without ensembles, whole processes.

    python benchmarks/bench_fixed_cost.py                 # both parts
    python benchmarks/bench_fixed_cost.py --only solo     # solo vs plain (in this process, 1 thread)
    python benchmarks/bench_fixed_cost.py --only cli      # `genlab run` fig3_1 small, --ensemble off vs auto

solo: one run of fig3_1 small (linear 5→2, batch 1, 600 points, 10 epochs: 6,000 steps) by
`genlab.train.loop.train` and by the loop a researcher writes by hand — torch.optim.SGD, F.cross_entropy, a
seeded permutation per epoch, train and test loss and error evaluated at every epoch end (what genlab records)
— interleaved `--repeats` times; CPU seconds (process time), medians. Target: genlab ≤ 1.15× plain.

cli: `genlab run experiments/000/fig3_1.toml --profile small` in a fresh store, as a child process, with
`--ensemble off` and with the default, interleaved; CPU seconds of the whole child (user + sys, from
rusage), and the largest relative difference between the two stores' final losses. Target: ≥ 10×.
Prints numbers; asserts nothing (benchmarks are not tests). On a shared machine read the CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from genlab.data import build_dataset
from genlab.spec.loader import load
from genlab.models import create_model
from genlab.models.init import initialize
from genlab.train.loop import train

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "experiments/000/fig3_1.toml"
GENLAB = Path(sys.executable).parent / "genlab"


def plain_run(cfg) -> float:
    """The hand-written loop for `cfg` (SGD, cross-entropy, a model built and initialized as genlab does);
    returns the final train loss."""
    data = build_dataset(cfg.data.name, **cfg.data.options)
    g = torch.Generator().manual_seed(cfg.seed)
    model = create_model(cfg.model.name, data.in_shape, data.num_classes, **cfg.model.options)
    initialize(model, cfg.init.name, g, options=cfg.init.options, bias=cfg.init.bias)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.optim.lr)
    x, y = data.inputs(data.x_train), data.y_train
    xt, yt = data.inputs(data.x_test), data.y_test
    bs, n = cfg.train.batch_size, len(y)
    last = math.nan
    for _ in range(cfg.train.epochs):
        perm = torch.randperm(n, generator=g)
        xs, ys = x[perm], y[perm]
        for s in range(0, n, bs):
            loss = F.cross_entropy(model(xs[s:s + bs]), ys[s:s + bs])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():  # what genlab records at each epoch end: loss and error on both splits
            for xe, ye in ((x, y), (xt, yt)):
                out = model(xe)
                last = float(F.cross_entropy(out, ye))
                float((out.argmax(1) != ye).float().mean())
    return last


def cpu(fn) -> float:
    c0 = time.process_time()
    fn()
    return time.process_time() - c0


def solo_vs_plain(repeats: int) -> None:
    cfg = load(SPEC, "small").runs[0].config
    cfg = cfg.model_copy(update={"record": cfg.record.model_copy(update={"checkpoint": "none", "save_init": False})})
    train(cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 0})}))  # warm: imports, data
    plain_run(cfg)
    g, p = [], []
    for _ in range(repeats):  # interleaved: the machine's load falls on both alike
        g.append(cpu(lambda: train(cfg)))
        p.append(cpu(lambda: plain_run(cfg)))
    steps = cfg.train.epochs * math.ceil(cfg.data.options["n_train"] / cfg.train.batch_size)
    mg, mp = statistics.median(g), statistics.median(p)
    print(f"solo run of fig3_1 small ({steps} steps of batch {cfg.train.batch_size}), medians of {repeats}:\n"
          f"  genlab train  {mg:7.2f} CPU s  ({1e6 * mg / steps:6.0f} µs a step, evaluation included)\n"
          f"  plain loop    {mp:7.2f} CPU s  ({1e6 * mp / steps:6.0f} µs a step)\n"
          f"  ratio         {mg / mp:7.2f}×  (target ≤ 1.15×)", flush=True)


def child_cpu(cmd: list[str]) -> tuple[float, float]:
    """(CPU s = user + sys of the child, wall s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def finals(store: Path) -> dict[str, float]:
    out = {}
    for r in (store / "fig3_1").glob("*/result.json"):
        res = json.loads(r.read_text())
        out[r.parent.name] = res["final"]["train_loss"]
    return out


def cli(repeats: int) -> None:
    rows = {"off": [], "auto": []}
    stores: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            for mode in ("off", "auto"):
                store = Path(tmp) / f"{mode}{i}"
                rows[mode].append(child_cpu([str(GENLAB), "run", str(SPEC), "--profile", "small", "--store",
                                             str(store), "--ensemble", mode]))
                stores[mode] = store
        a, b = finals(stores["off"]), finals(stores["auto"])
        worst = max(abs(a[k] - b[k]) / max(abs(a[k]), abs(b[k]), 1e-300) for k in a) if a.keys() == b.keys() else math.nan
    off_c, auto_c = (statistics.median(c for c, _ in rows[m]) for m in ("off", "auto"))
    off_w, auto_w = (statistics.median(w for _, w in rows[m]) for m in ("off", "auto"))
    print(f"`genlab run` fig3_1 small ({len(a)} runs), whole process, medians of {repeats}:\n"
          f"  --ensemble off  {off_c:7.2f} CPU s {off_w:7.2f} wall s\n"
          f"  default (auto)  {auto_c:7.2f} CPU s {auto_w:7.2f} wall s\n"
          f"  speed-up        {off_c / auto_c:7.1f}× CPU   {off_w / auto_w:5.1f}× wall  (target ≥ 10×)\n"
          f"  worst relative difference of the final train losses: {worst:.1e}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["solo", "cli"])
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 torch thread; CPU seconds are process time")
    if a.only in (None, "solo"):
        solo_vs_plain(a.repeats)
    if a.only in (None, "cli"):
        cli(a.repeats)


if __name__ == "__main__":
    main()
