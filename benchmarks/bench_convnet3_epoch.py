"""CIFAR-10 epoch time of `convnet3` (000 ch. 4) on this machine, in training images per second.

Times the trainer's inner step exactly as `genlab.train.loop` runs it: uint8 batch → `Dataset.inputs`
(scale + normalize) → forward → cross-entropy → backward → SGD step, batch 128, on a seeded permutation.
Uses the real CIFAR-10 files when present under the data root (never downloads), else synthetic uint8
tensors of CIFAR's shape (50,000 × 3 × 32 × 32) — the speed does not depend on the pixel values.

    python benchmarks/bench_convnet3_epoch.py [--width 64] [--images 10000] [--device cpu] [--threads 1]

Prints images/s and the projected full-epoch time (50,000 images); never part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from genlab.data import Dataset, files
from genlab.data.vision import CIFAR10_MEAN, CIFAR10_STD, Raw, VisionOptions, finish
from genlab.models import count_params, create_model

EPOCH = 50_000  # CIFAR-10 training images


def cifar_or_synthetic() -> tuple[Dataset, str]:
    path = files.file_path("cifar10", "cifar-10-python.tar.gz")
    if path.is_file():
        from genlab.data import build_dataset

        return build_dataset("cifar10"), f"real CIFAR-10 ({path})"
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (EPOCH, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (EPOCH,), generator=g)
    raw = Raw(x, y, x[:1000], y[:1000], num_classes=10, mean=CIFAR10_MEAN, std=CIFAR10_STD)
    return finish("cifar10_synthetic", raw, VisionOptions(), seed=0), "synthetic uint8 tensors of CIFAR shape"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--images", type=int, default=10_000, help="images to time (after one warm-up batch)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1, as `genlab run`; 0: torch's default, slow on a shared CPU)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    data, source = cifar_or_synthetic()
    data = data.to(dev)
    torch.manual_seed(0)
    model = create_model("convnet3", data.in_shape, 10, width=args.width).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    perm = torch.randperm(data.n_train, generator=torch.Generator().manual_seed(0)).to(dev)
    bs, n = args.batch_size, min(args.images, data.n_train)

    def step(i: int) -> None:
        idx = perm[i:i + bs]
        out = model(data.inputs(data.x_train[idx]))
        loss = loss_fn(out, data.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(0)  # warm-up (allocations, kernel selection)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    done = 0
    for i in range(0, n, bs):
        step(i)
        done += len(perm[i:i + bs])
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    ips = done / dt
    print(f"convnet3 width {args.width} ({count_params(model):,} params), batch {bs}, {source}")
    print(f"device {dev} · torch {torch.__version__} · {torch.get_num_threads()} threads · "
          f"{os.cpu_count()} CPUs · {platform.processor() or platform.machine()}")
    print(f"{done} images in {dt:.2f} s → {ips:,.0f} images/s; a 50,000-image epoch ≈ {EPOCH / ips:.1f} s")


if __name__ == "__main__":
    main()
