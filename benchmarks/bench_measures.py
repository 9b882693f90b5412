"""Time every registered measure on ResNet-56 and convnet3 (CIFAR shape 3×32×32, 10 classes), synthetic data.

    python benchmarks/bench_measures.py [--n 256] [--models resnet56,convnet3] [--device cpu] [--dtype float64]
                                        [--skip hessian]

Each measure runs once, through `genlab.measures.compute` (the trainer's and the CLI's entry point), with its
default options, on `n` training and `n` test points drawn from N(0, 1) with labels the net itself predicts
(so margins are positive and the bounds finite). The weights are PyTorch's default init: the timings do not
depend on training. Prints one line per measure and the total, with the provenance of the numbers.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from genlab.measures import MeasureData, compute, list_measures
from genlab.models import create_model
from genlab.losses import get_loss

IN_SHAPE = (3, 32, 32)
NUM_CLASSES = 10


def synthetic(model: torch.nn.Module, n: int, dtype: torch.dtype) -> MeasureData:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2 * n, *IN_SHAPE, generator=gen, dtype=dtype)
    with torch.no_grad():
        y = torch.cat([model(x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])
    init = {k: v.clone() for k, v in model.state_dict().items()}
    return MeasureData(x[:n], y[:n], x[n:], y[n:], get_loss("cross_entropy"), init, NUM_CLASSES)


def bench(model_name: str, n: int, device: str, dtype: torch.dtype, skip: tuple[str, ...] = ()) -> float:
    torch.manual_seed(0)
    model = create_model(model_name, IN_SHAPE, NUM_CLASSES).to(dtype).eval()
    data = synthetic(model, n, dtype)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\n{model_name}: {n_params:,} parameters, n = {n} train / {n} test, {device}, {dtype}")
    total = 0.0
    for name in list_measures():
        if name in skip:
            print(f"  {name:24s} skipped")
            continue
        t0 = time.perf_counter()
        values = compute([name], model, data, device=device, dtype=dtype)
        dt = time.perf_counter() - t0
        total += dt
        shown = ", ".join(f"{k.split('.', 1)[-1] if '.' in k else k}={v:.4g}" for k, v in list(values.items())[:3])
        print(f"  {name:24s} {dt:8.2f} s   {shown}")
    print(f"  {'total':24s} {total:8.2f} s")
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="training (and test) points")
    ap.add_argument("--models", default="resnet56,convnet3")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--skip", default="", help="comma-separated measures to leave out (e.g. hessian on a CPU)")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, python {platform.python_version()}")
    for m in args.models.split(","):
        bench(m, args.n, args.device, getattr(torch, args.dtype), tuple(filter(None, args.skip.split(","))))


if __name__ == "__main__":
    main()
