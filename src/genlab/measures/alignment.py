"""How well a learning rule's updates follow the true gradient (genlab.models.rules).

`grad_alignment_deg` needs the rule the model was trained with, so it is the one measure that sees the
model with its rule in place (`SEES_RULE`); every other measure gets a copy with the rule stripped.
"""

from __future__ import annotations

import math

from torch import nn

from genlab.measures import MeasureData, register_measure
from genlab.models.rules import alignment_angles

SEES_RULE = "sees_rule"  # the attribute `compute` reads: give this measure the model with its learning rule


@register_measure("grad_alignment_deg")
def grad_alignment_deg(model: nn.Module, data: MeasureData, *, max_samples: int = 1000) -> dict[str, float]:
    """The angle (degrees) between the rule's weight update and the true gradient, per Linear/Conv layer.

    For layer k: ∠(ΔW_k^rule, ∇_{W_k} L̂), both the gradient of the mean training loss over the first
    `max_samples` training rows at the current weights, in eval mode (BatchNorm on running statistics).
    Keys `layer<k>` (k in `rule_layers` order); `first`, the input layer, where the error has crossed every
    feedback matrix; `mean` over the layers below the last one (the last layer's update is the loss's own
    gradient under every rule, 0°; NaN for a one-layer model). 0 for backprop; under feedback alignment the
    angles fall below 90° as W comes to align with B (Lillicrap et al. 2016, Nat. Commun., Fig. 2).
    """
    x, y = data.x_train[:max_samples], data.y_train[:max_samples]
    angles = alignment_angles(model, (x, y), data.loss)
    below = [a for k, a in angles.items() if k < len(angles) - 1 and math.isfinite(a)]
    return {**{f"layer{k}": a for k, a in angles.items()}, "first": angles.get(0, math.nan),
            "mean": sum(below) / len(below) if below else math.nan}


setattr(grad_alignment_deg, SEES_RULE, True)
