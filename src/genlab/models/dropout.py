"""Dropout whose masks come from the run's own generator, so an ensemble member can replay them exactly.

    train:  y = x · keep / (1 − p),  keep = rand(x.shape, generator) ≥ p   (inverted dropout, as nn.Dropout)
    eval:   y = x

The keep mask is drawn as `torch.rand(shape, generator=gen) >= p` (one uniform per element, kept with
probability 1 − p), not with `bernoulli_`: `rand` takes the generator and the shape explicitly, so the
ensemble trainer draws member k's masks with the very calls its solo run makes (`multiplier`), outside any
vmap, and the generator ends in the same state. The trainer attaches the run's "dropout" stream
(`attach_dropout(model, gens["dropout"])`); a model used outside the trainer draws from torch's global RNG.
p = 0 draws nothing (the identity), so a dropout-free run's generators are as if the layer were absent.

Under the ensemble's vmap path the stacked trainer sets `replay` (a member's (B, ...) multiplier) for the
duration of one forward; a set `replay` is used as the multiplier instead of a fresh draw.
"""

from __future__ import annotations

import torch
from torch import nn


def multiplier(shape: tuple[int, ...], p: float, gen: torch.Generator | None, device: torch.device
               ) -> torch.Tensor:
    """(shape) float32: 1/(1 − p) where a unit is kept, 0 where dropped; one `rand` draw from `gen`
    (torch's global RNG when None). The one place masks are drawn: solo forward and ensemble replay."""
    keep = torch.rand(shape, generator=gen, device=device) >= p
    return keep.to(torch.float32) * (1.0 / (1.0 - p))


class Dropout(nn.Module):
    """Inverted dropout with drop probability `p` in [0, 1) and an attachable generator (module docstring)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p is a drop probability in [0, 1), got {p}")
        self.p = float(p)
        self.gen: torch.Generator | None = None  # attach_dropout sets it; None: the global RNG
        self.replay: torch.Tensor | None = None  # the stacked trainer's multiplier for one forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.replay is not None:
            return x * self.replay.to(x.dtype)
        if not self.training or self.p == 0.0:
            return x
        return x * multiplier(tuple(x.shape), self.p, self.gen, x.device).to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def dropout_layers(model: nn.Module) -> list[tuple[str, Dropout]]:
    """(name, module) of every genlab Dropout in `model`, in `modules()` order (the forward's order for the
    Sequential models registered here, so the order masks are drawn in)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, Dropout)]


def attach_dropout(model: nn.Module, gen: torch.Generator | None) -> nn.Module:
    """Make every Dropout in `model` draw from `gen` (in place; returns `model`). None: the global RNG."""
    for _, m in dropout_layers(model):
        m.gen = gen
    return model
