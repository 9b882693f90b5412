"""Loss-landscape slices along filter-normalized random directions (Li, Xu, Taylor, Studer & Goldstein 2018).

A direction d is drawn N(0, 1) per weight, then scaled filter by filter to the weights' own norms:

    d_{l,f} ← d_{l,f} · ‖θ_{l,f}‖ / ‖d_{l,f}‖      (f: a row of a dense weight, an output filter of a conv)

so a step t·d changes every filter by t times its own size, whatever the scale of the layer (which makes slices of
differently scaled but equivalent networks comparable). One-dimensional parameters (biases, BatchNorm γ/β) get
d = 0 by default (`one_d = "zero"`, Li et al.'s `--xignore biasbn`, used for their figures); `one_d = "filter"`
treats each entry as its own filter, d_i ← sign(d_i)·|θ_i| (what loss-landscapes' `filter_normalize_` does: its
whole-vector scaling of a 1-D parameter is overwritten by its per-entry loop).

The slice is L(θ + t·d) on a fixed training subset, model in eval mode (BatchNorm's running statistics), over a
grid t ∈ [−span, span]; the plane L(θ + s·d₀ + t·d₁) over the same grid squared. Directions are drawn in float64
on the CPU from `seed` (direction k from seed + k), so float32 and float64 runs see the same directions.

Summaries: `rise`, the mean over directions and both signs of L(θ ± r·d) − L(θ) at the stated filter-normalized
radius r (a sharpness of the slice, loss units), and `rise_max`, the largest per-direction mean.

References:
  Li, Xu, Taylor, Studer & Goldstein, "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018
  (https://arxiv.org/abs/1712.09913), §4 (filter normalization).
  loss-landscapes 3.0.6 (https://github.com/marcellodebernardi/loss-landscapes): the reference in the tests.
"""

from __future__ import annotations

import copy
from typing import Literal

import numpy as np
import torch
from torch import nn

from genlab.measures import MeasureData, register_measure
from genlab.measures.objective import Params, params_of, rows_per_pass, train_subset


def filter_normalize(direction: Params, weights: Params, one_d: Literal["zero", "filter"] = "zero") -> Params:
    """Each filter (first-axis slice) of d scaled to the norm of θ's; 1-D parameters zeroed or entry by entry."""
    out = {}
    for k, d in direction.items():
        w = weights[k]
        if d.dim() <= 1:
            out[k] = torch.zeros_like(d) if one_d == "zero" else d.sign() * w.abs()  # each entry its own filter
            continue
        dn = d.flatten(1).norm(dim=1).reshape(-1, *([1] * (d.dim() - 1)))
        wn = w.flatten(1).norm(dim=1).reshape(-1, *([1] * (d.dim() - 1)))
        out[k] = d * (wn / dn)
    return out


def random_direction(weights: Params, seed: int, one_d: Literal["zero", "filter"] = "zero") -> Params:
    """A filter-normalized Gaussian direction, drawn in float64 on the CPU from `seed`, cast to θ's dtype."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    raw = {k: torch.randn(v.shape, generator=gen, dtype=torch.float64).to(v) for k, v in weights.items()}
    return filter_normalize(raw, weights, one_d)


@torch.no_grad()
def _losses_at(model: nn.Module, data: MeasureData, x: torch.Tensor, y: torch.Tensor,
               points: list[list[tuple[float, Params]]]) -> list[float]:
    """L(θ + Σ c_k·d_k) for each point [(c_k, d_k), …]: one copy of the model, its weights overwritten in place
    per point (cheaper than a functional call per batch), eval mode; the mean loss summed in float64."""
    w = params_of(model)
    net = copy.deepcopy(model).eval()
    mine = dict(net.named_parameters())
    out = []
    for combo in points:
        for k, p in mine.items():
            if k in w:
                p.copy_(w[k])
                for c, d in combo:
                    p.add_(d[k], alpha=c)
        total, rows = 0.0, rows_per_pass(model, x)
        for i in range(0, len(x), rows):
            total += float(data.loss.per_sample(net(x[i:i + rows]), y[i:i + rows]).double().sum())
        out.append(total / len(x))
    return out


def slice_1d(model: nn.Module, data: MeasureData, x: torch.Tensor, y: torch.Tensor, d: Params,
             ts: np.ndarray) -> np.ndarray:
    """L(θ + t·d) for each t in `ts` (loss units, mean over the rows x, y)."""
    return np.array(_losses_at(model, data, x, y, [[(float(t), d)] for t in ts]))


def slice_2d(model: nn.Module, data: MeasureData, x: torch.Tensor, y: torch.Tensor, d0: Params, d1: Params,
             ts: np.ndarray) -> np.ndarray:
    """(len(ts), len(ts)) L(θ + s·d₀ + t·d₁), row s, column t."""
    flat = _losses_at(model, data, x, y, [[(float(s), d0), (float(t), d1)] for s in ts for t in ts])
    return np.array(flat).reshape(len(ts), len(ts))


def grid(span: float, steps: int) -> np.ndarray:
    """The slice's t values: `steps` points evenly over [−span, span] (0 among them when steps is odd)."""
    return np.linspace(-span, span, steps)


