"""Rank correlation of a measure with the gap: Kendall's τ over all runs, and Jiang et al. 2020's granulated Ψ.

    τ = Kendall's τ-b of (μ_r, gap_r) over the runs (scipy.stats.kendalltau, with its two-sided p-value)
    ψ_a = mean over groups G of runs that share every axis value but a's (seeds pooled) of τ(μ|G, gap|G)
    Ψ = mean over axes a of ψ_a

A group whose τ is undefined (μ or gap constant in it) is left out of ψ_a; an axis with no defined group is
left out of Ψ. References: Jiang, Neyshabur, Mobahi, Krishnan & Bengio, "Fantastic generalization measures
and where to find them", ICLR 2020, §3 (eq. 2 for Ψ); Kendall, "A new measure of rank correlation", 1938.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from genlab.analysis import register_statistic
from genlab.analysis.sweep import Sample


def _tau(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Kendall's τ-b and its p-value; (nan, nan) when fewer than 2 points or either side is constant."""
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan"), float("nan")
    with warnings.catch_warnings():  # scipy warns on ties it handles; the value is what we need
        warnings.simplefilter("ignore")
        res = stats.kendalltau(x, y)
    return float(res.statistic), float(res.pvalue)


@register_statistic("kendall_tau")
def kendall_tau(s: Sample) -> dict[str, float]:
    """Kendall's τ-b of the measure and the gap over all runs, and its two-sided p-value (scipy)."""
    tau, p = _tau(s.mu, s.gap)
    return {"tau": tau, "tau_p": p}


def axis_groups(codes: np.ndarray, axis: int) -> list[np.ndarray]:
    """Row indices of the runs that agree on every axis but `axis` (codes: (n, k) ints), one array per group
    with at least two distinct values of `axis`."""
    others = np.delete(codes, axis, axis=1)  # (n, k-1)
    _, group = np.unique(others, axis=0, return_inverse=True) if others.shape[1] else (None, np.zeros(len(codes), int))
    group = np.asarray(group).reshape(-1)
    out = []
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        if len(np.unique(codes[rows, axis])) > 1:
            out.append(rows)
    return out


@register_statistic("granulated_psi")
def granulated_psi(s: Sample) -> dict[str, float]:
    """Ψ (Jiang et al. 2020 §3): τ within groups that differ in one axis only, averaged per axis (ψ_a,
    reported as `psi[axis]`), then over axes (`psi`). Values in [-1, 1]; nan when no group is defined."""
    out: dict[str, float] = {}
    for j, axis in enumerate(s.axes):
        taus = [_tau(s.mu[r], s.gap[r])[0] for r in axis_groups(s.codes, j)]
        taus = [t for t in taus if np.isfinite(t)]
        out[f"psi[{axis}]"] = float(np.mean(taus)) if taus else float("nan")
    per_axis = [v for v in out.values() if np.isfinite(v)]
    return {"psi": float(np.mean(per_axis)) if per_axis else float("nan"), **out}
