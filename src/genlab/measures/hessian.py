"""The Hessian of the training loss with respect to all trainable parameters, through Hessian-vector products.

H v = ∇_w (∇_w L̂(w) · v) by double backpropagation, batch by batch (L̂ is the mean training loss, or the mean
over a fixed prefix of `max_samples` points), so H is never formed. The forward pass and the gradient's graph
are kept between products when they fit (`RETAIN_BYTES`): each product is then one backward pass, ~25 % less.
A first convolution's input (the data) needs no gradient, and the products skip the transposed convolution back
to it that autograd's double backward would make (`double_backward.ConstInputConvs`: 60 → 44 ms a product).

* Top eigenvalue: Lanczos with full reorthogonalization on v ↦ H v (lanczos.py) from a seeded Gaussian start,
  until the top Ritz pair's residual is below `rtol` relative, so some eigenvalue lies within rtol·|λ| of the
  value. It is the eigenvalue of largest magnitude (reported with its sign; at a minimum H is positive
  semi-definite and that is λ_max). Power iteration, used before, stops early and low when λ₂ is close to λ₁.
* Trace: Hutchinson's estimator tr H = E[zᵀ H z] with Rademacher z (exact for a diagonal H), the mean over
  `trace_samples` draws, with its standard error.

Batching products was measured and is slower here (ConvNet3-32, 512 points, 1 CPU thread: 1.08 s per product
through the kept graph one by one, 1.52 s batched with is_grads_batched, 1.4 s by vmap over forward-over-reverse
products); block Lanczos with 4 products per step needed 2.6x the products for the same residual.

Random draws are made in float64 on the CPU and cast, so a seed gives the same vectors in either dtype.

References:
  Yao, Gholami, Keutzer & Mahoney, "PyHessian: Neural Networks Through the Lens of the Hessian", 2020
  (https://arxiv.org/abs/1912.07145).
  Hutchinson, "A stochastic estimator of the trace of the influence matrix", 1989.
  Keskar et al. 2017 (https://arxiv.org/abs/1609.04836) on curvature and sharp minima.
  Pearlmutter, "Fast exact multiplication by the Hessian", 1994 (forward-over-reverse products).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from genlab.measures import MeasureData, register_measure
from genlab.measures.double_backward import ConstInputConvs
from genlab.measures.lanczos import lanczos_extreme
from genlab.measures.layers import output_sizes
from genlab.measures.objective import Params, loss_fn, params_of, rows_per_pass, train_subset


HVP_BATCH = 256  # points per pass where objective.PASS_BYTES does not size them (a GPU: the graphs' memory)
RETAIN_BYTES = 2 * 2 ** 30  # keep the forward and gradient graphs between products when they fit in this
GRAPH_FACTOR = 6  # saved tensors per activation in a double-backward graph (an upper estimate)


@dataclass(frozen=True)
class HessianConfig:
    iterations: int = 50  # Lanczos step cap (each step is one Hessian-vector product, ~2 backward passes)
    rtol: float = 1e-4  # stop when the top Ritz pair's residual ‖Hy − λy‖ is below rtol·|λ| (1e-3 stops 0.08 %
    # low when λ₂ = 0.999 λ₁; 1e-4 is within 1e-7 there, in about the steps power iteration took to be 0.5 % low)
    trace_samples: int = 10  # Rademacher draws for Hutchinson's estimator (trace_stderr reports the spread)
    max_samples: int | None = 1024  # L̂ on this fixed prefix of the training set (None: all of it)
    seed: int = 0  # start vector and Rademacher draws


class Flat:
    """The trainable parameters' layout as one (P,) vector: `flat(params)`, names and shapes in order."""

    def __init__(self, w: Params):
        self.names = list(w)
        self.shapes = [w[k].shape for k in self.names]
        self.sizes = [w[k].numel() for k in self.names]

    def flat(self, p: Params) -> torch.Tensor:
        return torch.cat([p[k].reshape(-1) for k in self.names])


