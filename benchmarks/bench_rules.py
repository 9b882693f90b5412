"""The cost of a learning rule: a training step's time under each rule, relative to plain backprop.

    python benchmarks/bench_rules.py --models convnet3,resnet20 [--device cuda] [--steps 20] [--batch 128]

At CIFAR-10 shape with synthetic data, SGD with momentum, cross-entropy (the trainer's inner step). A ruled
layer runs its operator through `genlab.models.rules.Feedback`: the same forward, and a backward that calls
the convolution's backward twice (input gradient with B, weight gradient with W) instead of once.
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from genlab.models import create_model
from genlab.models.rules import apply_rule, list_rules, rule_generator


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def step_ms(name: str, rule: str, dev: torch.device, steps: int, batch: int) -> float:
    torch.manual_seed(0)
    model = apply_rule(create_model(name, (3, 32, 32), 10), rule, rule_generator(0)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, 32, 32, device=dev), torch.randint(0, 10, (batch,), device=dev)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up
        step()
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(dev)
    return 1000 * (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="convnet3,resnet20")
    ap.add_argument("--rules", default=",".join(list_rules()))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    dev = torch.device(a.device)
    print(f"device {dev}, batch {a.batch}, {a.steps} steps, torch {torch.__version__}")
    for name in a.models.split(","):
        base = None
        for rule in a.rules.split(","):
            ms = step_ms(name, rule, dev, a.steps, a.batch)
            base = base or ms
            print(f"{name:10s} {rule:20s} {ms:8.1f} ms/step  ×{ms / base:.2f} of {a.rules.split(',')[0]}")


if __name__ == "__main__":
    main()
