"""genlab's 2×2 max-pool (models/pooling.py) against PyTorch's kernel, where no gradient is recorded: the
pool alone at the sizes genlab's conv nets see, and one evaluation pass of whole nets (Conv-4, VGG-11,
the tweaks CNN) with each pool.

    python benchmarks/bench_pool.py [--threads 1]

CPU seconds (process time), best of 5 repeats. Prints numbers and checks the outputs are equal; asserts nothing
about speed (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from genlab.models import create_model
from genlab.models.pooling import MaxPool2x2


def best(fn, n: int) -> float:
    fn()
    out = []
    for _ in range(5):
        t = time.process_time()
        for _ in range(n):
            fn()
        out.append((time.process_time() - t) / n)
    return min(out)


def pytorch_pools(net: nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, MaxPool2x2):
            m.forward = nn.MaxPool2d.forward.__get__(m)


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} thread(s); CPU µs or ms, best of 5")
    for shape in [(64, 16, 8, 8), (64, 128, 8, 8), (500, 16, 8, 8), (64, 64, 32, 32), (256, 64, 16, 16)]:
        x = torch.randn(*shape).relu()
        ours, theirs = MaxPool2x2(), nn.MaxPool2d(2)
        assert torch.equal(ours(x), theirs(x))
        t0, t1 = best(lambda: theirs(x), 50), best(lambda: ours(x), 50)
        print(f"pool {str(shape):20s} pytorch {t0 * 1e6:8.0f} µs   genlab {t1 * 1e6:8.0f} µs   {t0 / t1:4.1f}×")
    nets = [("conv4 c16 BN", (1, 8, 8), {"width": 16}, 512), ("conv4 c16 BN", (3, 32, 32), {"width": 16}, 256),
            ("vgg11 (¼ width) BN", (3, 32, 32), {"depth": 11, "width_factor": 0.25}, 256),
            ("tweaks_cnn", (3, 32, 32), {}, 256)]
    for label, shape, opts, batch in nets:
        torch.manual_seed(0)
        name = "vgg" if label.startswith("vgg") else label.split()[0]
        net = create_model(name, shape, 10, **opts).eval()
        x = torch.randn(batch, *shape)
        fast_out, fast = net(x), best(lambda: net(x), 3)
        pytorch_pools(net)
        slow_out, slow = net(x), best(lambda: net(x), 3)
        assert torch.equal(fast_out, slow_out)
        print(f"eval {label:20s} {str(shape):12s} batch {batch:4d}: pytorch pools {slow * 1e3:7.1f} ms   "
              f"genlab pools {fast * 1e3:7.1f} ms   {slow / fast:4.2f}×")


if __name__ == "__main__":
    main()
