"""Issue 26's lenses on a ConvNet3-32 (512 CIFAR-shaped samples), each beside the reference tool doing the same
work, in one process, interleaved, medians of `--repeats` (wall and CPU seconds).

    python benchmarks/bench_lenses.py [--n 512] [--width 32] [--repeats 3] [--threads 1]

    esd        genlab compute(["esd"])                       vs weightwatcher 0.7.7 analyze() (SVDs + fits)
    pl_fit     genlab fit_power_law on one layer's ESD         vs powerlaw 2.0 Fit (x_min by KS, same data)
    slice_1d   11 points along one filter-normalized direction vs loss-landscapes linear_interpolation (11 steps)
    slice_2d   11 × 11 plane                                   vs loss-landscapes planar_interpolation (11 steps)
    barrier    mode_connectivity, 11 points, train + test,     vs loss-landscapes linear_interpolation twice
               no BN re-estimation (the reference has none)      (train, test; loss only)
    cka        every layer pair, linear, one batch of n        vs torch-cka 0.21 CKA.compare (one batch of n)

The models are float32 at initialization (seed 0, and seed 1 for the second network of a pair): the timings do
not depend on training. Data: N(0, 1) images, labels from the model's own argmax. Needs the `lenses-ref` extra.
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import time
import warnings
from typing import Callable

import numpy as np
import torch

from genlab.losses import get_loss
from genlab.measures import MeasureData, compute
from genlab.measures.connectivity import mode_connectivity
from genlab.measures.esd import fit_power_law, layer_eigenvalues
from genlab.measures.landscape import grid, random_direction, slice_1d, slice_2d
from genlab.measures.objective import params_of
from genlab.measures.pairs import compute_pair
from genlab.models import create_model

STEPS = 11


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def setup(n: int, width: int):
    torch.manual_seed(0)
    a = create_model("convnet3", (3, 32, 32), 10, width=width).eval()
    torch.manual_seed(1)
    b = create_model("convnet3", (3, 32, 32), 10, width=width).eval()
    x = torch.randn(2 * n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = a(x).argmax(1)
    data = MeasureData(x[:n], y[:n], x[n:], y[n:], get_loss("cross_entropy"), None, 10)
    return a, b, data


def cases(a, b, data: MeasureData) -> dict[str, tuple[Callable, Callable]]:
    import loss_landscapes as ll
    import loss_landscapes.metrics as llm
    import powerlaw
    import torch_cka
    import weightwatcher as ww

    ce = torch.nn.functional.cross_entropy
    w = params_of(a)
    d0, d1 = random_direction(w, 0, "filter"), random_direction(w, 1, "filter")
    ts = grid(1.0, STEPS)
    dt = float(ts[1] - ts[0])

    def shifted(net, d, t):
        out = copy.deepcopy(net)
        with torch.no_grad():
            for k, p in out.named_parameters():
                p.add_(t * d[k])
        return out

    start, end = shifted(a, d0, ts[0] - dt), shifted(a, d0, ts[0] - dt + STEPS * dt)
    corner = shifted(shifted(a, d0, ts[0]), d1, ts[0] - dt)
    e1, e2 = shifted(corner, d0, STEPS * dt), shifted(corner, d1, STEPS * dt)
    train_metric = llm.Loss(ce, data.x_train, data.y_train)
    test_metric = llm.Loss(ce, data.x_test, data.y_test)
    evals = layer_eigenvalues([m for m in a.modules() if isinstance(m, torch.nn.Conv2d)][1].weight)  # 1,600 λ
    layers = [name for name, m in a.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.x_test), batch_size=len(data.x_test))

    def ww_run():
        ww.WeightWatcher(model=a).analyze(plot=False)

    def tcka_run():  # torch-cka leaves its hooks on the models: fresh copies each time (genlab copies too)
        c = torch_cka.CKA(copy.deepcopy(a), copy.deepcopy(b), "A", "B", model1_layers=layers, model2_layers=layers)
        c.compare(loader)

    return {
        "esd": (lambda: compute(["esd"], a, data), ww_run),
        "pl_fit": (lambda: fit_power_law(evals), lambda: powerlaw.Fit(evals[evals > 1e-5], verbose=False)),
        "slice_1d": (lambda: slice_1d(a, data, data.x_train, data.y_train, d0, ts),
                     lambda: ll.linear_interpolation(start, end, train_metric, steps=STEPS, deepcopy_model=True)),
        "slice_2d": (lambda: slice_2d(a, data, data.x_train, data.y_train, d0, d1, ts),
                     lambda: ll.planar_interpolation(corner, e1, e2, train_metric, steps=STEPS, deepcopy_model=True)),
        "barrier": (lambda: mode_connectivity(a, b, data, points=STEPS, bn_reestimate=False),
                    lambda: [ll.linear_interpolation(a, b, m, steps=STEPS, deepcopy_model=True)
                             for m in (train_metric, test_metric)]),
        "cka": (lambda: compute_pair(["cka"], a, b, data, dtype=torch.float32,
                                     options={"cka": {"kernels": ["linear"], "matrix": True}}), tcka_run),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated case names (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    a, b, data = setup(args.n, args.width)
    chosen = cases(a, b, data)
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    print(f"ConvNet3-{args.width}, n = {args.n}, torch {torch.__version__}, {args.threads} thread(s), "
          f"{args.repeats} interleaved repeats; medians")
    print("(the machine may be shared: CPU seconds are this process's; wall includes waiting)")
    print(f"{'case':9s} {'genlab wall':>12s} {'cpu':>7s} {'reference wall':>15s} {'cpu':>7s} {'ref/genlab':>11s}")
    for name, (mine, ref) in chosen.items():
        tm, tr = [], []
        for r in range(args.repeats):
            order = [(mine, tm), (ref, tr)] if r % 2 == 0 else [(ref, tr), (mine, tm)]
            for fn, sink in order:
                sink.append(timed(fn))
        mw, mc = (statistics.median(t[i] for t in tm) for i in (0, 1))
        rw, rc = (statistics.median(t[i] for t in tr) for i in (0, 1))
        print(f"{name:9s} {mw:12.3f} {mc:7.3f} {rw:15.3f} {rc:7.3f} {rw / mw:11.2f}", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
