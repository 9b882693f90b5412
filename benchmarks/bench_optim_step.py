"""The solo trainer's cost per step (issue 25: optimizers as registered init/update pairs instead of torch.optim).

    python benchmarks/bench_optim_step.py [--epochs 3] [--repeats 3] [--only convnet3]

Times `genlab.train.loop.Solo.train_epoch` (shuffle, batches, forward, backward, optimizer step) for two
runs on sklearn's digits, one thread, and prints µs per step (median over repeats of an epoch's time ÷ its
steps), CPU seconds (process time) beside wall seconds:

    convnet3 width 32, batch 64, SGD momentum 0.9 + weight decay 5e-4   (ConvNet3-32 digits)
    linear, batch 1, plain SGD                                         (a step that is nearly all overhead)
    linear, batch 1, Adam

Run it on the code before and after a change on the same machine, interleaved if the machine is shared; it
asserts nothing (benchmarks are not tests). On a loaded machine read the CPU seconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from genlab.spec import RunConfig
from genlab.train.loop import Solo, new_member

CASES = {
    "convnet3-32 sgd+mom+wd b64": {"model": {"name": "convnet3", "width": 32}, "train": {"batch_size": 64},
                                   "optim": {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}},
    "linear sgd b1": {"model": {"name": "linear"}, "train": {"batch_size": 1}, "optim": {"lr": 0.01}},
    "linear adam b1": {"model": {"name": "linear"}, "train": {"batch_size": 1}, "optim": {"name": "adam", "lr": 1e-3}},
}


def config(case: dict) -> RunConfig:
    return RunConfig.model_validate({
        "experiment": "bench", "seed": 0, "data": {"name": "digits", "n_train": 600}, **case,
        "train": {"epochs": 100, **case["train"]}, "record": {"checkpoint": "none", "save_init": False}})


def per_step(case: dict, epochs: int) -> tuple[float, float]:
    """(CPU µs per step, wall µs per step): medians over `epochs` epochs after one warm-up epoch."""
    cfg = config(case)
    m = new_member(cfg, torch.device("cpu"))
    stepper = Solo(m)
    steps = -(-m.data.n_train // cfg.train.batch_size)
    stepper.train_epoch([m], 1)  # warm-up: allocator, kernels
    cpu, wall = [], []
    for e in range(2, epochs + 2):
        c0, w0 = time.process_time(), time.perf_counter()
        stepper.train_epoch([m], e)
        cpu.append((time.process_time() - c0) / steps * 1e6)
        wall.append((time.perf_counter() - w0) / steps * 1e6)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="", help="cases whose name contains this")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, case in CASES.items():
        if args.only not in name:
            continue
        runs = [per_step(case, args.epochs) for _ in range(args.repeats)]
        cpu, wall = min(r[0] for r in runs), min(r[1] for r in runs)
        print(f"{name:32s} {cpu:9.1f} µs/step CPU  {wall:9.1f} µs/step wall  (best of {args.repeats})", flush=True)


if __name__ == "__main__":
    main()
