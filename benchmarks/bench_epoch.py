"""Training throughput of any registered model at CIFAR-10 shape: images/s and the projected epoch time.

    python benchmarks/bench_epoch.py --models convnet3,resnet56,vgg16_bn,tweaks_cnn [--device cuda] [--steps 50]

Synthetic uint8 data of CIFAR's shape (the speed does not depend on pixel values), batch 128, SGD with
momentum, cross-entropy — the trainer's inner step. Eval throughput (no grad, batch 1000) too, since an
epoch of genlab also evaluates the 50k train + 10k test images. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from genlab.models import count_params, create_model

TRAIN, TEST = 50_000, 10_000


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def bench(name: str, dev: torch.device, steps: int, batch: int) -> tuple[float, float, int]:
    torch.manual_seed(0)
    model = create_model(name, (3, 32, 32), 10).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)

    def step():
        loss = F.cross_entropy(model(x.float() / 255), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up (cudnn autotune, allocator)
        step()
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(dev)
    train_ips = steps * batch / (time.perf_counter() - t0)
    model.eval()
    xe = torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8, device=dev)
    with torch.no_grad():
        model(xe.float() / 255)
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(max(steps // 10, 2)):
            model(xe.float() / 255)
        sync(dev)
    eval_ips = max(steps // 10, 2) * 1000 / (time.perf_counter() - t0)
    return train_ips, eval_ips, count_params(model)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="convnet3,resnet56,vgg16_bn,tweaks_cnn")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{platform.processor() or 'CPU'}, {a.threads} thread(s)"
    print(f"# {where}, torch {torch.__version__}, batch {a.batch_size}, {a.steps} timed steps")
    for name in a.models.split(","):
        tr, ev, n = bench(name, dev, a.steps, a.batch_size)
        epoch = TRAIN / tr + (TRAIN + TEST) / ev
        print(f"{name:12s} {n:>11,} params  train {tr:9,.0f} img/s  eval {ev:9,.0f} img/s  "
              f"epoch (50k steps + 60k eval) {epoch:8.1f} s")


if __name__ == "__main__":
    main()
