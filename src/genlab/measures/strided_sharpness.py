"""004's sharpness: the registered `sharpness` (Keskar et al.'s ζ_α, 004 eq. 5) on a training subset that
keeps the confusion samples.

`sharpness` measures L̂ on the first `max_samples` training rows. The data sets put a confusion set (004
§3.2: extra samples with random labels) after the correctly labelled subset, so a prefix can miss it whole
— and with it the memorized points whose loss is the sharpest. `sharpness_004` measures L̂ on an evenly
strided subset of at most `SHARPNESS_SAMPLES` rows instead, which holds the confusion samples in proportion
and is the whole set when it is small.

Neyshabur et al. 2017 (appendix) maximize with 2,000 steps of SGD ascent (mini-batch 64, step 0.01, momentum
0.9) from the minimum, α = 5·10⁻⁴; here the maximization is the registered full-batch signed-gradient ascent
projected on the same box (`genlab.measures.sharpness`, 20 steps), which reaches the box's corners.

References:
  Neyshabur, Bhojanapalli, McAllester & Srebro, "Exploring Generalization in Deep Learning", 2017
  (https://arxiv.org/abs/1706.08947), §2.2, §3 and appendix A.
  Keskar, Mudigere, Nocedal, Smelyanskiy & Tang, "On Large-Batch Training for Deep Learning", 2017
  (https://arxiv.org/abs/1609.04836), Metric 2.1.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from genlab.measures import MeasureData, register_measure
from genlab.measures.sharpness import SharpnessConfig, sharpness

ALPHA_004 = 5e-4  # box half-width per weight, relative to |w_i| + 1 (Neyshabur et al. 2017, appendix A)
SHARPNESS_SAMPLES = 1024  # rows L̂ is measured on: 21 forward+backward passes each, the measure's cost


def strided_rows(n: int, k: int) -> torch.Tensor:
    """(min(n, k),) int64 row indices spread evenly over range(n), first and last row included."""
    if n <= k:
        return torch.arange(n)
    return torch.linspace(0, n - 1, k, dtype=torch.float64).round().long()  # distinct: step (n-1)/(k-1) > 1


def strided_subset(data: MeasureData, k: int = SHARPNESS_SAMPLES) -> MeasureData:
    """`data` with its training split cut to `strided_rows(n_train, k)` (test split and the rest unchanged)."""
    idx = strided_rows(data.n_train, k).to(data.x_train.device)
    return replace(data, x_train=data.x_train[idx], y_train=data.y_train[idx])


@register_measure("sharpness_004")
def sharpness_004(model: nn.Module, data: MeasureData) -> dict[str, float]:
    """ζ_α (004 eq. 5), α = 5·10⁻⁴, L̂ on ≤ 1,024 evenly strided training rows (confusion samples included).

    Returns:
      zeta: (max L̂(w + ν) − L̂(w)) / (1 + L̂(w)) over |ν_i| ≤ α(|w_i| + 1), dimensionless;
      max_loss, loss: L̂ at the worst point found and at w (nats for cross-entropy);
      last_step_gain: the last ascent step's gain (0: the search converged).

    Examples:
      >>> sharpness_004(model, data)["zeta"]
    """
    return sharpness(model, strided_subset(data), cfg=SharpnessConfig(alpha=ALPHA_004, max_samples=None))
