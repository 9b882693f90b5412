"""Path norms: sums over all input→output paths of products of weights, by one forward pass.

For a network of Linear/Conv layers and ReLUs (with identity or option-A shortcuts, as in ResNets)
    Σ_paths ∏_{edges e on the path} c_e |w_e|^p
is the sum of the outputs of the same network with every weight w replaced by c |w|^p, every bias b by c |b|^p,
on an all-ones input: all activations are then ≥ 0, so ReLUs pass everything and each unit holds the sum over
the paths that reach it. Additions (residual shortcuts) add path sets; option-A shortcuts (subsample and
zero-pad) are 0/1 linear maps that |·|^p leaves alone. A bias counts as an edge from a unit fixed at 1.

What it means elsewhere:
  * BatchNorm is folded into the preceding layer first (fold.py); a BN that cannot be folded is refused.
  * Max-pooling routes each output to one input that depends on the data; we count every input of the window
    (sum pooling), so the value is the path norm of the union of all routings: an upper bound that holds for any
    input. Average pooling is the linear map with weights 1/area, so it contributes (1/area)^p per edge.

ℓp path norm = (Σ_paths ∏ |w|^p)^{1/p}. Values are returned as natural logs.

References:
  Neyshabur, Tomioka & Srebro, "Norm-Based Capacity Control in Neural Networks", 2015
  (https://arxiv.org/abs/1503.00036); Neyshabur, Salakhutdinov & Srebro, "Path-SGD", 2015
  (https://arxiv.org/abs/1506.02617); Jiang et al. 2020 eq. 44-45.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from genlab.measures import MeasureData, register_measure
from genlab.measures.fold import check_all_folded
from genlab.measures.layers import LINEAR_TYPES, Op, leaf_modules, trace
from genlab.measures.norms import folded64

MAXPOOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
AVGPOOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
ADAPTIVE_AVGPOOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
SUM_POOL_FNS = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
LayerScale = Callable[[Op], float]


def _pool_hook(p: float):
    """Forward hooks that turn pooling into its path-counting linear map on non-negative inputs."""
    def hook(m, inputs, out):
        x = inputs[0]
        if isinstance(m, MAXPOOLS):
            if m.dilation not in (1, (1,) * (x.dim() - 2)) or m.return_indices:
                raise ValueError("path norms support max-pooling without dilation or return_indices")
            d = x.dim() - 2
            k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,) * d
            s = SUM_POOL_FNS[d](x, m.kernel_size, m.stride, m.padding, m.ceil_mode, count_include_pad=True)
            return s * math.prod(k)  # window sum: every input of the window is a possible route
        if isinstance(m, AVGPOOLS + ADAPTIVE_AVGPOOLS):
            area = x[0, 0].numel() / out[0, 0].numel()  # exact for the non-overlapping pools of CNN heads
            if isinstance(m, AVGPOOLS) and not _non_overlapping(m, x.dim() - 2):
                raise ValueError("path norms support average pooling with stride = kernel_size and no padding")
            return out * area ** (1.0 - p)  # edges of weight 1/area → (1/area)^p
        return None

    return hook


def _non_overlapping(m: nn.Module, d: int) -> bool:
    tup = lambda v: v if isinstance(v, tuple) else (v,) * d  # noqa: E731
    return tup(m.kernel_size) == tup(m.stride or m.kernel_size) and all(q == 0 for q in tup(m.padding))


@torch.no_grad()
def path_sum(model: nn.Module, x: torch.Tensor, p: float, scale: LayerScale | None = None) -> float:
    """log Σ_paths ∏_e c_e |w_e|^p, with c = scale(op) for every edge of layer op (1 if scale is None).

    Args:
      model: a BN-free (already folded) network of Linear/Conv layers, ReLUs, pooling and additions.
      x: (1, *in_shape) a sample input (only its shape is used).
      p: the exponent (1 for ℓ1, 2 for ℓ2 path norms).
      scale: per-layer constant (e.g. 4 h_i for Neyshabur et al. 2017 eq. 3).

    Returns:
      log of the path sum, in nats (float64 forward pass; -inf if every path has a zero weight).
    """
    ops = {id(op.module): op for op in trace(model, x)}
    swaps: list[tuple[nn.Parameter, torch.Tensor]] = []
    for op in ops.values():
        c = 1.0 if scale is None else scale(op)
        for t in (op.module.weight, op.module.bias):
            if t is not None:
                swaps.append((t, t.detach().clone()))
                t.copy_(c * t.abs() ** p)
    handles = [m.register_forward_hook(_pool_hook(p)) for m in leaf_modules(model)]
    try:
        out = model(torch.ones_like(x))
    finally:
        for h in handles:
            h.remove()
        for t, old in swaps:
            t.copy_(old)
    return math.log(float(out.sum()))


def log_path_norm(model: nn.Module, data: MeasureData, p: float) -> float:
    """log of the ℓp path norm (Σ_paths ∏ |w|^p)^{1/p} of the BN-folded model, in nats."""
    if p <= 0:
        raise ValueError(f"path norm exponent p must be > 0, got {p}")
    net, x = folded_for_paths(model, data, f"the l{p:g} path norm")
    return path_sum(net, x, p) / p


def folded_for_paths(model: nn.Module, data: MeasureData, what: str) -> tuple[nn.Module, torch.Tensor]:
    """(the float64 BN-folded net, a float64 sample), or a ValueError naming `what` if the net has a BN that
    cannot be folded or a module under which the |w|^p pass is not a path sum."""
    net, lone, x = folded64(model, data)
    check_all_folded(lone, what)
    check_activations(net)
    return net, x


NON_RELU = (nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.SELU, nn.SiLU, nn.Softplus, nn.LeakyReLU, nn.Hardtanh,
            nn.Softmax, nn.LogSoftmax, nn.LayerNorm, nn.GroupNorm)  # not positively homogeneous, or not ReLU


def check_activations(model: nn.Module) -> None:
    """Refuse modules under which the |w|^p forward pass is not a path sum (parameter-free custom modules, such
    as an option-A shortcut, are trusted to be linear and non-negative on x ≥ 0)."""
    bad = {type(m).__name__ for m in leaf_modules(model)
           if isinstance(m, NON_RELU) or (list(m.parameters(recurse=False)) and not isinstance(m, LINEAR_TYPES))}
    if bad:
        raise ValueError(f"path norms are defined for Linear/Conv/ReLU/pooling networks; found {sorted(bad)}. "
                         "Use ReLU activations")


@register_measure("log_l1_path_norm")
def log_l1_path_norm(model: nn.Module, data: MeasureData) -> float:
    """log Σ_paths |∏_e w_e| (nats), BN folded. Neyshabur et al. 2015, ℓ1 path regularizer."""
    return log_path_norm(model, data, 1.0)


@register_measure("log_l2_path_norm")
def log_l2_path_norm(model: nn.Module, data: MeasureData) -> float:
    """log (Σ_paths ∏_e w_e²)^{1/2} (nats), BN folded. Neyshabur et al. 2015; Jiang et al. 2020 eq. 44."""
    return log_path_norm(model, data, 2.0)
