"""Margin-normalized capacity measures and norm-based bounds, composed from the registered measures.

The four capacity measures of Neyshabur et al. 2017 (004 eqs. 1-4), constants included, over d layers:
    ℓ2:        (1/γ²) ∏_i 4 ‖W_i‖_F²
    ℓ1-path:   (1/γ²) (Σ_paths |∏_i 2 W_i[j_i, j_{i-1}]|)²
    ℓ2-path:   (1/γ²) Σ_paths ∏_i 4 h_i W_i[j_i, j_{i-1}]²
    spectral:  (1/γ²) ∏_i h_i ‖W_i‖₂²
with γ = γ_margin at ε = 5 % (`margin_q5`), h_i the number of units layer i outputs (channels × positions for a
conv; the output layer's h_d is the number of classes), and ‖W_i‖₂ the operator norm at the layer's input size.
The per-edge constants (2, 4 h_i) ride along each path, so the path sums stay exact on residual nets, whose paths
have different lengths. Every value is a natural log; a non-positive margin makes the measure +inf (vacuous).

References:
  Neyshabur, Bhojanapalli, McAllester & Srebro, "Exploring Generalization in Deep Learning", 2017
  (https://arxiv.org/abs/1706.08947), §2.1 (004 eqs. 1-4).
  Bartlett, Foster & Telgarsky, "Spectrally-normalized margin bounds for neural networks", 2017
  (https://arxiv.org/abs/1706.08498), Thm. 1.1.
  Neyshabur, Bhojanapalli & Srebro, "A PAC-Bayesian Approach to Spectrally-Normalized Margin Bounds for Neural
  Networks", 2018 (https://arxiv.org/abs/1707.09564), Thm. 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genlab.measures import MeasureData, register_measure
from genlab.measures.margins import margin_q5
from genlab.measures.norms import frobenius_norms, weight_ops
from genlab.measures.paths import folded_for_paths, path_sum
from genlab.measures.spectral import operator_frobenius_norm, operator_l21_rows, spectral_norm

VACUOUS = math.inf  # value of a margin-normalized measure when γ ≤ 0 (too many training points misclassified)


def _log_gamma_sq(model: nn.Module, data: MeasureData) -> float | None:
    """log γ_margin² (ε = 5 %), or None when γ ≤ 0."""
    gamma = margin_q5(model, data)
    return 2.0 * math.log(gamma) if gamma > 0 else None


def _over_margin(log_capacity: float, model: nn.Module, data: MeasureData) -> float:
    lg = _log_gamma_sq(model, data)
    return VACUOUS if lg is None else log_capacity - lg


@register_measure("log_l2_capacity")
def log_l2_capacity(model: nn.Module, data: MeasureData) -> float:
    """log[(1/γ²) ∏_i 4‖W_i‖_F²], 004 eq. 1 (BN folded). Nats."""
    return _over_margin(sum(math.log(4 * f * f) for f in frobenius_norms(weight_ops(model, data))), model, data)


def _folded_paths(model: nn.Module, data: MeasureData, what: str) -> tuple[nn.Module, torch.Tensor]:
    return folded_for_paths(model, data, what)


@register_measure("log_l1_path_capacity")
def log_l1_path_capacity(model: nn.Module, data: MeasureData) -> float:
    """log[(1/γ²) (Σ_paths |∏_i 2W_i|)²], 004 eq. 2 (BN folded). Nats."""
    net, x = _folded_paths(model, data, "log_l1_path_capacity")
    return _over_margin(2.0 * path_sum(net, x, 1.0, scale=lambda op: 2.0), model, data)


@register_measure("log_l2_path_capacity")
def log_l2_path_capacity(model: nn.Module, data: MeasureData) -> float:
    """log[(1/γ²) Σ_paths ∏_i 4 h_i W_i²], 004 eq. 3 (BN folded; h_i = output units of layer i). Nats."""
    net, x = _folded_paths(model, data, "log_l2_path_capacity")
    return _over_margin(path_sum(net, x, 2.0, scale=lambda op: 4.0 * op.units), model, data)


@register_measure("log_spectral_capacity")
def log_spectral_capacity(model: nn.Module, data: MeasureData) -> float:
    """log[(1/γ²) ∏_i h_i ‖W_i‖₂²], 004 eq. 4 (BN folded; operator norms at the traced input size). Nats."""
    ops = weight_ops(model, data)
    return _over_margin(sum(math.log(op.units * spectral_norm(op, data) ** 2) for op in ops), model, data)


def _x_norms(data: MeasureData) -> torch.Tensor:
    return torch.linalg.vector_norm(data.x_train.reshape(data.n_train, -1), dim=1)  # (n,) input ℓ2 norms


@register_measure("bartlett_spectral")
def bartlett_spectral(model: nn.Module, data: MeasureData) -> dict[str, float]:
    """Bartlett et al. 2017's spectral complexity R_A with its (2,1) term, reference matrices M_i = 0:
        R_A = ∏_i ‖A_i‖₂ · (Σ_i (‖A_iᵀ‖_{2,1} / ‖A_i‖₂)^{2/3})^{3/2}      (ReLU: ρ_i = 1)

    Returns:
      capacity: log(R_A² / γ²) (nats), comparable with the 004 measures;
      bound: log(‖X‖_F R_A ln(W) / (γ n)), the data-dependent term of Thm. 1.1 (W = widest layer's units).
      Both +inf when γ ≤ 0.
    """
    ops = weight_ops(model, data)
    spec = [spectral_norm(op, data) for op in ops]
    l21 = sum((operator_l21_rows(op) / s) ** (2.0 / 3.0) for op, s in zip(ops, spec))
    log_r = sum(math.log(s) for s in spec) + 1.5 * math.log(l21)
    gamma = margin_q5(model, data)
    if gamma <= 0:
        return {"capacity": VACUOUS, "bound": VACUOUS}
    width = max(max(math.prod(op.in_shape), op.units) for op in ops)
    log_x = 0.5 * math.log(float((_x_norms(data) ** 2).sum()))
    return {"capacity": 2 * log_r - 2 * math.log(gamma),
            "bound": log_x + log_r + math.log(math.log(width)) - math.log(gamma) - math.log(data.n_train)}


@register_measure("pacbayes_spectral")
def pacbayes_spectral(model: nn.Module, data: MeasureData) -> dict[str, float]:
    """Neyshabur et al. 2018 Thm. 1's spectral PAC-Bayes margin bound (reference weights 0):
        O( sqrt( B² d² h ln(dh) ∏_i ‖W_i‖₂² Σ_i ‖W_i‖_F²/‖W_i‖₂² / (γ² m) ) ),
    B = max_x ‖x‖₂, d layers, h the widest layer's units; Frobenius norms are those of the operators.

    Returns:
      capacity: log(∏‖W_i‖₂² Σ ‖W_i‖_F²/‖W_i‖₂² / γ²) (nats);
      bound: log of the square root above, the O-constant and the ln(dm/δ) term dropped.
      Both +inf when γ ≤ 0.
    """
    ops = weight_ops(model, data)
    spec = [spectral_norm(op, data) for op in ops]
    stable = sum(operator_frobenius_norm(op) ** 2 / s ** 2 for op, s in zip(ops, spec))
    lg = _log_gamma_sq(model, data)
    if lg is None:
        return {"capacity": VACUOUS, "bound": VACUOUS}
    capacity = 2 * sum(math.log(s) for s in spec) + math.log(stable) - lg
    d, h = len(ops), max(max(math.prod(op.in_shape), op.units) for op in ops)
    b = float(_x_norms(data).max())
    log_pre = 2 * math.log(b) + 2 * math.log(d) + math.log(h) + math.log(math.log(d * h))
    return {"capacity": capacity, "bound": 0.5 * (log_pre + capacity - math.log(data.n_train))}
