"""Heavy-tailed self-regularization: the empirical spectral density (ESD) of each layer's weights, fitted by a
power law, and the data-free quality metrics built on it (Martin & Mahoney).

For a layer with weight matrix W (N × M, N ≥ M, transposed if needed) the ESD is the set of eigenvalues
λ_i = σ_i² of the correlation matrix X = WᵀW. A conv kernel (out, in, k_1, …) is read as weightwatcher forms it:
one (out × in) matrix per kernel position, their eigenvalues pooled into one ESD (k_1·k_2·M values for a 2-D
conv). The weights are the module's own (BatchNorm not folded), as weightwatcher and the papers take them.

The tail of the ESD is fitted by a continuous power law p(λ) ∝ λ^(−α) for λ ≥ λ_min, with λ_min chosen among the
eigenvalues as the one that minimizes the Kolmogorov–Smirnov distance D between the fitted and the empirical
tail CDF (Clauset, Shalizi & Newman 2009), α by maximum likelihood given λ_min:

    α(x_min) = 1 + n / Σ_{λ_i ≥ x_min} ln(λ_i / x_min),   D = max_i |1 − (λ_i/x_min)^{1−α} − i/n|  (i = 0..n−1)

— exactly weightwatcher's default fit (its `pl_package="ww"`, WW_powerlaw.WWFit; eigenvalues ≤ 1e-5 dropped
first; for fewer than 20 eigenvalues its small-sample rule: the (n−1) bias-corrected α and only tails of ≥ 8
values; its objective D − 0.868/√n is computed there but then overridden by WWFit.__init__'s argmin of D, which
is what weightwatcher reports and what we do).

One convention differs on purpose: weightwatcher multiplies each conv slice by 1/√2 before the SVD (its default
`conv2d_norm=True`), so its conv λ_max (and log_spectral_norm, alpha_weighted) are those of W/√2; we keep the
eigenvalues of the weights themselves, X = WᵀW as the JMLR paper defines the ESD. α, x_min/λ_max ratios and the KS
distance do not change (the fit is scale-free); conv λ values are 2× weightwatcher's, log10 λ_max 0.301 higher.

We write the fit as this closed form, vectorized over the candidate x_min, rather than call the `powerlaw`
package: powerlaw.Fit re-fits every candidate x_min through its Python distribution objects (about 100× slower on
a 1,600-eigenvalue ESD, benchmarks/bench_lenses.py), and weightwatcher itself no longer uses it for this fit.
tests/test_lenses.py checks that powerlaw picks the same x_min and D and gives the same α at it.

Network summaries (each a mean over the fitted layers, as weightwatcher's `get_summary`):
    alpha_mean        mean α
    alpha_hat         mean of α·log10 λ_max (weightwatcher's `alpha_weighted`; Martin & Mahoney's α̂)
    log10_lambda_max  mean log10 λ_max = 2·log10 ‖W‖₂ (weightwatcher's `log_spectral_norm`)
    stable_rank       mean Σλ/λ_max = ‖W‖_F²/‖W‖₂² of the (pooled) matrices

References:
  Martin & Mahoney, "Implicit Self-Regularization in Deep Neural Networks", JMLR 22(165), 2021
  (https://arxiv.org/abs/1810.01075); "Predicting trends in the quality of state-of-the-art neural networks
  without access to training or testing data", Nature Communications 12, 4122, 2021
  (https://arxiv.org/abs/2002.06716). Clauset, Shalizi & Newman, SIAM Review 51, 2009.
  weightwatcher 0.7.7 (https://github.com/CalculatedContent/WeightWatcher).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from genlab.measures import MeasureData, register_measure
from genlab.measures.layers import trace, unique_ops

EVALS_THRESH = 1e-5  # weightwatcher's EVALS_THRESH: eigenvalues at or below it are dropped before the fit
MIN_EVALS = 8  # weightwatcher's DEFAULT_MIN_EVALS: a layer with fewer pooled eigenvalues is not fitted
SMALL_N = 20  # below this many eigenvalues, weightwatcher's small-sample fit (bias-corrected α, k ≥ 8)


@dataclass(frozen=True)
class PowerLawFit:
    alpha: float  # exponent of p(λ) ∝ λ^(−α)
    xmin: float  # start of the fitted tail (an eigenvalue), eigenvalue units
    ks: float  # Kolmogorov–Smirnov distance D of the tail fit (0..1)
    n_tail: int  # eigenvalues ≥ xmin


def layer_matrices(weight: torch.Tensor) -> list[torch.Tensor]:
    """The (N × M, N ≥ M) float64 matrices whose pooled ESD is the layer's: W itself for a dense layer, one
    (out × in) slice per kernel position for a conv (weightwatcher's `conv2D_Wmats`, channels first)."""
    w = weight.detach().to(torch.float64, copy=True).cpu()
    mats = [w] if w.dim() == 2 else [w[(slice(None), slice(None), *k)] for k in np.ndindex(*w.shape[2:])]
    return [m.T if m.shape[0] < m.shape[1] else m for m in mats]


def layer_eigenvalues(weight: torch.Tensor) -> np.ndarray:
    """Sorted eigenvalues of XᵢᵀXᵢ pooled over the layer's matrices (σ² of each), float64."""
    mats = layer_matrices(weight)
    sv = torch.linalg.svdvals(torch.stack(mats)) if len({tuple(m.shape) for m in mats}) == 1 else \
        torch.cat([torch.linalg.svdvals(m) for m in mats])
    return np.sort((sv.reshape(-1) ** 2).numpy())


def _tail_stats(x: np.ndarray, corrected: bool) -> tuple[np.ndarray, np.ndarray]:
    """α and D for every candidate x_min = x[i], i < len(x) − 1 (x sorted ascending, > 0).

    Vectorized over candidates in O(n²) memory-free chunks: α_i from suffix sums of ln x, D_i as the largest gap
    between the fitted CDF 1 − (x_j/x_i)^{1−α_i} and the empirical i/n over the tail."""
    n_all = len(x)
    logx = np.log(x)
    suffix = np.cumsum(logx[::-1])[::-1]  # Σ_{j ≥ i} ln x_j
    i = np.arange(n_all - 1)
    n = (n_all - i).astype(np.float64)
    s = suffix[:-1] - n * logx[:-1]  # Σ_{j ≥ i} ln(x_j / x_i)
    with np.errstate(divide="ignore", invalid="ignore"):
        alphas = 1 + (n - 1 if corrected else n) / s
    ds = np.ones(n_all - 1)
    for lo in range(0, n_all - 1, 256):  # rows of candidates; each row holds the whole tail
        rows = np.arange(lo, min(lo + 256, n_all - 1))
        j = np.arange(n_all)
        rel = j[None, :] - rows[:, None]  # position within the tail (negative: below x_min)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            fit = 1 - (x[None, :] / x[rows, None]) ** (1 - alphas[rows, None])
            gap = np.abs(fit - rel / n[rows, None])
        gap = np.where(rel >= 0, gap, 0.0)
        ok = alphas[rows] > 1
        ds[rows] = np.where(ok, gap.max(axis=1), 1.0)
    return alphas, ds


def fit_power_law(evals: np.ndarray) -> PowerLawFit:
    """weightwatcher's default power-law fit of an ESD (see the module docstring): x_min by the KS distance.

    Raises ValueError when fewer than two eigenvalues exceed EVALS_THRESH (nothing to fit)."""
    x = np.sort(np.asarray(evals, dtype=np.float64))
    x = x[x > EVALS_THRESH]
    if len(x) < 2:
        raise ValueError(f"a power-law fit needs at least 2 eigenvalues above {EVALS_THRESH}, got {len(x)}")
    small = len(x) < SMALL_N
    alphas, ds = _tail_stats(x, corrected=small)
    if small:  # weightwatcher's fit_powerlaw_smallN: only tails of ≥ 8 values get a D (the others keep D = 1)
        n = len(x) - np.arange(len(x) - 1)
        ds = np.where((n >= 8) & (alphas > 1) & np.isfinite(alphas), ds, 1.0)
    best = int(np.argmin(ds))  # the first smallest D, as np.argmin in WWFit.__init__
    return PowerLawFit(float(alphas[best]), float(x[best]), float(ds[best]), int(len(x) - best))


def fitted_layers(model: nn.Module, data: MeasureData, min_evals: int = MIN_EVALS
                  ) -> list[tuple[int, nn.Module, np.ndarray, PowerLawFit]]:
    """(layer index in execution order, module, its ESD, its fit) for every layer with ≥ min_evals eigenvalues."""
    out = []
    for i, op in enumerate(unique_ops(trace(model, data.sample()))):
        evals = layer_eigenvalues(op.weight)
        if len(evals) >= min_evals and (evals > EVALS_THRESH).sum() >= 2:
            out.append((i, op.module, evals, fit_power_law(evals)))
    return out


def histogram(evals: np.ndarray, fit: PowerLawFit, bins: int, suffix: str = "") -> dict[str, float]:
    """The ESD's density over `bins` log-spaced bins (what a log-log ESD figure draws), its range, and the
    fraction of eigenvalues in the fitted tail."""
    x = evals[evals > EVALS_THRESH]
    edges = np.geomspace(x[0], x[-1], bins + 1) if x[-1] > x[0] else np.array([x[0] * 0.99, x[0] * 1.01])
    dens, _ = np.histogram(x, bins=edges, density=True)
    out = {f"hist{suffix}.{k}": float(v) for k, v in enumerate(dens)}
    out.update({f"hist_lo{suffix}": float(edges[0]), f"hist_hi{suffix}": float(edges[-1]),
                f"tail{suffix}": fit.n_tail / len(x)})
    return out


@register_measure("esd")
def esd(model: nn.Module, data: MeasureData, *, min_evals: int = MIN_EVALS, bins: int = 0) -> dict[str, float]:
    """Per-layer power-law exponent α of the weight ESD and Martin & Mahoney's data-free summaries.

    Definition: see the module docstring (weightwatcher 0.7.7's default fit, same x_min rule). Layers are indexed
    in execution order among the Linear/Conv layers; those with fewer than `min_evals` pooled eigenvalues
    (weightwatcher's default 8, e.g. a 3-class output layer) are left out of every key.

    Returns:
      alpha.<i>, xmin.<i> (eigenvalue units), ks.<i> (KS distance) per fitted layer; alpha_mean, alpha_hat
      (mean α·log10 λ_max), log10_lambda_max (mean), stable_rank (mean Σλ/λ_max), layers (count fitted).
      Dimensionless except xmin. With `bins` > 0, also the ESD for figures: hist.<i>.<k>, the density of the
      eigenvalues above EVALS_THRESH over `bins` log-spaced bins from hist_lo.<i> to hist_hi.<i>, and tail.<i>,
      the fraction of them ≥ xmin (what scales the fitted density). Raises ValueError when no layer has enough
      eigenvalues.

    References: Martin & Mahoney, JMLR 2021 and Nat. Commun. 2021 (module docstring).
    """
    layers = fitted_layers(model, data, min_evals)
    if not layers:
        raise ValueError(f"no Linear/Conv layer has at least min_evals={min_evals} eigenvalues to fit")
    out: dict[str, float] = {}
    for i, _, evals, fit in layers:
        out.update({f"alpha.{i}": fit.alpha, f"xmin.{i}": fit.xmin, f"ks.{i}": fit.ks})
        if bins > 0:
            out.update(histogram(evals, fit, bins, f".{i}"))
    lam_max = [float(ev[-1]) for _, _, ev, _ in layers]
    alphas = [fit.alpha for *_, fit in layers]
    out["alpha_mean"] = float(np.mean(alphas))
    out["alpha_hat"] = float(np.mean([a * math.log10(lm) for a, lm in zip(alphas, lam_max)]))
    out["log10_lambda_max"] = float(np.mean([math.log10(lm) for lm in lam_max]))
    out["stable_rank"] = float(np.mean([ev.sum() / ev[-1] for _, _, ev, _ in layers]))
    out["layers"] = float(len(layers))
    return out
