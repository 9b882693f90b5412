"""Least squares with more features than samples (003 §4): the minimum-norm solution X⁺y, how far a trained
network's linear map is from it, and the spectrum of the design's XᵀX/n against Marchenko–Pastur.

With p > n the normal equations XᵀX w = Xᵀy have a whole affine space of solutions; the pseudo-inverse picks
the one of least norm, w⁺ = X⁺y, which lies in the row space of X. Gradient descent (full-batch or SGD) on
the squared loss started from w = 0 only ever adds multiples of rows of X, so it stays in the row space and,
when it converges, converges to w⁺; started from w₀ ≠ 0 it keeps w₀'s null-space part forever.

    [record]
    measures = ["min_norm_gap", "design_spectrum"]
    measure_epochs = [1, 10, 100]          # ‖w − X⁺y‖ along the way

Both measures do their linear algebra in float64 whatever compute()'s dtype (the design's SVD, done once per
compute call); only the model's Jacobian (a backward pass) is taken in the call's dtype.

References: 003 §4 (HW0, "Linear regression"); Marchenko & Pastur, "Distribution of eigenvalues for some
sets of random matrices", Mat. Sbornik 1967; Hastie, Montanari, Rosset, Tibshirani, "Surprises in
high-dimensional ridgeless least squares interpolation", 2019, https://arxiv.org/abs/1903.08560 (eq. 4).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genlab.measures import MeasureData, cached, register_measure


def design(x: torch.Tensor) -> torch.Tensor:
    """(n, *in_shape) inputs → (n, p) design matrix, p = prod(in_shape)."""
    return x.reshape(len(x), -1)


def targets(y: torch.Tensor, num_outputs: int) -> torch.Tensor:
    """(n, K) regression targets: float y as one column, class labels one-hot (the `mse` loss's targets)."""
    if y.dtype.is_floating_point:
        return y.reshape(len(y), -1)
    return F.one_hot(y, num_outputs)


def linear_map(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(K, p) the input-output Jacobian of `model`, averaged over the rows of x (n, *in_shape).

    For an affine model f(x) = W vec(x) + b this is W exactly, at any x; for other models it is the linear
    map that matches them to first order on average over x. One batched backward pass over the K outputs.
    """
    with torch.enable_grad():
        xr = x.detach().clone().requires_grad_(True)
        out = model(xr)  # (n, K)
        k = out.shape[1]
        seeds = torch.eye(k, dtype=out.dtype, device=out.device)[:, None, :].expand(k, *out.shape)  # (K, n, K)
        (g,) = torch.autograd.grad(out, xr, grad_outputs=seeds, is_grads_batched=True)  # (K, n, *in_shape)
    return g.reshape(k, len(x), -1).mean(1)  # (K, p)


def row_space(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thin SVD of the (n, p) design restricted to its rank r: U (n, r), S (r,), V (p, r).

    The rank counts singular values above max(n, p)·eps·s_max (numpy.linalg.matrix_rank's threshold).
    The SVD is that of the small triangular factor of a Householder QR (X = RᵀQᵀ when n < p, X = QR
    otherwise), backward stable as LAPACK's own bidiagonalization and ~5x faster on a 512×3072 design.
    """
    if x.shape[0] < x.shape[1]:
        q, r = torch.linalg.qr(x.T)  # x.T (p, n) = Q (p, n) R (n, n), so x = Rᵀ Qᵀ
        u, s, vh = torch.linalg.svd(r.T)
        vh = vh @ q.T
    else:
        q, r = torch.linalg.qr(x)  # x (n, p) = Q (n, p) R (p, p)
        u, s, vh = torch.linalg.svd(r)
        u = q @ u
    tol = max(x.shape) * torch.finfo(x.dtype).eps * (s[0] if len(s) else 0.0)
    r = int((s > tol).sum())
    return u[:, :r], s[:r], vh[:r].T


def min_norm_solution(x: torch.Tensor, t: torch.Tensor,
                      svd: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """(p, K) w⁺ = X⁺ t, the least-squares solution of least Frobenius norm, for X (n, p) and t (n, K)
    (`svd`: row_space(x) when already computed)."""
    u, s, v = svd if svd is not None else row_space(x)
    return v @ ((u.T @ t) / s[:, None])


def design64(data: MeasureData) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(the (n, p) float64 training design, its row_space SVD), computed once per compute call."""
    def make():
        x = design(data.x_train).double()
        return x, row_space(x)

    return cached(data, ("design64", data.x_train), make)


def least_squares(model: nn.Module, data: MeasureData) -> bool:
    """Where these measures mean something: a net trained on the squared loss (`mse`), whose minimum is the
    least-squares solution. On a cross-entropy classifier they are skipped (compute(): `applies`)."""
    return data.loss.name == "mse"


@register_measure("min_norm_gap")
def min_norm_gap(model: nn.Module, data: MeasureData) -> dict[str, float]:
    """How far the model's linear map W (K, p) is from the minimum-norm least-squares solution w⁺ = X⁺y.

    X (n, p) is the flattened training inputs, y the targets (one-hot labels for classification). For an
    affine model W is its weight (use a linear model without bias: w⁺ has no intercept); otherwise the
    average input-output Jacobian (`linear_map`). Norms are Frobenius (Euclidean for one output).

    Returns:
      distance: ‖W − w⁺ᵀ‖; relative: distance / ‖w⁺‖; norm: ‖W‖; min_norm: ‖w⁺‖;
      null_norm: ‖W (I − V Vᵀ)‖, the part of W outside the row space of X (V: its (p, r) basis) — zero for
      gradient descent from zero, and the limit of `distance` when GD converges from elsewhere;
      min_norm_train_mse, min_norm_test_mse: mean over samples of ‖x w⁺ − y‖² (the `mse` loss's units);
      rank: the rank r of X (003: 500).

    Examples:
      >>> compute(["min_norm_gap"], linear_net, MeasureData.from_dataset(ds, get_loss("mse")))

    References: 003 §4.2-4.3 (the normal equations, the pseudo-inverse, SGD from zero); Zhang et al.,
    "Understanding deep learning requires rethinking generalization", ICLR 2017, §5 (SGD from zero on a
    linear model finds the minimum-norm solution), https://arxiv.org/abs/1611.03530
    """
    (x, svd), xt = design64(data), design(data.x_test).double()
    w = linear_map(model, data.x_train).double()  # (K, p): the model's Jacobian in the call's dtype
    t, tt = targets(data.y_train, w.shape[0]).to(x.dtype), targets(data.y_test, w.shape[0]).to(x.dtype)
    v = svd[2]
    w_plus = min_norm_solution(x, t, svd)  # (p, K)
    min_norm = float(w_plus.norm())
    distance = float((w - w_plus.T).norm())
    return {"distance": distance, "relative": distance / min_norm if min_norm > 0 else float(distance > 0),
            "norm": float(w.norm()), "min_norm": min_norm, "null_norm": float((w - (w @ v) @ v.T).norm()),
            "min_norm_train_mse": float(((x @ w_plus - t) ** 2).sum(1).mean()),
            "min_norm_test_mse": float(((xt @ w_plus - tt) ** 2).sum(1).mean()) if len(xt) else float("nan"),
            "rank": float(v.shape[1])}


min_norm_gap.applies = least_squares  # type: ignore[attr-defined]


def mp_edges(gamma: float, sigma2: float = 1.0) -> tuple[float, float]:
    """The support [λ−, λ+] = σ²(1 ∓ √γ)² of the Marchenko–Pastur law of XᵀX/n, γ = p/n (entries of
    variance σ²). For γ > 1 the law also has mass 1 − 1/γ at 0 (p − n zero eigenvalues)."""
    return sigma2 * (1 - math.sqrt(gamma)) ** 2, sigma2 * (1 + math.sqrt(gamma)) ** 2


def mp_density(lam: torch.Tensor, gamma: float, sigma2: float = 1.0) -> torch.Tensor:
    """The Marchenko–Pastur density of the non-zero eigenvalues of XᵀX/n, normalized to integrate to 1:
    √((λ+ − λ)(λ − λ−)) / (2π σ² min(γ, 1) λ) on [λ−, λ+], 0 elsewhere."""
    lo, hi = mp_edges(gamma, sigma2)
    inside = (lam > lo) & (lam < hi)
    val = torch.sqrt(((hi - lam) * (lam - lo)).clamp_min(0)) / (2 * math.pi * sigma2 * min(gamma, 1.0) * lam)
    return torch.where(inside, val, torch.zeros_like(lam))


def gram_eigenvalues(x: torch.Tensor) -> torch.Tensor:
    """(p,) the eigenvalues of XᵀX/n for X (n, p), ascending; via the smaller of XᵀX and XXᵀ (same non-zero
    spectrum), padded with the p − n exact zeros when p > n."""
    n, p = x.shape
    small = x.T @ x if p <= n else x @ x.T
    ev = torch.linalg.eigvalsh(small / n).clamp_min(0)
    return torch.cat([torch.zeros(p - len(ev), dtype=ev.dtype, device=ev.device), ev])


@register_measure("design_spectrum")
def design_spectrum(model: nn.Module, data: MeasureData) -> dict[str, float]:
    """The spectrum of XᵀX/n for the flattened training inputs X (n, p), beside Marchenko–Pastur's edges.

    σ² is estimated as the mean squared entry of X (1 for a standard Gaussian design); γ = p/n. The model
    is not used: this describes the design that gradient descent sees (its step limit is 1/λ_max of the
    Hessian 2XᵀX/n, its slowest rate λ_min⁺).

    Returns:
      lambda_max, lambda_min_nonzero (smallest eigenvalue above the rank threshold), n_zero (p − rank),
      mp_lower, mp_upper (the MP edges σ²(1 ∓ √γ)²), condition_nonzero = λ_max / λ_min⁺ (003: "the
      conditioning number in the non-null space is decent"), gamma = p/n, sigma2, and the spectrum itself as
      QUANTILES + 1 quantiles of the non-zero eigenvalues, q00 … q50 (at 0 %, 2 %, …, 100 %: the smallest, …,
      λ_max) — what the `mp_spectrum` figure draws, so it never rebuilds the data set.

    References: Marchenko & Pastur 1967; 003 §4.4 ("the eigenvalues of XᵀX indeed followed the
    Marchenko-Pastur distribution").
    """
    x, svd = design64(data)
    n, p = x.shape
    ev = gram_eigenvalues(x)
    rank = svd[1].numel()
    nonzero = ev[p - rank:]
    sigma2 = float((x ** 2).mean())
    lo, hi = mp_edges(p / n, sigma2)
    return {"lambda_max": float(ev[-1]), "lambda_min_nonzero": float(nonzero[0]), "n_zero": float(p - rank),
            "mp_lower": lo, "mp_upper": hi, "condition_nonzero": float(ev[-1] / nonzero[0]),
            "gamma": p / n, "sigma2": sigma2, **spectrum_quantiles(nonzero)}


QUANTILES = 50  # the stored spectrum: 51 quantiles, 2 % of the non-zero eigenvalues between neighbours


def spectrum_quantiles(ev: torch.Tensor) -> dict[str, float]:
    """{"q00": min, "q01": 2 % quantile, …, "q50": max} of the eigenvalues `ev` (linear interpolation)."""
    qs = torch.quantile(ev.to(torch.float64), torch.linspace(0, 1, QUANTILES + 1, dtype=torch.float64))
    return {f"q{k:02d}": float(v) for k, v in enumerate(qs)}


design_spectrum.applies = least_squares  # type: ignore[attr-defined]
