"""train.channels_last on this machine: one solo training step and one evaluation pass of each 2-D conv family,
contiguous (NCHW) vs channels-last (NHWC) weights and inputs, side by side.

    python benchmarks/bench_channels_last.py [--threads 1] [--batch 64] [--device cpu]

For each model at digits' 1×8×8 and CIFAR's 3×32×32: CPU seconds (process time; wall on CUDA, synchronized)
of a step (forward, cross-entropy, backward, SGD with momentum) and of a no-grad forward, best of 10 (3 at
32×32) over two interleaved rounds per layout, and the ratio NCHW / NHWC (> 1: channels-last is faster).
Which layout wins depends on the model, the map size and the device, which is why it is an option
(`train.channels_last`, solo runs) and not a default. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from genlab.models import create_model

CASES = [("convnet3", {"width": 32}), ("conv4", {"width": 16}), ("conv4", {"width": 64}), ("tweaks_cnn", {}),
         ("vgg", {"depth": 11, "batch_norm": True, "width_factor": 0.25}), ("resnet20", {}), ("nin", {})]


def best(fn, repeats: int, device: str) -> float:
    clock = time.perf_counter if device != "cpu" else time.process_time
    fn()
    out = float("inf")
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = clock()
        fn()
        if device != "cpu":
            torch.cuda.synchronize()
        out = min(out, clock() - t0)
    return out


def timings(name: str, opts: dict, shape: tuple[int, ...], batch: int, last: bool, device: str
            ) -> tuple[float, float]:
    """(seconds of one training step, of one evaluation pass) in one layout."""
    torch.manual_seed(0)
    net = create_model(name, shape, 10, **opts).to(device)
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    if last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def evaluate() -> None:
        net.eval()
        with torch.no_grad():
            net(x)
        net.train()

    repeats = 10 if shape[1] <= 8 else 3
    return best(step, repeats, device), best(evaluate, repeats, device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.device}, {a.threads} thread(s), batch {a.batch}; ms, best of repeats")
    print(f"{'model':34s} {'input':8s} {'step NCHW':>9s} {'NHWC':>7s} {'gain':>6s}   {'eval NCHW':>9s} {'NHWC':>7s} "
          f"{'gain':>6s}")
    for name, opts in CASES:
        for shape in ((1, 8, 8), (3, 32, 32)):
            runs = {False: [], True: []}
            for last in (False, True, False, True):
                runs[last].append(timings(name, opts, shape, a.batch, last, a.device))
            (s0, e0), (s1, e1) = ([min(t[i] for t in runs[k]) for i in (0, 1)] for k in (False, True))
            label = name + (" " + " ".join(f"{k}={v}" for k, v in opts.items()) if opts else "")
            print(f"{label:34s} {'x'.join(map(str, shape)):8s} {s0 * 1e3:9.2f} {s1 * 1e3:7.2f} {s0 / s1:5.2f}×   "
                  f"{e0 * 1e3:9.2f} {e1 * 1e3:7.2f} {e0 / e1:5.2f}×", flush=True)


if __name__ == "__main__":
    main()
