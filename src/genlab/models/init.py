"""Weight initialization schemes, registered by name, applied to every Linear and Conv layer.

An init function fills one tensor in place from a torch.Generator: `fn(tensor, gen, *, options)`.
`initialize(model, ...)` walks the layers by type (never by parameter name), inits weights with the scheme,
biases as asked (`same` scheme, `zero`, or PyTorch's `default`), then multiplies every parameter by the
post-init `scale` (000 ch. 4's "weight scale factor"). BatchNorm keeps γ=1, β=0.
"""

from __future__ import annotations

import math
from typing import Annotated, Callable

from pydantic import Field

import torch
from torch import nn

from genlab.registry import Registry

InitFn = Callable[..., None]
_INITS: Registry[InitFn] = Registry("init")
register_init = _INITS.register
get_init = _INITS.get
list_inits = _INITS.names

LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def fans(t: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight (out, in, *kernel); a 1-D tensor (a bias) counts as (1, 1)."""
    if t.dim() < 2:
        return 1, 1
    receptive = math.prod(t.shape[2:])
    return t.shape[1] * receptive, t.shape[0] * receptive


@register_init("default")
def default(t: torch.Tensor, gen: torch.Generator) -> None:
    """Leave PyTorch's own initialization (Kaiming-uniform with a=√5) in place."""


@register_init("normal")
def normal(t: torch.Tensor, gen: torch.Generator, *, std: Annotated[float, Field(ge=0)] = 0.01,
           mean: float = 0.0) -> None:
    """w ~ N(mean, std²); std is a standard deviation (000 ch. 3-4, 002 fig. 6)."""
    with torch.no_grad():
        t.normal_(mean, std, generator=gen)


@register_init("uniform")
def uniform(t: torch.Tensor, gen: torch.Generator, *, std: Annotated[float, Field(ge=0)] = 0.01) -> None:
    """w ~ U[−√3·std, √3·std], the uniform law with standard deviation `std` (002 fig. 6)."""
    a = math.sqrt(3.0) * std
    with torch.no_grad():
        t.uniform_(-a, a, generator=gen)


@register_init("constant")
def constant(t: torch.Tensor, gen: torch.Generator, *, value: float = 0.0) -> None:
    """w = value everywhere (002 fig. 6: 0 and 1 break symmetry-breaking)."""
    with torch.no_grad():
        t.fill_(value)


def _scaled_normal(t: torch.Tensor, gen: torch.Generator, var: float) -> None:
    with torch.no_grad():
        t.normal_(0.0, math.sqrt(var), generator=gen)


def _scaled_uniform(t: torch.Tensor, gen: torch.Generator, var: float) -> None:
    a = math.sqrt(3.0 * var)  # U[-a, a] has variance a²/3
    with torch.no_grad():
        t.uniform_(-a, a, generator=gen)


@register_init("lecun_normal")
def lecun_normal(t: torch.Tensor, gen: torch.Generator) -> None:
    """Var(w) = 1/fan_in (LeCun et al. 1998, "Efficient BackProp")."""
    _scaled_normal(t, gen, 1.0 / fans(t)[0])


@register_init("lecun_uniform")
def lecun_uniform(t: torch.Tensor, gen: torch.Generator) -> None:
    """Uniform with Var(w) = 1/fan_in."""
    _scaled_uniform(t, gen, 1.0 / fans(t)[0])


@register_init("xavier_normal")
def xavier_normal(t: torch.Tensor, gen: torch.Generator) -> None:
    """Var(w) = 2/(fan_in + fan_out) (Glorot & Bengio 2010)."""
    fi, fo = fans(t)
    _scaled_normal(t, gen, 2.0 / (fi + fo))


@register_init("xavier_uniform")
def xavier_uniform(t: torch.Tensor, gen: torch.Generator) -> None:
    """U[−√(6/(fan_in+fan_out)), +√(6/(fan_in+fan_out))] (Glorot & Bengio 2010)."""
    fi, fo = fans(t)
    _scaled_uniform(t, gen, 2.0 / (fi + fo))


@register_init("he_normal")
def he_normal(t: torch.Tensor, gen: torch.Generator) -> None:
    """Var(w) = 2/fan_in (He et al. 2015, "Delving Deep into Rectifiers")."""
    _scaled_normal(t, gen, 2.0 / fans(t)[0])


@register_init("he_uniform")
def he_uniform(t: torch.Tensor, gen: torch.Generator) -> None:
    """Uniform with Var(w) = 2/fan_in."""
    _scaled_uniform(t, gen, 2.0 / fans(t)[0])


BIAS_MODES = ("same", "zero", "default")


def initialize(model: nn.Module, scheme: str, gen: torch.Generator, *, options: dict | None = None,
               bias: str = "zero", scale: float = 1.0) -> nn.Module:
    """Initialize `model` in place and return it.

    Args:
      scheme: a registered init name, applied to the weight of every Linear/Conv layer.
      options: the scheme's options (e.g. {"std": 0.1}).
      bias: "same" (the scheme, e.g. 000 draws biases from the same normal), "zero", or "default".
      scale: every parameter (weights, biases, BN) is multiplied by this after init.
    """
    if bias not in BIAS_MODES:
        raise ValueError(f"init.bias must be one of {BIAS_MODES}, got {bias!r}")
    fn, options = get_init(scheme), options or {}
    for m in model.modules():
        if not isinstance(m, LAYERS):
            continue
        fn(m.weight, gen, **options)
        if m.bias is not None and bias == "same":
            fn(m.bias, gen, **options)
        elif m.bias is not None and bias == "zero":
            nn.init.zeros_(m.bias)
    if scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(scale)
    return model
