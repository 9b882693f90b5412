"""curve_connectivity on real minima: two networks per architecture trained from different seeds on sklearn's
digits (8×8, 10 classes; 1,000 training rows, 797 test), then the loss/error barrier on the straight line and on
Garipov et al.'s trained Bézier curve between them (their claim: the line crosses a ridge, the curve does not),
with the wall and CPU seconds of each measure.

    python benchmarks/bench_curves.py [--steps 200] [--epochs 300] [--threads 1]

    mlp     widths [64, 64], no BatchNorm
    conv4   width 8, BatchNorm (re-estimated at every t on the training rows)

Training: full-batch Adam (lr 1e-2) for `--epochs` steps, float32, seeds 0 and 1. No reference tool: Garipov et
al.'s code (dnn-mode-connectivity) is not a package; tests/test_curves.py checks the measure against brute force.
"""

from __future__ import annotations

import argparse
import time

import torch

from genlab.losses import get_loss
from genlab.measures import MeasureData
from genlab.measures.pairs import compute_pair
from genlab.models import create_model

CE = get_loss("cross_entropy")
MODELS = {"mlp": ("mlp", (1, 64), {"widths": [64, 64]}), "conv4": ("conv4", (1, 8, 8), {"width": 8})}


def digits() -> MeasureData:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y, dtype=torch.int64)
    return MeasureData(x[:1000], y[:1000], x[1000:], y[1000:], CE, None, 10)


def fit(name: str, data: MeasureData, seed: int, epochs: int) -> torch.nn.Module:
    model, shape, kw = MODELS[name]
    torch.manual_seed(seed)
    net = create_model(model, shape, 10, **kw)
    x = data.x_train.reshape(len(data.x_train), *shape)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(epochs):
        opt.zero_grad()
        CE.per_sample(net(x), data.y_train).mean().backward()
        opt.step()
    return net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = digits()
    for name, (_, shape, _) in MODELS.items():
        data = MeasureData(base.x_train.reshape(-1, *shape), base.y_train, base.x_test.reshape(-1, *shape),
                           base.y_test, CE, None, 10)
        a, b = fit(name, data, 0, args.epochs), fit(name, data, 1, args.epochs)
        w, c = time.perf_counter(), time.process_time()
        out = compute_pair(["curve_connectivity"], a, b, data, dtype=torch.float32,
                           options={"curve_connectivity": {"steps": args.steps}})
        w, c = time.perf_counter() - w, time.process_time() - c
        v = {k.removeprefix("curve_connectivity."): x for k, x in out.items()}
        last = sum(k.startswith("path.loss.train.") for k in v) - 1  # t = 1
        print(f"{name:6s} endpoints train loss {v['path.loss.train.0']:.4f}/{v[f'path.loss.train.{last}']:.4f}, "
              f"test error {v['path.error.test.0']:.4f}/{v[f'path.error.test.{last}']:.4f}")
        for s in ("train", "test"):
            print(f"       {s:5s} loss barrier line {v[f'line_loss_barrier.{s}']:.4f} curve "
                  f"{v[f'loss_barrier.{s}']:.4f} | error barrier line {v[f'line_error_barrier.{s}']:.4f} "
                  f"curve {v[f'error_barrier.{s}']:.4f}")
        print(f"       control shift {v['control_shift']:.3f} of endpoint distance {v['endpoint_distance']:.3f}; "
              f"{w:.1f} s wall, {c:.1f} CPU-s (curve + line, {args.steps} steps)")


if __name__ == "__main__":
    main()
