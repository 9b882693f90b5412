"""An example genlab plugin: importing this module registers one model, one measure and one learning rule.

genlab imports it the first time a registry is looked up, because the package's pyproject names it in the
`genlab.plugins` entry-point group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genlab.measures import register_measure
from genlab.models import register_model
from genlab.models.rules import LAYER_TYPES, register_rule


@register_model("example_tanh_net")
def example_tanh_net(in_shape: tuple[int, ...], num_outputs: int, *, width: int = 16) -> nn.Module:
    """Flatten → Linear(width) → tanh → Linear(num_outputs): a two-layer tanh net (an example plugin model)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), width), nn.Tanh(),
                         nn.Linear(width, num_outputs))


@register_measure("example_weight_count")
def example_weight_count(model: nn.Module, data) -> float:
    """The number of weights (not biases) in the Linear/Conv layers: Σ_k numel(W_k) (an example measure)."""
    return float(sum(m.weight.numel() for m in model.modules() if isinstance(m, LAYER_TYPES)))


@dataclass(frozen=True)
class FixedSign:
    name: str = "example_fixed_sign"

    def setup(self, layer: nn.Module, generator: torch.Generator) -> None:
        w = layer.weight.detach()
        layer.register_buffer("feedback_weight", torch.sign(w) * w.norm() / math.sqrt(w.numel()), persistent=False)

    def feedback(self, layer: nn.Module) -> torch.Tensor:
        return layer.feedback_weight


@register_rule("example_fixed_sign")
def example_fixed_sign() -> FixedSign:
    """Feedback through the signs of the *initial* weights, fixed, at their rms scale (an example rule)."""
    return FixedSign()
