"""genlab's counterparts of Jiang et al.'s measures against the public reference code, side by side in one process.

    git clone https://github.com/nitarshan/robust-generalization-measures /path/to/rgm    # not vendored here
    OMP_NUM_THREADS=1 python benchmarks/bench_measures_jiang.py --reference /path/to/rgm [--n 512] [--width 32]
                                                                [--repeats 3]

The reference: `data/generation/measures.py` of Dziugaite et al.'s "In search of robust measures of
generalization" (NeurIPS 2020) code, the PyTorch port of Jiang et al.'s "Fantastic generalization measures"
(ICLR 2020) that peer studies run. Its `get_all_measures(model, init_model, loader, acc, seed)` computes
norms, margins, spectral norms (SVD and FFT), the path norm and the two PAC-Bayes σ searches (15 bisection
steps over [0, 2], 10 Monte Carlo draws a step, stopping once the accuracy drop is within 0.01 of 0.1). The
file is loaded from `--reference` with two stand-in modules for its imports (`ComplexityType`, an Enum of the
names it uses, and `ExperimentBaseModel` = nn.Module); nothing of it is copied into genlab.

The checkpoint: the reference's own architecture, genlab's `nin` (NiN blocks with BN; depth 2, `--width`),
trained with SGD on 2n CIFAR-shaped N(0, 1) images labelled by a random linear teacher (10 balanced-ish
classes) until all n training points are right (seed 0). The reference reads it through a wrapper that names each layer as its code expects
(`conv<i>`, `bn<i>`: it folds BN and drops biases by module and parameter names), running genlab's very
modules in order, so both see the same function. genlab computes `COUNTERPARTS` in one `compute()` call
(float32, its default), twice: with its default searches (σ to 2^-8 relative) and with the reference's stopping
rule (`FlatnessConfig.deviation_tol` = 0.01: the first σ whose rise is within 0.01 of 0.1). Timed: CPU seconds of this process (1 thread: set OMP_NUM_THREADS=1), each side
`--repeats` times, interleaved; medians. Also counted: forward passes over the n points (a hook on the first
conv). Both run under the glibc allocator setting `genlab measure` makes (genlab.runtime: without it most of
either side's time is the kernel's, mapping and unmapping freed buffers). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import enum
import importlib.util
import io
import platform
import re
import statistics
import sys
import time
import types
from pathlib import Path

import torch
from torch import nn

from bench_measures import fit_to_zero_error
from genlab.losses import get_loss
from genlab.measures import MeasureData, compute
from genlab.measures.pacbayes import FlatnessConfig
from genlab.models import create_model
from genlab.runtime import keep_freed_memory

IN_SHAPE = (3, 32, 32)
REFERENCE_TOL = 0.01  # the reference's displacement_tolerance: its searches stop at a rise within this of 0.1
NUM_CLASSES = 10
MAX_EPOCHS = 100
# genlab's measure for each quantity of the reference's get_all_measures (its ComplexityType names):
COUNTERPARTS = [
    "num_params",  # PARAMS
    "dist_from_init",  # L2_DIST, FRO_DIST
    "margin_q10",  # INVERSE_MARGIN (the 10 % quantile margin) and every "/ margin" variant
    "frobenius_norms", "log_prod_frobenius", "log_sum_sq_frobenius",  # L2, LOG_PROD_OF_FRO, LOG_SUM_OF_FRO, ...
    "spectral_norms", "log_prod_spectral", "log_sum_of_spec", "log_sum_sq_spectral",  # *_SPEC, *_SPEC_FFT
    "log_l2_path_norm",  # PATH_NORM
    "pacbayes_flatness", "pacbayes_mag_flatness",  # PACBAYES_* and PACBAYES_MAG_* (σ searches and bounds)
]


def load_reference(root: Path) -> types.ModuleType:
    """The reference's measures.py as module `jiang_ref.measures`, its two imports stood in for."""
    path = root / "data" / "generation" / "measures.py" if root.is_dir() else root
    if not path.is_file():
        raise SystemExit(f"--reference: no {path}; pass a clone of nitarshan/robust-generalization-measures "
                         "or the path of its data/generation/measures.py")
    names = sorted(set(re.findall(r"CT\.([A-Z0-9_]+)", path.read_text())))
    pkg = types.ModuleType("jiang_ref")
    pkg.__path__ = [str(path.parent)]
    config = types.ModuleType("jiang_ref.experiment_config")
    config.ComplexityType = enum.Enum("ComplexityType", names)
    models = types.ModuleType("jiang_ref.models")
    models.ExperimentBaseModel = nn.Module
    sys.modules.update({"jiang_ref": pkg, "jiang_ref.experiment_config": config, "jiang_ref.models": models})
    spec = importlib.util.spec_from_file_location("jiang_ref.measures", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["jiang_ref.measures"] = module
    spec.loader.exec_module(module)
    return module


class Named(nn.Module):
    """A Sequential's layers under the names the reference matches (`conv<i>`, `bn<i>`, `op<i>`), run in order;
    `dataset_type.D` is the input shape its path norm and FFT read."""

    def __init__(self, seq: nn.Sequential):
        super().__init__()
        self.dataset_type = types.SimpleNamespace(D=IN_SHAPE, K=NUM_CLASSES)
        self.order = []
        for i, m in enumerate(seq):
            name = {nn.Conv2d: "conv", nn.BatchNorm2d: "bn"}.get(type(m), "op") + str(i)
            self.add_module(name, m)
            self.order.append(name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.order:
            x = getattr(self, name)(x)
        return x


def checkpoint(n: int, width: int) -> tuple[nn.Sequential, nn.Sequential, torch.Tensor, torch.Tensor, int]:
    """(trained NiN in eval mode, its init, x (2n, 3, 32, 32), teacher labels (2n,), epochs)."""
    torch.manual_seed(0)
    model = create_model("nin", IN_SHAPE, NUM_CLASSES, depth=2, width=width)
    init = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2 * n, *IN_SHAPE, generator=gen)
    teacher = torch.randn(x[0].numel(), NUM_CLASSES, generator=gen)
    y = (x.flatten(1) @ teacher).argmax(1)
    epoch = fit_to_zero_error(model, x, y, n, gen, MAX_EPOCHS)
    return model.eval(), init.eval(), x, y, epoch


def count_passes(model: nn.Module, n: int) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    """A counter of the forward passes over n points through `model`'s first conv (and the hook's handle)."""
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    seen = [0]

    def hook(mod, inp, out):
        seen[0] += inp[0].shape[0] / n
    return seen, first.register_forward_hook(hook)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, required=True,
                    help="a clone of nitarshan/robust-generalization-measures (or its data/generation/measures.py)")
    ap.add_argument("--n", type=int, default=512, help="training points the measures read")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    allocator = keep_freed_memory()
    ref = load_reference(a.reference)
    model, init, x, y, epochs = checkpoint(a.n, a.width)
    n = a.n
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
          f"thread(s); NiN depth 2 width {a.width} ({sum(p.numel() for p in model.parameters()):,} parameters), "
          f"{n} points ({len(y[:n].unique())} classes), fitted in {epochs} epochs; glibc keep_freed_memory: "
          f"{allocator}")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:n], y[:n]), batch_size=n)
    named, named_init = Named(copy.deepcopy(model)), Named(copy.deepcopy(init))
    with torch.no_grad():
        acc = float((model(x[:n]).argmax(1) == y[:n]).float().mean())
    data = MeasureData(x[:n], y[:n], x[n:], y[n:], get_loss("cross_entropy"), init.state_dict(), NUM_CLASSES)

    def reference() -> dict:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a line per group of measures
            return ref.get_all_measures(named, named_init, loader, acc, 0)

    def genlab() -> dict:
        return compute(COUNTERPARTS, model, data, dtype=torch.float32)

    rule = {k: {"cfg": FlatnessConfig(deviation_tol=REFERENCE_TOL)} for k in COUNTERPARTS if k.startswith("pacbayes")}

    def genlab_rule() -> dict:  # the searches stop as the reference's do: at a rise within 0.01 of the target
        return compute(COUNTERPARTS, model, data, dtype=torch.float32, options=rule)

    sides = (("reference", reference, named), ("genlab", genlab, model), ("genlab_rule", genlab_rule, model))
    secs: dict[str, list[float]] = {label: [] for label, _, _ in sides}
    passes: dict[str, float] = {}
    values: dict[str, dict] = {}
    for _ in range(a.repeats):
        for label, fn, net in sides:
            seen, handle = count_passes(net, n)
            t0 = time.process_time()
            values[label] = fn()
            secs[label].append(time.process_time() - t0)
            handle.remove()
            passes[label] = seen[0]
            print(f"  {label:11s} {secs[label][-1]:7.2f} CPU s, {passes[label]:6.1f} forward passes over the "
                  f"{n} points", flush=True)
    med = {k: statistics.median(v) for k, v in secs.items()}
    r, g, gr = med["reference"], med["genlab"], med["genlab_rule"]
    print(f"medians of {a.repeats}: reference {r:.2f} CPU s ({len(values['reference'])} quantities); genlab "
          f"{g:.2f} CPU s ({len(values['genlab'])} values) by default, its speed {r / g:.2f}× the reference's; "
          f"genlab with the reference's stopping rule (deviation_tol {REFERENCE_TOL}) {gr:.2f} CPU s, "
          f"{r / gr:.2f}×; per forward pass {1e3 * r / passes['reference']:.1f} vs {1e3 * g / passes['genlab']:.1f} "
          f"and {1e3 * gr / passes['genlab_rule']:.1f} ms")
    sigma = {k: (values["reference"][k] ** 2 * n) ** -0.5 for k in (ref.CT.PACBAYES_FLATNESS,  # sqrt(1/(σ² m))
                                                                     ref.CT.PACBAYES_MAG_FLATNESS)}
    print(f"the searches' results: reference σ {sigma[ref.CT.PACBAYES_FLATNESS]:.4g} (the standard deviation of "
          f"its noise is σ²: {sigma[ref.CT.PACBAYES_FLATNESS] ** 2:.4g}), magnitude-aware "
          f"{sigma[ref.CT.PACBAYES_MAG_FLATNESS]:.4g}; genlab: " + ", ".join(
              f"{k} {v:.4g}" for k, v in values["genlab"].items() if k.endswith(".sigma")) + "; with the rule: "
          + ", ".join(f"{k} {v:.4g}" for k, v in values["genlab_rule"].items() if k.endswith(".sigma")))


if __name__ == "__main__":
    main()
