"""Fold eval-mode BatchNorm into the layer that precedes it, so weight measures see one linear map per layer.

In eval mode BN is the affine map y = γ (z − μ)/√(σ² + eps) + β per channel, with running mean μ and
running variance σ² (a variance, not a standard deviation). When z = W x + b comes straight from a Linear or
Conv layer, s = γ/√(σ² + eps) gives an equivalent layer W' = s·W (row/output-channel-wise) and
b' = s·(b − μ) + β, and the BN becomes the identity. A BN whose input is not the direct output of such a layer
(a pre-activation ResNet's BN after an addition or a ReLU) is left in place: `fold_batchnorm` reports it in
`unfolded` so measures that need a pure linear/ReLU net can refuse the model with a clear message.

Folding changes nothing the network computes in eval mode (tested), but weight norms then include BN's scale.
It assumes the layer's output feeds only its BN (true of conv→BN→ReLU stacks, VGG and ResNet blocks): a layer
whose raw output is also read elsewhere would change that other reader.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from genlab.measures.layers import LINEAR_TYPES, run_with_hooks

BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _pairs(model: nn.Module, x: torch.Tensor) -> tuple[list[tuple[nn.Module, nn.Module]], list[nn.Module]]:
    """(layer, bn) pairs where the BN's input tensor is exactly the layer's output; and BNs without one."""
    producer: dict[int, nn.Module] = {}
    keep: list[torch.Tensor] = []  # holds outputs alive so their ids stay unique during the pass
    pairs, lone = [], []

    def hook(m, inputs, out):
        if isinstance(m, BN_TYPES):
            src = producer.get(id(inputs[0]))
            (pairs.append((src, m)) if src is not None else lone.append(m))
        if isinstance(m, LINEAR_TYPES) and isinstance(out, torch.Tensor):
            producer[id(out)] = m
            keep.append(out)

    run_with_hooks(model, x, hook)
    return pairs, lone


@torch.no_grad()
def _fold_into(layer: nn.Module, bn: nn.Module) -> None:
    if not bn.track_running_stats or bn.running_mean is None:
        raise ValueError("BatchNorm without running statistics cannot be folded; build it with "
                         "track_running_stats=True")
    s = torch.rsqrt(bn.running_var + bn.eps)  # (C,) 1/std
    if bn.affine:
        s = s * bn.weight
    shift = bn.bias if bn.affine else torch.zeros_like(s)
    w = layer.weight  # (out, in, *k); BN channels are the layer's outputs
    layer.weight.copy_(w * s.reshape(-1, *[1] * (w.dim() - 1)))
    b = layer.bias if layer.bias is not None else torch.zeros_like(s)
    new_b = s * (b - bn.running_mean) + shift
    if layer.bias is None:
        layer.bias = nn.Parameter(new_b)
    else:
        layer.bias.copy_(new_b)


def _replace(model: nn.Module, old: nn.Module, new: nn.Module) -> None:
    for parent in model.modules():
        for key, child in parent._modules.items():
            if child is old:
                parent._modules[key] = new


def fold_batchnorm(model: nn.Module, x: torch.Tensor, dtype: torch.dtype | None = None
                   ) -> tuple[nn.Module, list[nn.Module]]:
    """A copy of `model` with each foldable BatchNorm merged into its preceding Linear/Conv layer.

    Args:
      model: the network (not modified).
      x: (B, *in_shape) a sample batch, to find which layer feeds each BN.
      dtype: the copy's float dtype (default: the model's); weight measures fold in float64.

    Returns:
      (folded copy in eval mode, the BN modules of the copy that could not be folded).

    References:
      Ioffe & Szegedy, "Batch Normalization", 2015 (the eval-mode affine map folded here).
    """
    net = copy.deepcopy(model).to(dtype=dtype).eval()
    pairs, lone = _pairs(net, x.to(dtype=dtype))
    for layer, bn in pairs:
        if isinstance(layer, nn.Linear) and bn.num_features != layer.out_features:
            lone.append(bn)
            continue
        _fold_into(layer, bn)
        _replace(net, bn, nn.Identity())
    return net, lone


def require_folded(model: nn.Module, x: torch.Tensor, measure: str) -> nn.Module:
    """The BN-folded copy, or a ValueError naming the measure if some BN cannot be folded."""
    net, lone = fold_batchnorm(model, x)
    check_all_folded(lone, measure)
    return net


def check_all_folded(lone: list[nn.Module], measure: str) -> None:
    """A ValueError naming the measure if `fold_batchnorm` left some BN unfolded."""
    if lone:
        raise ValueError(f"{measure} needs every BatchNorm directly after a Linear/Conv layer to fold it; "
                         f"{len(lone)} BatchNorm layer(s) follow something else (e.g. pre-activation blocks)")
