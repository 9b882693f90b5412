"""Robust sign-error (Dziugaite, Drouin, Neal, Rajkumar, Caballero, Wang, Mitliagkas & Roy, "In search of
robust measures of generalization", NeurIPS 2020, §4-5 and their public code).

An environment is a pair of hyperparameter points (h, h') that differ in exactly one axis; seeds are repeats
inside it. Over every pair of runs (r ∈ h, r' ∈ h'):

    sign-error(r, r') = (1 − sgn(μ_r − μ_r') · sgn(gap_r − gap_r')) / 2          ∈ {0, ½, 1}
    weight(r, r')     = (hoeffding_weight(|gap_r − gap_r'|, n) − ½)₊                n = test-set size
    hoeffding_weight(Δ, n) = max(0, 1 − 2 exp(−2 n (Δ/2)²))²

hoeffding_weight is how sure one can be that the two gaps differ in the observed direction when each is
measured on n test points; pairs whose gaps differ by less than the noise get weight 0 (their code's
`min_weight` of ½). The environment's error is the weighted mean; environments with no weight are left out
(`sign_envs_noise` counts them). Reported: mean, 90th percentile and max over environments (`sign_mean`,
`sign_p90`, `sign_max`), overall and per axis (`sign_max[axis]`, …). A measure that moves with the gap in
every environment scores 0; against it, 1.
"""

from __future__ import annotations

import math

import numpy as np

from genlab.analysis import register_statistic
from genlab.analysis.sweep import Sample

MIN_WEIGHT = 0.5  # Dziugaite et al.'s filter: pairs below this Hoeffding weight carry none, the rest w − ½
QUANTILE = 0.9  # the "90th percentile" environment (their robust summaries: mean, quantiles, max)


def hoeffding_weight(delta, n):
    """max(0, 1 − 2 exp(−2 n (Δ/2)²))², elementwise: the chance that two gaps estimated on n test points each
    differ in the observed direction when they differ by Δ (error-rate units). Same shape as `delta`."""
    delta, n = np.abs(np.asarray(delta, dtype=float)), np.asarray(n, dtype=float)
    return np.maximum(0.0, 1.0 - 2.0 * np.exp(-2.0 * n * (delta / 2.0) ** 2)) ** 2


def environments(codes: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(axis index, runs of h, runs of h') for every unordered pair of distinct hyperparameter points that
    differ in exactly one axis. codes: (n, k) ints; rows with equal codes are seeds of one point."""
    points, point_of = np.unique(codes, axis=0, return_inverse=True)  # (P, k), (n,)
    point_of = np.asarray(point_of).reshape(-1)
    members = [np.flatnonzero(point_of == p) for p in range(len(points))]
    out = []
    for p in range(len(points)):
        differ = points[p + 1:] != points[p]  # (P-p-1, k)
        for q in np.flatnonzero(differ.sum(axis=1) == 1) + p + 1:
            out.append((int(np.flatnonzero(points[q] != points[p])[0]), members[p], members[q]))
    return out


def env_error(s: Sample, a: np.ndarray, b: np.ndarray) -> float:
    """The weighted sign-error of one environment (runs `a` vs runs `b`); nan when every weight is 0."""
    ia, ib = np.repeat(a, len(b)), np.tile(b, len(a))
    d_gap, d_mu = s.gap[ia] - s.gap[ib], s.mu[ia] - s.mu[ib]
    w = np.maximum(hoeffding_weight(d_gap, np.minimum(s.n_test[ia], s.n_test[ib])) - MIN_WEIGHT, 0.0)
    if w.sum() <= 0:
        return math.nan
    return float((w * (1 - np.sign(d_mu) * np.sign(d_gap)) / 2).sum() / w.sum())


def _summary(errors: list[float], suffix: str = "") -> dict[str, float]:
    e = np.asarray(errors, dtype=float)
    if not len(e):
        return {f"sign_mean{suffix}": math.nan, f"sign_p90{suffix}": math.nan, f"sign_max{suffix}": math.nan}
    return {f"sign_mean{suffix}": float(e.mean()), f"sign_p90{suffix}": float(np.quantile(e, QUANTILE)),
            f"sign_max{suffix}": float(e.max())}


@register_statistic("sign_error")
def sign_error(s: Sample) -> dict[str, float]:
    """Dziugaite et al. 2020's robust sign-error over one-axis environments: mean, p90, max (0 best, 1 worst)."""
    if s.n_test is None or not np.all(np.isfinite(s.n_test)):
        raise ValueError("sign_error needs each run's test-set size (result column data_info.n_test, recorded "
                         "by runs made since genlab.analysis existed); pass n_test (CLI: --n-test N)")
    per_axis: dict[int, list[float]] = {j: [] for j in range(len(s.axes))}
    noise = 0
    for axis, a, b in environments(s.codes):
        e = env_error(s, a, b)
        if math.isnan(e):
            noise += 1
        else:
            per_axis[axis].append(e)
    out = {**_summary([e for v in per_axis.values() for e in v]), "sign_envs": float(sum(map(len, per_axis.values()))),
           "sign_envs_noise": float(noise)}
    for j, errs in per_axis.items():
        out.update(_summary(errs, f"[{s.axes[j]}]"))
    return out
