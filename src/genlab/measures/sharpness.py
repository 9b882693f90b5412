"""Sharpness of Keskar et al. 2017 as 004 eq. 5 writes it, maximized by projected gradient ascent:

    ζ_α(w) = ( max_{|ν_i| ≤ α(|w_i| + 1)} L̂(w + ν) − L̂(w) ) / (1 + L̂(w))

L̂ is the mean training loss (or a fixed subset, `max_samples`), over every trainable parameter. The box is
searched by signed-gradient ascent (the steepest ascent for a box: each step moves every coordinate by
`step`·(box half-width) toward higher loss, then clips back into the box), from ν = 0 and from `restarts − 1`
uniform random points of the box; the best loss found is reported. Signed steps reach the box's corners, where a
convex loss attains its maximum over a box.

A coordinate whose gradient is exactly 0 moves by a seeded random sign rather than sign(0) = 0: otherwise, at an
exact minimum (every gradient 0 at ν = 0) the search would never leave ν = 0 and return ζ = 0 where the closed
form is positive. Starting at a random point instead would fix that too, but on a loss whose maximum over the
box is at the corner the gradient at ν = 0 points to, a random start can climb to a lower corner; breaking ties
keeps every other search exactly as from ν = 0. Random draws are made in float64 (the same in f32 and f64).

Speed: once ν stops changing (every coordinate pinned at a corner whose gradient sign holds) the later steps
would repeat the same point, so the search ends there with the same result; the final pass evaluates without a
gradient; and within one compute call a search on the same weights, rows and options is run once (at n ≤ 1024
`sharpness` and `sharpness_004` search the same rows).

The ascent is a pair of pure functions (`BoxAscent.init`, `BoxAscent.update`) with explicit state, as optax's
GradientTransformation.

References:
  Keskar, Mudigere, Nocedal, Smelyanskiy & Tang, "On Large-Batch Training for Deep Learning: Generalization
  Gap and Sharp Minima", 2017 (https://arxiv.org/abs/1609.04836), Metric 2.1.
  Neyshabur et al. 2017 (https://arxiv.org/abs/1706.08947) §2.2 (004 eq. 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

import torch
from torch import nn

from genlab.measures import MeasureData, cached, digest, register_measure
from genlab.measures.objective import Params, loss_fn, params_of, train_subset, value_and_grad, value_of


@dataclass(frozen=True)
class SharpnessConfig:
    alpha: float = 5e-4  # box half-width per weight, relative to |w_i| + 1 (Keskar et al. use 1e-3 and 5e-4)
    iterations: int = 20  # ascent steps per start
    step: float = 0.25  # each step moves a coordinate by this fraction of its box half-width
    restarts: int = 1  # starts: ν = 0 first, then uniform random points in the box
    max_samples: int | None = 2048  # L̂ over this fixed prefix of the training set (None: all of it)
    seed: int = 0  # for the random restarts


class AscentState(NamedTuple):
    nu: Params  # current perturbation ν, inside the box
    best_loss: float  # best L̂(w + ν) found so far
    best_nu: Params


class BoxAscent(NamedTuple):
    init: Callable[[Params], AscentState]
    update: Callable[[Params, AscentState, float], AscentState]


def box_ascent(radius: Params, step: float) -> BoxAscent:
    """Signed-gradient ascent projected on the box |ν_i| ≤ radius_i.

    Args:
      radius: the box half-widths, one tensor per parameter.
      step: the move per step, as a fraction of the half-width.

    Returns:
      init(ν₀) → state; update(d, state, L̂(w + ν)) → state, with d the ±1 direction of ∇L̂(w + ν) (`signs`);
      it records the best point seen and steps ν by step·radius·d, clipped to the box.
    """
    def init(nu: Params) -> AscentState:
        return AscentState(nu, -math.inf, nu)

    def update(direction: Params, state: AscentState, loss: float) -> AscentState:
        best = record(state, loss)
        nu = {k: torch.clamp(v + step * radius[k] * direction[k], -radius[k], radius[k])
              for k, v in state.nu.items()}
        return AscentState(nu, best.best_loss, best.best_nu)

    return BoxAscent(init, update)


def record(state: AscentState, loss: float) -> AscentState:
    """The state with L̂(w + ν) = loss noted as the best if it is."""
    return state._replace(best_loss=loss, best_nu=state.nu) if loss > state.best_loss else state


def signs(grads: Params, gen: torch.Generator) -> tuple[Params, bool]:
    """(sign(g) per coordinate with a seeded random ±1 where g is exactly 0, whether any coin was drawn).
    Coins are drawn as integers, so the same in any dtype."""
    out, drew = {}, False
    for k, g in grads.items():
        s = g.sign()
        zero = s == 0
        if bool(zero.any()):
            coin = (torch.randint(0, 2, g.shape, generator=gen) * 2 - 1).to(s)
            s, drew = torch.where(zero, coin, s), True
        out[k] = s
    return out, drew


def sharpness_search(model: nn.Module, data: MeasureData, cfg: SharpnessConfig) -> dict[str, float]:
    """ζ_α and how the search went (see `sharpness`), computed once per compute call for these weights, rows
    and options."""
    x, y = train_subset(data, cfg.max_samples)
    key = ("sharpness", model, replace(cfg, max_samples=None), digest(x), digest(y))
    return cached(data, key, lambda: _search(model, data, x, y, cfg))


def _search(model: nn.Module, data: MeasureData, x: torch.Tensor, y: torch.Tensor, cfg: SharpnessConfig
            ) -> dict[str, float]:
    """Run the box ascent from each start on the rows (x, y)."""
    w = params_of(model)
    base = float(loss_fn(model, data, x, y)(w))
    radius = {k: cfg.alpha * (v.abs() + 1) for k, v in w.items()}
    ascent = box_ascent(radius, cfg.step)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    ties = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
    best, gain = base, 0.0
    for r in range(cfg.restarts):
        state = ascent.init({k: _uniform_in(radius[k], gen) if r > 0 else torch.zeros_like(v)
                             for k, v in w.items()})
        prev = state.best_loss
        for _ in range(cfg.iterations):
            value, grads = value_and_grad(model, data, x, y, {k: w[k] + state.nu[k] for k in w})  # ∇_ν = ∇_w
            prev = state.best_loss
            direction, drew = signs(grads, ties)
            new = ascent.update(direction, state, value)
            if not drew and all(torch.equal(new.nu[k], state.nu[k]) for k in w):  # fixed: later steps repeat it
                state, prev = new, new.best_loss
                break
            state = new
        else:  # the last pass only evaluates the final point
            prev = state.best_loss
            state = record(state, value_of(model, data, x, y, {k: w[k] + state.nu[k] for k in w}))
        if state.best_loss > best:  # report how the start that found the best point ended
            best, gain = state.best_loss, state.best_loss - prev
    return {"zeta": (best - base) / (1 + base), "max_loss": best, "loss": base, "last_step_gain": gain}


def _uniform_in(radius: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A uniform random point of the box [−radius, radius], drawn in float64 and cast (dtype-free)."""
    u = torch.rand(radius.shape, generator=gen, dtype=torch.float64).to(radius)
    return (2 * u - 1) * radius


@register_measure("sharpness")
def sharpness(model: nn.Module, data: MeasureData, *, cfg: SharpnessConfig = SharpnessConfig()) -> dict[str, float]:
    """ζ_α of Keskar et al. 2017 (004 eq. 5), α = 5e-4, L̂ on the first 2048 training points.

    Returns:
      zeta: ζ_α, dimensionless (a relative loss increase);
      max_loss: the best L̂(w + ν) found, loss units; loss: L̂(w);
      last_step_gain: how much the last step of the start that found max_loss raised it (0: converged).

    Examples:
      >>> sharpness(model, data, cfg=SharpnessConfig(alpha=1e-3, iterations=50, restarts=3))["zeta"]
    """
    return sharpness_search(model, data, cfg)