@register_measure("landscape")
def landscape(model: nn.Module, data: MeasureData, *, radius: float = 0.25, directions: int = 4, span: float = 1.0,
              steps: int = 11, plane_steps: int = 0, one_d: Literal["zero", "filter"] = "zero",
              max_samples: int | None = 1024, seed: int = 0) -> dict[str, float]:
    """1-D (and optionally 2-D) filter-normalized loss slices of the training loss, with sharpness-like summaries.

    Definition (Li et al. 2018 §4; module docstring): directions d_k filter-normalized, L on the first
    `max_samples` training rows. Options: `radius` r of the summaries, `directions` drawn, the grid's `span` and
    `steps`, `plane_steps` (> 0: also the 2-D grid over d₀, d₁), `one_d` (biases/BN: "zero" or "filter").

    Returns:
      loss: L(θ); rise: mean_k ½[L(θ + r·d_k) + L(θ − r·d_k)] − L(θ); rise_max: max_k of the same (loss units);
      curve.<j>: mean_k L(θ + t_j·d_k) at t_j = grid(span, steps)[j] (kept for figures);
      plane.<i>.<j>: L(θ + s_i·d₀ + t_j·d₁) when plane_steps > 0.
    """
    if directions < 1 or steps < 2 or radius <= 0 or span <= 0 or plane_steps < 0:
        raise ValueError(f"landscape needs directions ≥ 1, steps ≥ 2, radius > 0, span > 0, plane_steps ≥ 0; got "
                         f"directions={directions}, steps={steps}, radius={radius}, span={span}, "
                         f"plane_steps={plane_steps}")
    x, y = train_subset(data, max_samples)
    w = params_of(model)
    dirs = [random_direction(w, seed + k, one_d) for k in range(directions)]
    base = float(slice_1d(model, data, x, y, dirs[0], np.array([0.0]))[0])
    ts = grid(span, steps)
    # each direction's distinct t once; θ + 0·d is θ exactly, so t = 0 (on every odd grid) is `base`
    wanted = sorted({-radius, radius, *ts.tolist()} - {0.0})
    at = [{**dict(zip(wanted, slice_1d(model, data, x, y, d, np.array(wanted)).tolist())), 0.0: base} for d in dirs]
    rises = [0.5 * (a[-radius] + a[radius]) - base for a in at]
    curves = np.array([[a[t] for t in ts.tolist()] for a in at]).mean(axis=0)
    out = {"loss": base, "rise": float(np.mean(rises)), "rise_max": float(np.max(rises))}
    out.update({f"curve.{j}": float(v) for j, v in enumerate(curves)})
    if plane_steps:
        d1 = dirs[1] if directions > 1 else random_direction(w, seed + 1, one_d)
        plane = slice_2d(model, data, x, y, dirs[0], d1, grid(span, plane_steps))
        out.update({f"plane.{i}.{j}": float(v) for (i, j), v in np.ndenumerate(plane)})
    return out
