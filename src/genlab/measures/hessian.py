"""The Hessian of the training loss with respect to all trainable parameters, through Hessian-vector products.

H v = ∇_w (∇_w L̂(w) · v) by double backpropagation, batch by batch (L̂ is the mean training loss, or the mean
over a fixed prefix of `max_samples` points), so H is never formed.

* Top eigenvalue: power iteration on v ↦ H v from a seeded Gaussian start, until the Rayleigh quotient vᵀHv
  changes by less than `rtol` relative. It converges to the eigenvalue of largest magnitude (reported with its
  sign; at a minimum H is positive semi-definite and that is λ_max).
* Trace: Hutchinson's estimator tr H = E[zᵀ H z] with Rademacher z (exact for a diagonal H), the mean over
  `trace_samples` draws, with its standard error.

References:
  Yao, Gholami, Keutzer & Mahoney, "PyHessian: Neural Networks Through the Lens of the Hessian", 2020
  (https://arxiv.org/abs/1912.07145).
  Hutchinson, "A stochastic estimator of the trace of the influence matrix", 1989.
  Keskar et al. 2017 (https://arxiv.org/abs/1609.04836) on curvature and sharp minima.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from genlab.measures import MeasureData, register_measure
from genlab.measures.objective import Params, loss_fn, params_of, train_subset


HVP_BATCH = 256  # points per double-backward pass: memory is one batch's graph, whatever max_samples


@dataclass(frozen=True)
class HessianConfig:
    iterations: int = 50  # power-iteration cap (each step is one Hessian-vector product, ~2 backward passes)
    rtol: float = 1e-3  # stop when the Rayleigh quotient moves less than this, relative
    trace_samples: int = 10  # Rademacher draws for Hutchinson's estimator (trace_stderr reports the spread)
    max_samples: int | None = 1024  # L̂ on this fixed prefix of the training set (None: all of it)
    seed: int = 0  # start vector and Rademacher draws


def hvp_fn(model: nn.Module, data: MeasureData, max_samples: int | None) -> tuple[Callable[[Params], Params], Params]:
    """(v ↦ H v at the model's weights, the weights). Each product is summed over batches of `HVP_BATCH`
    points (forward, backward with graph, backward again), so memory is that of one batch."""
    w = params_of(model)
    x, y = train_subset(data, max_samples)

    def hvp(v: Params) -> Params:
        out = {k: torch.zeros_like(t) for k, t in w.items()}
        wg = {k: t.detach().requires_grad_(True) for k, t in w.items()}
        for i in range(0, len(x), HVP_BATCH):
            xb, yb = x[i:i + HVP_BATCH], y[i:i + HVP_BATCH]
            with torch.enable_grad():
                value = loss_fn(model, data, xb, yb)(wg) * (len(xb) / len(x))
                grads = torch.autograd.grad(value, list(wg.values()), create_graph=True)
                dot = sum((g * v[k]).sum() for g, k in zip(grads, wg))
                hv = torch.autograd.grad(dot, list(wg.values()))
            for k, t in zip(wg, hv):
                out[k] += t
        return out

    return hvp, w


def _dot(a: Params, b: Params) -> torch.Tensor:
    return sum((a[k] * b[k]).sum() for k in a)


def _randn_like(w: Params, gen: torch.Generator) -> Params:
    return {k: torch.randn(v.shape, generator=gen, dtype=v.dtype).to(v.device) for k, v in w.items()}


def top_eigenvalue(hvp: Callable[[Params], Params], w: Params, cfg: HessianConfig) -> tuple[float, int]:
    """(λ of largest |λ|, iterations used) by power iteration."""
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    v = _randn_like(w, gen)
    lam, it = 0.0, 0
    for it in range(1, cfg.iterations + 1):
        norm = torch.sqrt(_dot(v, v))
        v = {k: t / norm for k, t in v.items()}
        hv = hvp(v)
        new = float(_dot(v, hv))  # Rayleigh quotient, v of unit norm
        if it > 1 and abs(new - lam) <= cfg.rtol * abs(new):
            return new, it
        lam, v = new, {k: t.detach() for k, t in hv.items()}
    return lam, it


def hutchinson_trace(hvp: Callable[[Params], Params], w: Params, cfg: HessianConfig) -> tuple[float, float]:
    """(mean of zᵀHz over Rademacher z, its standard error)."""
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
    values = []
    for _ in range(cfg.trace_samples):
        z = {k: (torch.randint(0, 2, v.shape, generator=gen).to(v) * 2 - 1) for k, v in w.items()}
        values.append(float(_dot(z, hvp(z))))
    t = torch.tensor(values, dtype=torch.float64)
    sem = float(t.std() / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return float(t.mean()), sem


@register_measure("hessian")
def hessian(model: nn.Module, data: MeasureData, *, cfg: HessianConfig = HessianConfig()) -> dict[str, float]:
    """Top eigenvalue and trace of ∇²L̂(w), L̂ the mean training loss on the first 1024 points.

    Returns:
      top_eigenvalue: λ of largest |λ| (loss units per weight unit²); eig_iterations: power steps used;
      trace: Hutchinson's estimate of tr H; trace_stderr: its standard error.

    Examples:
      >>> hessian(model, data, cfg=HessianConfig(trace_samples=100))["trace"]
    """
    hvp, w = hvp_fn(model, data, cfg.max_samples)
    lam, iters = top_eigenvalue(hvp, w, cfg)
    trace, sem = hutchinson_trace(hvp, w, cfg)
    return {"top_eigenvalue": lam, "eig_iterations": float(iters), "trace": trace, "trace_stderr": sem}
