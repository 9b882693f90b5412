"""Output margins f_y(x) − max_{j≠y} f_j(x) and the γ_margin order statistic of Neyshabur et al. 2017.

γ_margin(ε) is "the lowest γ such that only ⌈εm⌉ of the m training points have a margin lower than γ"
(004 §2.1): with margins sorted m_(1) ≤ … ≤ m_(m) and k = ⌈εm⌉, exactly k points (ties aside) lie below any
γ in (m_(k), m_(k+1)], whose infimum is m_(k), the k-th smallest margin. Neyshabur et al. 2017 use ε = 5 %,
Jiang et al. 2020 10 % (their `kthvalue(margins, m // 10)`, which is the same order statistic when 10 | m).

References:
  Neyshabur, Bhojanapalli, McAllester & Srebro, "Exploring Generalization in Deep Learning", 2017
  (https://arxiv.org/abs/1706.08947), §2.1.
  Bartlett, Foster & Telgarsky, "Spectrally-normalized margin bounds for neural networks", 2017
  (https://arxiv.org/abs/1706.08498), eq. 1.1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genlab.measures import MeasureData, cached, register_measure

EVAL_BATCH = 1024  # rows per forward pass when collecting outputs


@torch.no_grad()
def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(n, k) the model's outputs on x, in eval mode, batched."""
    was = model.training
    model.eval()
    out = torch.cat([model(x[i:i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)])
    model.train(was)
    return out


def outputs_of(model: nn.Module, x: torch.Tensor, data: MeasureData) -> torch.Tensor:
    """`outputs(model, x)`, computed once per compute call for this (model, x) (the shared forward pass).

    The model must not change during the call: compute()'s copy, or a derived net built once (normalized).
    """
    return cached(data, ("outputs", model, x), lambda: outputs(model, x))


def margins(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(n,) f_y − max_{j≠y} f_j per sample, in logit units (negative when misclassified).

    Args:
      logits: (n, k) outputs, k ≥ 2.
      y: (n,) int64 labels.
    """
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"margins need (n, k ≥ 2) class outputs, got shape {tuple(logits.shape)}; "
                         "use a multi-class loss such as cross_entropy")
    true = logits.gather(1, y[:, None])[:, 0]  # (n,)
    others = logits.scatter(1, y[:, None], float("-inf"))
    return true - others.max(dim=1).values


def gamma_margin(m: torch.Tensor, eps: float) -> float:
    """The k-th smallest margin, k = max(1, ⌈ε·n⌉): Neyshabur et al. 2017's γ_margin. Logit units."""
    if not 0 <= eps < 1:
        raise ValueError(f"margin fraction eps must be in [0, 1), got {eps}")
    k = max(1, math.ceil(eps * len(m) - 1e-9))  # the 1e-9 keeps ⌈0.05·100⌉ = 5 despite float rounding
    return float(torch.kthvalue(m, k).values)


def train_margin(model: nn.Module, data: MeasureData, eps: float) -> float:
    """γ_margin(ε) over the training set of `data`."""
    if data.num_classes is None:
        raise ValueError("margins need a classification data set (num_classes is None)")
    return gamma_margin(margins(outputs_of(model, data.x_train, data), data.y_train), eps)


@register_measure("margin_q5")
def margin_q5(model: nn.Module, data: MeasureData) -> float:
    """γ_margin with ε = 5 % (Neyshabur et al. 2017): the ⌈0.05 m⌉-th smallest training margin, logit units."""
    return train_margin(model, data, 0.05)


@register_measure("margin_q10")
def margin_q10(model: nn.Module, data: MeasureData) -> float:
    """γ_margin with ε = 10 % (Jiang et al. 2020, §C.1): the ⌈0.1 m⌉-th smallest training margin."""
    return train_margin(model, data, 0.10)


@register_measure("margin_min")
def margin_min(model: nn.Module, data: MeasureData) -> float:
    """min_i margin_i over the training set (the hard margin; negative if any point is misclassified)."""
    if data.num_classes is None:
        raise ValueError("margins need a classification data set (num_classes is None)")
    return float(margins(outputs_of(model, data.x_train, data), data.y_train).min())
