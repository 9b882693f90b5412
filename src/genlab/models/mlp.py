"""Fully connected models: `linear` (000 ch. 3, no hidden layer) and `mlp` (004's MNIST net and friends)."""

from __future__ import annotations

import math

from torch import nn

from genlab.models import register_model
from genlab.models.dropout import Dropout

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "identity": nn.Identity}


def _activation(name: str) -> type[nn.Module]:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


@register_model("linear")
def linear(in_shape: tuple[int, ...], num_outputs: int, *, bias: bool = True) -> nn.Module:
    """f(x) = W x + b on the flattened input: (B, *in_shape) → (B, num_outputs)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), num_outputs, bias=bias))


@register_model("mlp")
def mlp(in_shape: tuple[int, ...], num_outputs: int, *, widths: list[int] = [100], activation: str = "relu",
        bias: bool = True) -> nn.Module:
    """Flatten, then Linear→act for each hidden width, then Linear to the outputs.

    widths=[h] is the 2-layer net of 004 (h hidden units); bias=False gives the positively homogeneous nets
    that norm-based measures assume.
    """
    act = _activation(activation)
    if any(w < 1 for w in widths):
        raise ValueError(f"mlp: every width must be >= 1, got {widths}")
    dims = [math.prod(in_shape), *widths]
    layers: list[nn.Module] = [nn.Flatten()]
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(d_in, d_out, bias=bias), act()]
    layers.append(nn.Linear(dims[-1], num_outputs, bias=bias))
    return nn.Sequential(*layers)


@register_model("mlp_uniform")
def mlp_uniform(in_shape: tuple[int, ...], num_outputs: int, *, width: int = 100, depth: int = 1,
                dropout: float = 0.0, activation: str = "relu", bias: bool = True) -> nn.Module:
    """An MLP of `depth` hidden layers of `width` units, each Linear→act→Dropout(p=`dropout`).

    Width, depth and dropout as separate options make them separate sweep axes, as in Jiang et al. 2020's
    hyperparameter grid (`genlab.analysis` reads each varying option as one axis). dropout=0 adds no module.
    References: Jiang et al., "Fantastic generalization measures and where to find them", ICLR 2020.
    """
    if width < 1 or depth < 0:
        raise ValueError(f"mlp_uniform: width must be >= 1 and depth >= 0, got width={width}, depth={depth}")
    if not 0 <= dropout < 1:
        raise ValueError(f"mlp_uniform: dropout must be in [0, 1), got {dropout}")
    act = _activation(activation)
    layers: list[nn.Module] = [nn.Flatten()]
    d_in = math.prod(in_shape)
    for _ in range(depth):
        layers += [nn.Linear(d_in, width, bias=bias), act()] + ([Dropout(dropout)] if dropout > 0 else [])
        d_in = width
    layers.append(nn.Linear(d_in, num_outputs, bias=bias))
    return nn.Sequential(*layers)
