"""Cache-sized passes (`measures/objective.rows_per_pass`) against one pass per batch, side by side in one process.

    OMP_NUM_THREADS=1 python benchmarks/bench_passes.py [--repeats 4] [--part evaluation|measures]

evaluation: the trainer's `train.evaluate.evaluate` (1,000-row batches, the `eval_batch_size` default) over
2,000 random 3×32×32 rows of ConvNet3-32, Conv-4 c16 and ResNet-20 (untrained: the cost does not depend on the
weights), and over 2,000 1×8×8 rows of Conv-4 c16 (digits' shape: the passes are as before there).
measures: the measures that pass over the training rows (Hessian, the two σ searches, sharpness, landscape) on
bench_measures.py's checkpoint (ConvNet3-32 fitted to 512 CIFAR-shaped points), float32.
"sized" is today's default (PASS_BYTES["cpu"] = 4 MiB); "whole" removes the CPU entry, so a batch is one pass
(evaluation) and the measures take LOSS_BATCH = 512 rows a pass (the Hessian 256, as before the sizing). The
process sets glibc's allocator as `genlab run` does. CPU seconds (process time), medians of `--repeats`
interleaved in alternating order; the values of both, to show they agree to float rounding. Prints numbers;
asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from types import SimpleNamespace
from typing import Callable

import torch

from genlab.losses import get_loss
from genlab.measures import objective
from genlab.models import create_model
from genlab.runtime import keep_freed_memory
from genlab.train.evaluate import evaluate

SIZED = objective.PASS_BYTES["cpu"]
EVAL_CASES = [("convnet3", (3, 32, 32), {"width": 32}), ("conv4", (3, 32, 32), {"width": 16}),
              ("resnet20", (3, 32, 32), {}), ("conv4", (1, 8, 8), {"width": 16})]
MEASURE_GROUPS = [["hessian"], ["pacbayes_flatness", "pacbayes_mag_flatness"], ["sharpness"], ["landscape"]]


def sizing(on: bool) -> None:
    """Today's cache-sized passes (on) or one pass per batch / the fixed row counts (off); the memo cleared."""
    if on:
        objective.PASS_BYTES["cpu"] = SIZED
    else:
        objective.PASS_BYTES.pop("cpu", None)
    objective._ROWS.clear()


def side_by_side(fn: Callable[[], object], repeats: int) -> dict[str, tuple[float, object]]:
    """{"sized"|"whole": (median CPU s, the last value)} over `repeats` interleaved rounds, alternating order."""
    times: dict[str, list[float]] = {"sized": [], "whole": []}
    values: dict[str, object] = {}
    for r in range(repeats):
        for name in (("sized", "whole") if r % 2 == 0 else ("whole", "sized")):
            sizing(name == "sized")
            t0 = time.process_time()
            values[name] = fn()
            times[name].append(time.process_time() - t0)
    sizing(True)
    return {k: (statistics.median(v), values[k]) for k, v in times.items()}


def evaluation(repeats: int) -> None:
    loss = get_loss("cross_entropy")
    data = SimpleNamespace(inputs=lambda t: t, num_classes=10)
    for name, shape, kw in EVAL_CASES:
        torch.manual_seed(0)
        model = create_model(name, shape, 10, **kw)
        x, y = torch.randn(2000, *shape), torch.randint(0, 10, (2000,))
        rows = objective.rows_per_pass(model.eval(), x)
        out = side_by_side(lambda: evaluate(model, data, x, y, loss, 1000), repeats)
        (ts, vs), (tw, vw) = out["sized"], out["whole"]
        print(f"evaluate {name} {kw} on {shape}: {rows} rows a pass; sized {1e3 * ts:.0f} ms, one pass per "
              f"1,000-row batch {1e3 * tw:.0f} ms ({tw / ts:.2f}×); loss {vs['loss']:.9g} vs {vw['loss']:.9g}, "
              f"error {vs['error']} vs {vw['error']}", flush=True)


def measures(repeats: int) -> None:
    from bench_measures import NUM_CLASSES, checkpoint
    from genlab.measures import MeasureData, compute

    model, x, y, init, _ = checkpoint(512, 32)
    data = MeasureData(x[:512], y[:512], x[512:], y[512:], get_loss("cross_entropy"), init, NUM_CLASSES)
    print(f"measures on ConvNet3-32 (512 points): {objective.rows_per_pass(model, objective.pass_layout(x[:512]))} "
          "rows a pass sized, 512 (Hessian 256) whole", flush=True)
    for names in MEASURE_GROUPS:
        out = side_by_side(lambda: compute(names, model, data, dtype=torch.float32), repeats)
        (ts, vs), (tw, vw) = out["sized"], out["whole"]
        worst = max((abs(vs[k] - vw[k]) / max(abs(vs[k]), abs(vw[k]), 1e-300) for k in vs if vs[k] != vw[k]),
                    default=0.0)
        print(f"  {' + '.join(names)}: sized {ts:.2f} s, whole {tw:.2f} s ({tw / ts:.2f}×); worst relative "
              f"difference of the values {worst:.1e}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--part", choices=["evaluation", "measures"])
    a = ap.parse_args()
    allocator = keep_freed_memory()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); glibc keep_freed_memory: {allocator}")
    if a.part in (None, "evaluation"):
        evaluation(a.repeats)
    if a.part in (None, "measures"):
        measures(a.repeats)


if __name__ == "__main__":
    main()
