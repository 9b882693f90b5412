"""Margins of the normalized network (000 ch. 4, Figs. 4-8 and 4-9): the scale divided out of the margin.

* `normalized_margin_q5`: the γ_margin (ε = 5 %) of the layer-normalized net (each Linear/Conv weight divided
  by its Frobenius norm, BN folded, biases by the cumulative product; `normalized.layer_normalized`). For a
  bias-free ReLU net this is margin_q5 / ∏_k ‖W_k‖_F. Fig. 4-8 plots the test error against its inverse.
* `output_normalized_margin_q5`: γ_margin (ε = 5 %) of f(x) / ‖f(x₀)‖₂, x₀ the first training point: the
  ResNet normalization of 000 ch. 4 (Fig. 4-9).

The 5 % quantile rather than the minimum: a run stopped at the first epoch of zero training error has a
minimum margin barely above 0, so its inverse is noise; margin_min stays available for the hard margin.

References:
  000 ch. 4, Figs. 4-8 and 4-9 ("1/margin of the normalized network").
  Neyshabur, Bhojanapalli, McAllester & Srebro, "Exploring Generalization in Deep Learning", 2017
  (https://arxiv.org/abs/1706.08947), §2.1 (γ_margin at ε = 5 %).
"""

from __future__ import annotations

import torch
from torch import nn

from genlab.measures import MeasureData, register_measure
from genlab.measures.margins import gamma_margin, margins, outputs, outputs_of
from genlab.measures.normalized import normalized_net

QUANTILE = 0.05  # ε of γ_margin: the ⌈0.05 m⌉-th smallest training margin (Neyshabur et al. 2017)


def _need_classes(data: MeasureData) -> None:
    if data.num_classes is None:
        raise ValueError("margins need a classification data set (num_classes is None)")


@register_measure("normalized_margin_q5")
def normalized_margin_q5(model: nn.Module, data: MeasureData) -> float:
    """γ_margin(5 %) of the per-layer Frobenius-normalized net, in its logit units (000 Fig. 4-8)."""
    _need_classes(data)
    net = normalized_net(model, data)
    return gamma_margin(margins(outputs_of(net, data.x_train, data), data.y_train), QUANTILE)


@register_measure("output_normalized_margin_q5")
def output_normalized_margin_q5(model: nn.Module, data: MeasureData) -> float:
    """γ_margin(5 %) of f / ‖f(x₀)‖₂ (x₀ the first training point), 000 Fig. 4-9's ResNet normalization."""
    _need_classes(data)
    scale = float(torch.linalg.vector_norm(outputs(model, data.sample())))
    if scale == 0:
        raise ValueError("output_normalized_margin_q5: the output on the fixed sample is 0; the scale is undefined")
    return gamma_margin(margins(outputs_of(model, data.x_train, data), data.y_train), QUANTILE) / scale
