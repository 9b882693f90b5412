"""The empirical loss as a function of the weights, for measures that perturb them (sharpness, PAC-Bayes,
Hessian). The model is never modified: weights are passed to `torch.func.functional_call`; the model runs in
eval mode (BatchNorm uses its running statistics, so L̂ is a function of the weights alone). The rows go through
in passes of `rows_per_pass` rows (on a CPU sized to the cache; the trainer's evaluation uses it too), their
per-sample values summed in float64.
"""

from __future__ import annotations

import weakref
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call

from genlab.measures import MeasureData
from genlab.measures.layers import output_sizes

Params = dict[str, torch.Tensor]
LOSS_BATCH = 512  # rows per forward pass where PASS_BYTES has no entry; sums are accumulated in float64, so a
# value depends on the rows per pass only by float rounding
# Rows per pass sized so that one pass's largest activation (a leaf module's output) is about this many bytes,
# per device type: on a CPU a pass whose maps fit in cache runs faster than one large pass (at 3×32×32 a
# 1,000-row batch's maps are 32-64 MB a layer; this machine's caches: 1 MiB L2 a core, 32 MiB L3). Measured by
# `OMP_NUM_THREADS=1 python benchmarks/bench_passes.py` (float32, glibc's allocator set as `genlab run` sets it,
# medians of 4 interleaved): the trainer's evaluation (`train/evaluate.py`, 1,000-row batches, 2,000 rows)
# ConvNet3-32 57 → 45 ms, Conv-4 c16 326 → 120, ResNet-20 1,663 → 955; the measures on bench_measures.py's
# ConvNet3-32 (512 rows: 128 a pass, where they took 512 and the Hessian 256): the Hessian 1.42 → 1.35 s, the
# two σ searches 1.38 → 1.21, sharpness 0.80 → 0.70, landscape 0.57 → 0.49. On 8×8 digits or mnist1d most nets'
# activations are small (Conv-4 c16: 4 KiB a row → 1,024 rows; the tweaks CNN 8 KiB → 512): their 1,000-row
# evaluation batches stay one pass.
PASS_BYTES = {"cpu": 4 * 2 ** 20}
PASS_ROWS = (16, 4096)  # the least and most rows a sized pass takes
_ROWS: "weakref.WeakKeyDictionary[nn.Module, dict[tuple, int]]" = weakref.WeakKeyDictionary()
# Image batches of at least this many pixels a map go through the measures' passes channels-last (NHWC), per
# device type: oneDNN's convs, BN and pools then skip reordering to their blocked layout. Eval forward over
# 512 points, float32, 1 thread (7 conv families of bench_channels_last.py and the NiN of
# bench_measures_jiang.py): at 3×32×32 1.11-1.64× faster (NiN depth 2 24.7 → 18.5 ms, ResNet-20 485 → 324),
# at 1×8×8 0.97-1.02× (so not there). The values move by float rounding only (≤ 2e-7 on those nets).
CHANNELS_LAST_MIN_PIXELS = {"cpu": 16 * 16}


def params_of(model: nn.Module) -> Params:
    """The trainable parameters, detached: the point w at which a measure looks."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def buffers_of(model: nn.Module) -> Params:
    return {n: b for n, b in model.named_buffers()}


def train_subset(data: MeasureData, max_samples: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `max_samples` training rows (all if None): the fixed subset L̂ is measured on, in the layout
    the passes over it run fastest in (`pass_layout`)."""
    if max_samples is None:
        return pass_layout(data.x_train), data.y_train
    return pass_layout(data.x_train[:max_samples]), data.y_train[:max_samples]


def pass_layout(x: torch.Tensor) -> torch.Tensor:
    """x itself, or x channels-last where CHANNELS_LAST_MIN_PIXELS says it is faster (the same values; a batch
    sliced from it keeps the layout, and converting it again is free)."""
    least = CHANNELS_LAST_MIN_PIXELS.get(x.device.type)
    if least is None or x.dim() != 4 or x.shape[2] * x.shape[3] < least:
        return x
    return x.contiguous(memory_format=torch.channels_last)


def rows_per_pass(model: nn.Module, x: torch.Tensor, default: int = LOSS_BATCH) -> int:
    """Rows of x per forward pass: where PASS_BYTES has the device type, as many as keep the model's largest
    activation near it (measured once per model, row shape and dtype on one row), else `default`."""
    budget, (least, most) = PASS_BYTES.get(x.device.type), PASS_ROWS
    if budget is None:
        return default
    if len(x) <= least:
        return max(1, len(x))  # one pass whatever the size
    memo = _ROWS.setdefault(model, {})
    key = (tuple(x.shape[1:]), x.dtype, x.device)
    if key not in memo:
        largest = max(output_sizes(model, x[:1]), default=0) * x.element_size()  # bytes a row
        memo[key] = min(most, max(least, budget // max(1, largest)))
    return memo[key]


def loss_fn(model: nn.Module, data: MeasureData, x: torch.Tensor, y: torch.Tensor,
            per_sample: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
            ) -> Callable[[Params], torch.Tensor]:
    """L̂(w) = mean over (x, y) of `per_sample` (default: the training loss), as a differentiable function of w.

    Returns:
      fn(params) -> 0-d float64 tensor, in the loss's units (nats for cross-entropy). The per-sample values
      (in the model's dtype) are summed in float64, so a 0-1 error is the exact count / n in any dtype: a
      float32 rate such as 4/40 would round above 0.1 and flip a comparison with a target of 0.1.
    """
    model.eval()
    buffers = buffers_of(model)
    per_sample = per_sample or data.loss.per_sample
    x = pass_layout(x)
    rows = rows_per_pass(model, x)

    def fn(params: Params) -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float64, device=x.device)
        for i in range(0, len(x), rows):
            out = functional_call(model, {**params, **buffers}, (x[i:i + rows],))
            total = total + per_sample(out, y[i:i + rows]).to(total.dtype).sum()
        return total / len(x)

    return fn


def value_and_grad(model: nn.Module, data: MeasureData, x: torch.Tensor, y: torch.Tensor,
                   params: Params) -> tuple[float, Params]:
    """(L̂(w), ∇L̂(w)) at `params`, accumulated batch by batch so memory stays that of one batch."""
    total, grads = 0.0, {k: torch.zeros_like(v) for k, v in params.items()}
    w = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    rows = rows_per_pass(model, x)
    for i in range(0, len(x), rows):
        xb, yb = x[i:i + rows], y[i:i + rows]
        with torch.enable_grad():
            value = loss_fn(model, data, xb, yb)(w) * (len(xb) / len(x))
            g = torch.autograd.grad(value, list(w.values()))
        total += float(value.detach())
        for k, gk in zip(w, g):
            grads[k] += gk
    return total, grads


@torch.no_grad()
def value_of(model: nn.Module, data: MeasureData, x: torch.Tensor, y: torch.Tensor, params: Params) -> float:
    """L̂ at `params`, accumulated batch by batch exactly as `value_and_grad` does (the same float), no gradient."""
    total = 0.0
    rows = rows_per_pass(model, x)
    for i in range(0, len(x), rows):
        xb, yb = x[i:i + rows], y[i:i + rows]
        total += float(loss_fn(model, data, xb, yb)(params) * (len(xb) / len(x)))
    return total


def error_rate(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) 1.0 where argmax ≠ label: the 0-1 loss; NaN for a row whose outputs are not all finite (a diverged
    model has no prediction: argmax of NaN would score it as class 0)."""
    err = (out.argmax(dim=1) != y).to(out.dtype)
    return torch.where(torch.isfinite(out).all(dim=1), err, torch.full_like(err, float("nan")))
