"""Per-epoch CPU cost of 003's full profiles, measured here: a few training steps and an evaluation slice of
each full-profile Conv-4 (CIFAR-10 shape, batch 64), projected to one epoch of 50,000 images (100,000 for
the vertically doubled set) plus the per-epoch evaluation (train 50k + test 10k, + 10k flipped for vflip).

Uses the real CIFAR-10 files when present under the data root (never downloads), else synthetic uint8
tensors of CIFAR's shape: the speed does not depend on pixel values. One torch thread (as `genlab run`).

    python benchmarks/cost_003_hw0.py [--steps 20] [--eval 2000] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from genlab.data.vision import CIFAR10_MEAN, CIFAR10_STD, Raw, VisionOptions, finish
from genlab.models import count_params, create_model

N_TRAIN, N_TEST, BATCH = 50_000, 10_000, 64
# (study, width, kernel, optimizer, lr, training images per epoch, evaluated images per epoch, epochs)
CASES = [
    ("conv4_capacity / vflip plain", 64, 3, "sgd", 0.1, N_TRAIN, N_TRAIN + 2 * N_TEST, 80),
    ("vflip + vertical copies", 64, 3, "sgd", 0.1, 2 * N_TRAIN, 2 * N_TRAIN + 2 * N_TEST, 80),
    ("conv4_capacity k=5", 64, 5, "sgd", 0.1, N_TRAIN, N_TRAIN + N_TEST, 80),
    ("conv4_capacity k=7", 64, 7, "sgd", 0.1, N_TRAIN, N_TRAIN + N_TEST, 80),
    ("conv4_capacity c=16", 16, 3, "sgd", 0.1, N_TRAIN, N_TRAIN + N_TEST, 80),
    ("random_labels c=4 (SGD)", 4, 3, "sgd", 0.003, N_TRAIN, N_TRAIN + N_TEST, 800),
    ("random_labels c=64 (Adam)", 64, 3, "adam", 3e-4, N_TRAIN, N_TRAIN + N_TEST, 1000),
]


def data(n: int):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return finish("cifar10_shape", Raw(x, y, x[:10], y[:10], 10, mean=CIFAR10_MEAN, std=CIFAR10_STD),
                  VisionOptions(), seed=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="timed training steps (after 2 warm-up steps)")
    ap.add_argument("--eval", type=int, default=2000, help="images timed in eval mode (batches of 1000)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    d = data(max(BATCH * (args.steps + 2), args.eval))
    print(f"torch {torch.__version__}, {args.threads} thread(s); synthetic CIFAR-shaped uint8 inputs")
    total = 0.0
    for name, width, k, opt_name, lr, n_step, n_eval, epochs in CASES:
        torch.manual_seed(0)
        model = create_model("conv4", (3, 32, 32), 10, width=width, kernel_size=k)
        opt = (torch.optim.SGD if opt_name == "sgd" else torch.optim.Adam)(model.parameters(), lr=lr)
        model.train()
        for s in range(args.steps + 2):
            if s == 2:
                t0 = time.perf_counter()
            xb, yb = d.inputs(d.x_train[s * BATCH:(s + 1) * BATCH]), d.y_train[s * BATCH:(s + 1) * BATCH]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        step_s = (time.perf_counter() - t0) / args.steps
        model.eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(0, args.eval, 1000):
                model(d.inputs(d.x_train[i:i + 1000]))
        eval_s = (time.perf_counter() - t0) / args.eval
        epoch_s = step_s * (n_step // BATCH + 1) + eval_s * n_eval
        total += epoch_s * epochs
        print(f"{name:30s} {count_params(model):>9,} params  {step_s * 1e3:7.1f} ms/step  "
              f"{eval_s * 1e6:6.0f} µs/eval image  → {epoch_s / 60:6.1f} min/epoch × {epochs} epochs "
              f"= {epoch_s * epochs / 3600:6.1f} h")
    print(f"sum over the cases listed: {total / 3600:.0f} CPU hours")


if __name__ == "__main__":
    main()
