"""Normalized loss (000 ch. 4): the loss of the network once its scale is divided out, on train and test.

* Per-layer normalization: each Linear/Conv layer (BN folded first) has its weight divided by its Frobenius
  norm ‖W_i‖_F. For a bias-free ReLU network f is positively homogeneous in each layer, so the normalized net is
  exactly f / ∏_i ‖W_i‖_F (the "product of norms" ρ). With biases (or folded BN shifts), each bias is divided by
  the product of the norms of its own and all earlier layers on the main path, which keeps that identity for
  plain (non-residual) networks; residual nets use the output normalization instead.
* Output normalization (000 §4, for ResNets): f̃(x) = f(x) / ‖f(x₀)‖₂, x₀ the first training point; the scale of
  a residual net is not a product over layers, so it is read off the output on one fixed sample.

The loss is `data.loss` on the normalized outputs (nats for cross-entropy); the error is unchanged by either.

References:
  Liao, Miranda, Banburski, Hidary & Poggio, "A Surprising Linear Relationship Predicts Test Performance in
  Deep Networks", 2018 (https://arxiv.org/abs/1807.09659); 000 ch. 4.
"""

from __future__ import annotations

import torch
from torch import nn

from genlab.measures import MeasureData, cached, register_measure
from genlab.measures.fold import require_folded
from genlab.measures.layers import trace, unique_ops
from genlab.measures.margins import outputs, outputs_of


def _mean_loss(out: torch.Tensor, y: torch.Tensor, data: MeasureData) -> float:
    return float(data.loss.per_sample(out, y).mean())


@torch.no_grad()
def layer_normalized(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """A BN-folded copy with W_i ← W_i/‖W_i‖_F and b_i ← b_i/∏_{j≤i}‖W_j‖_F (layers in execution order)."""
    net = require_folded(model, x, "normalized_loss")
    cumulative = 1.0
    for op in unique_ops(trace(net, x)):
        norm = float(torch.linalg.vector_norm(op.weight))
        if norm == 0:
            raise ValueError("normalized_loss: a layer has all-zero weights, so it cannot be divided by its norm")
        cumulative *= norm
        op.module.weight.div_(norm)
        if op.module.bias is not None:
            op.module.bias.div_(cumulative)
    return net


def normalized_net(model: nn.Module, data: MeasureData) -> nn.Module:
    """`layer_normalized(model)`, built once per compute call (normalized_loss and normalized_margin_q5)."""
    return cached(data, ("layer_normalized", model), lambda: layer_normalized(model, data.sample()))


@register_measure("normalized_loss")
def normalized_loss(model: nn.Module, data: MeasureData) -> dict[str, float]:
    """Loss of the per-layer Frobenius-normalized network (000 ch. 4, figs. 4-2 to 4-8).

    Returns:
      train, test: mean loss of the normalized network on each split, in the loss's units.
    """
    net = normalized_net(model, data)
    return {"train": _mean_loss(outputs_of(net, data.x_train, data), data.y_train, data),
            "test": _mean_loss(outputs_of(net, data.x_test, data), data.y_test, data)}


@register_measure("output_normalized_loss")
def output_normalized_loss(model: nn.Module, data: MeasureData) -> dict[str, float]:
    """Loss of f(x)/‖f(x₀)‖₂ with x₀ the first training point (000 ch. 4's ResNet normalization, fig. 4-6).

    Returns:
      train, test: mean loss of the output-normalized network, in the loss's units; scale: ‖f(x₀)‖₂.
    """
    scale = float(torch.linalg.vector_norm(outputs(model, data.sample())))
    if scale == 0:
        raise ValueError("output_normalized_loss: the output on the fixed sample is 0; the scale is undefined")
    return {"train": _mean_loss(outputs_of(model, data.x_train, data) / scale, data.y_train, data),
            "test": _mean_loss(outputs_of(model, data.x_test, data) / scale, data.y_test, data),
            "scale": scale}