def hvp_fn(model: nn.Module, data: MeasureData, max_samples: int | None
           ) -> Callable[[torch.Tensor], torch.Tensor]:
    """v (P,) ↦ H v (P,) by reverse-over-reverse products, summed over batches of `rows_per_pass` points.

    When the batches' graphs fit in `RETAIN_BYTES` (estimated from the activations of one sample), the
    forward pass and the first backward (∇L̂ with its graph) are made once and kept, and each product is one
    backward through them; otherwise each product recomputes them batch by batch (memory of one batch).
    """
    w = params_of(model)
    x, y = train_subset(data, max_samples)
    wg = {k: t.detach().requires_grad_(True) for k, t in w.items()}
    rows = rows_per_pass(model, x, default=HVP_BATCH)

    def batch_grads(i: int) -> torch.Tensor:  # (P,) ∇ of this batch's share of L̂, with its graph
        xb, yb = x[i:i + rows], y[i:i + rows]
        with torch.enable_grad(), ConstInputConvs():  # no gradient back to the data in the products
            value = loss_fn(model, data, xb, yb)(wg) * (len(xb) / len(x))
            return torch.cat([g.reshape(-1) for g in torch.autograd.grad(value, list(wg.values()),
                                                                          create_graph=True)])

    starts = range(0, len(x), rows)
    kept = [batch_grads(i) for i in starts] if _graph_bytes(model, x) <= RETAIN_BYTES else None

    def hvp(v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(v)
        for j, i in enumerate(starts):
            g = kept[j] if kept is not None else batch_grads(i)
            with torch.enable_grad():
                hv = torch.autograd.grad(g @ v, list(wg.values()), retain_graph=kept is not None)
            out += torch.cat([t.reshape(-1) for t in hv])
        return out

    return hvp


def _graph_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """A generous estimate of the memory of the double-backward graphs over all of x: GRAPH_FACTOR times the
    leaf modules' outputs on one sample, times the rows, times the element size."""
    return GRAPH_FACTOR * sum(output_sizes(model, x[:1])) * len(x) * x.element_size()


def top_eigenvalue(hvp: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor, fl: Flat,
                   cfg: HessianConfig) -> tuple[float, int]:
    """(λ of largest |λ|, Lanczos steps used)."""
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    start = torch.cat([torch.randn(s, generator=gen, dtype=torch.float64).reshape(-1) for s in fl.shapes])
    return lanczos_extreme(hvp, start.to(w), rtol=cfg.rtol, max_iter=cfg.iterations, which="magnitude")


def rademacher(fl: Flat, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """(P,) independent ±1 entries, parameter by parameter, drawn as integers (the same in any dtype)."""
    return torch.cat([torch.randint(0, 2, s, generator=gen).reshape(-1) for s in fl.shapes]).to(like) * 2 - 1


def hutchinson_trace(hvp: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor, fl: Flat,
                     cfg: HessianConfig) -> tuple[float, float]:
    """(mean of zᵀHz over Rademacher z, its standard error)."""
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
    values = []
    for _ in range(cfg.trace_samples):
        z = rademacher(fl, gen, w)
        values.append(float(z @ hvp(z)))
    t = torch.tensor(values, dtype=torch.float64)
    sem = float(t.std() / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return float(t.mean()), sem


@register_measure("hessian")
def hessian(model: nn.Module, data: MeasureData, *, cfg: HessianConfig = HessianConfig()) -> dict[str, float]:
    """Top eigenvalue and trace of ∇²L̂(w), L̂ the mean training loss on the first 1024 points.

    Returns:
      top_eigenvalue: λ of largest |λ| (loss units per weight unit²); eig_iterations: Lanczos steps used;
      trace: Hutchinson's estimate of tr H; trace_stderr: its standard error.

    Examples:
      >>> hessian(model, data, cfg=HessianConfig(trace_samples=100))["trace"]
    """
    w = params_of(model)
    fl = Flat(w)
    hvp = hvp_fn(model, data, cfg.max_samples)
    lam, iters = top_eigenvalue(hvp, fl.flat(w), fl, cfg)
    trace, sem = hutchinson_trace(hvp, fl.flat(w), fl, cfg)
    return {"top_eigenvalue": lam, "eig_iterations": float(iters), "trace": trace, "trace_stderr": sem}
