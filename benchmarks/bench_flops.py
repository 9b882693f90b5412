"""How close a CPU training step of a conv net is to this CPU's peak: achieved FLOP/s, solo and fused.

    python benchmarks/bench_flops.py [--threads 1] [--k 8] [--batch 64] [--steps 10]

Peak, two ways: (1) measured — a plain float32 matmul (2048², torch.mm, best of 5: 2n³ FLOPs); (2) on paper —
cores × SIMD lanes (float32: 16 with AVX-512, 8 with AVX2) × 2 FMA units × 2 FLOPs per FMA × clock (the
`cpu MHz` of /proc/cpuinfo, which a turbo clock may exceed), for the threads used. A step's FLOPs are counted
with forward hooks: a conv 2·C_out·(C_in/groups)·∏k·∏S_out per sample, a linear 2·in·out, and the backward
pass as twice the forward (input and weight gradients) except for the first layer's input gradient, which no
one asks for; "useful" leaves out the multiplies by zero padding (on 8×8 maps 5×5 kernels read padding for
half their taps); BN, ReLU, pooling and the optimizer are not counted (memory-bound, small). Timed: K solo steps (nn.Module + torch.optim.SGD) and one fused step of K members
(train.fused.fused_forward + autograd + the update), ConvNet3-32 and Conv-4 (c = 16, BN) on digits' 1×8×8
and CIFAR's 3×32×32 shapes; CPU seconds (process time), best of `--steps`. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models import create_model
from genlab.train.fused import fused_forward


def cpu_best(fn, repeats: int) -> float:
    fn()
    best = math.inf
    for _ in range(repeats):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best


def matmul_peak(threads: int, n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / cpu_best(lambda: torch.mm(a, b), 5) * threads  # CPU s are summed over threads


def paper_peak(threads: int) -> tuple[float, str]:
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return math.nan, "no /proc/cpuinfo"
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    lanes = 16 if " avx512f" in flags else 8 if " avx2" in flags else 4
    mhz = [float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz")]
    clock = max(mhz) * 1e6 if mhz else math.nan
    fma = 2 if " fma" in flags else 1
    return threads * lanes * fma * 2 * clock, f"{lanes} float32 lanes, {fma} FMA units, {clock / 1e9:.2f} GHz"


def taps_in_input(mod: nn.Module, in_size: tuple[int, ...]) -> int:
    """Σ over a conv's output positions of the kernel taps that fall on the input, not on its zero padding."""
    ones = torch.ones(1, 1, *in_size, dtype=torch.float64)
    fn = F.conv2d if len(in_size) == 2 else F.conv1d
    kernel = torch.ones(1, 1, *mod.kernel_size, dtype=torch.float64)
    return int(fn(ones, kernel, None, mod.stride, mod.padding, mod.dilation).sum())


def step_flops(model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """(FLOPs of one training step on batch x as counted by the conv formula, the same without the multiplies by
    zero padding). A step: the forward's conv and linear FLOPs, the weight gradient's as many, and the input
    gradient's as many for every layer but the first (whose input needs none)."""
    full, useful, first = [0.0], [0.0], []

    def hook(mod, inp, out):
        per_tap = 2 * out.shape[0] * out.shape[1] * (mod.in_channels // mod.groups) if isinstance(
            mod, (nn.Conv1d, nn.Conv2d)) else 0
        if per_tap:
            f = (per_tap * math.prod(out.shape[2:]) * math.prod(mod.kernel_size),
                 per_tap * taps_in_input(mod, tuple(inp[0].shape[2:])))
        elif isinstance(mod, nn.Linear):
            f = (2 * out.numel() * mod.in_features,) * 2
        else:
            return
        full[0] += 3 * f[0]
        useful[0] += 3 * f[1]
        if not first:
            first.append(f)

    hs = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return full[0] - first[0][0], useful[0] - first[0][1]


def bench(name: str, opts: dict, in_shape: tuple[int, ...], K: int, B: int, steps: int
          ) -> tuple[float, float, float, float]:
    """(FLOPs of K member steps, their useful FLOPs, CPU s of K solo steps, CPU s of one fused step of K)."""
    torch.manual_seed(0)
    nets = [create_model(name, in_shape, 10, **opts) for _ in range(K)]
    x = torch.randn(K, B, *in_shape)
    y = torch.randint(0, 10, (K, B))
    flops, useful = (K * f for f in step_flops(nets[0], x[0]))
    optims = [torch.optim.SGD(n.parameters(), lr=0.01, momentum=0.9) for n in nets]

    def solo() -> None:
        for k in range(K):
            loss = F.cross_entropy(nets[k](x[k]), y[k])
            optims[k].zero_grad(set_to_none=True)
            loss.backward()
            optims[k].step()

    base = copy.deepcopy(nets[0]).train()
    params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in nets]).requires_grad_()
              for n, _ in base.named_parameters()}
    bufs = {n: torch.stack([dict(m.named_buffers())[n] for m in nets]) for n, _ in base.named_buffers()}
    leaves = list(params.values())
    fused_opt = torch.optim.SGD(leaves, lr=0.01, momentum=0.9)  # a per-member update is elementwise: the same

    def fused() -> None:
        out = fused_forward(base, params, bufs, x)
        loss = F.cross_entropy(out.reshape(K * B, -1), y.reshape(-1), reduction="none").view(K, B).mean(1).sum()
        fused_opt.zero_grad(set_to_none=True)
        loss.backward()
        fused_opt.step()

    return flops, useful, cpu_best(solo, steps), cpu_best(fused, steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    measured = matmul_peak(a.threads)
    paper, how = paper_peak(a.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{a.threads} torch thread(s)")
    print(f"peak float32: matmul 2048² {measured / 1e9:.1f} GFLOP/s measured; on paper {paper / 1e9:.1f} GFLOP/s "
          f"({how})")
    print(f"{'net':16s} {'input':8s} {'MFLOP/step':>10s} {'useful':>7s} {'solo GFLOP/s':>12s} {'fused':>6s} "
          f"{'solo/peak':>9s} {'fused/peak':>10s} {'useful solo/peak':>16s} {'fused gain':>10s}")
    for name, opts, label in (("convnet3", {"width": 32}, "convnet3 w32"), ("conv4", {"width": 16}, "conv4 c16 BN")):
        for in_shape in ((1, 8, 8), (3, 32, 32)):
            flops, useful, solo_s, fused_s = bench(name, opts, in_shape, a.k, a.batch, a.steps)
            s, f = flops / solo_s, flops / fused_s
            print(f"{label:16s} {'x'.join(map(str, in_shape)):8s} {flops / a.k / 1e6:10.1f} {useful / a.k / 1e6:7.1f} "
                  f"{s / 1e9:12.1f} {f / 1e9:6.1f} {s / measured:9.2f} {f / measured:10.2f} "
                  f"{useful / solo_s / measured:16.2f} {solo_s / fused_s:9.2f}×", flush=True)
    print(f"(K = {a.k} members, batch {a.batch}; CPU seconds, best of {a.steps}; a step's FLOPs per member above, "
          "counted by the conv formula and, 'useful', without the taps on zero padding; ratios to the measured peak)")


if __name__ == "__main__":
    main()
