"""Findings about a line through the runs: `slope` (a least-squares fit, its slope in a band and its intercept's
sign) and `correlation` (Kendall's τ of one column against another, over seeds). Registered in genlab.findings."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from genlab.expr import Where
from genlab.findings.base import (Evidence, Finding, Paper, counted, expect_text, fails_text, finding,
                                  finite_xy, judge, linear_fit, look, pm, register_finding, rows, seeds_of,
                                  unmet)
from genlab.lazy import pd


@register_finding("slope")
def slope(history: pd.DataFrame, results: pd.DataFrame, *, x: str, y: str, log_x: bool = False,
          log_y: bool = False, target: float | None = None, tolerance: float = 0.1,
          intercept: Literal["any", "positive", "negative"] = "any", intercept_margin: float | None = None,
          require: Where | None = None, where: Where | None = None, table: str = "results",
          design_seeds: int | None = None) -> Finding:
    """The least-squares line y = a x + b over the runs (optionally in log space), a and b ± standard errors
    (t with n − 2 degrees of freedom).

    Checks: a in the fixed band [target − tolerance, target + tolerance]; b > 0 (`intercept = "positive"`)
    or b < 0, with no effect when b's interval lies within ±`intercept_margin`. `require` is the claim's
    precondition (e.g. "train_error == 0"): runs failing it are left out of the fit and listed, as are runs
    with no finite x or y.
    """
    df, note = rows(history, results, table, where, require, show=(x, "train_error"))
    xs, ys, df, dropped = finite_xy(df, x, y)
    note += dropped
    xs, ys = (np.log(xs) if log_x else xs), (np.log(ys) if log_y else ys)
    if len(xs) < 3:
        if note:  # the runs exist but miss the claim's precondition: this profile cannot test the claim
            return unmet(f"slope of {y} vs {x}: {len(xs)} runs meet {require}, 3 needed{note}")
        raise ValueError(f"slope of {y} vs {x}: needs at least 3 runs with finite values, got {len(xs)}")
    a, se, b, se_b = linear_fit(xs, ys)
    s = seeds_of(df)
    ev = dict(df=len(xs) - 2, look=look(df, design_seeds), n=s, df_per_seed=len(xs) / s, design=design_seeds or 0)
    checks, lines = [], []
    if target is not None:
        lo, hi = target - tolerance, target + tolerance
        checks.append(judge(f"slope in [{lo:g}, {hi:g}]", Evidence(a, se, **ev), "within", (lo, hi)))
        lines.append(f"the slope's interval lies outside [{lo:g}, {hi:g}]")
    if intercept != "any":
        kind = "above" if intercept == "positive" else "below"
        checks.append(judge(f"intercept {'>' if kind == 'above' else '<'} 0", Evidence(b, se_b, **ev), kind, 0.0,
                            strict=True, margin=intercept_margin))
        lines.append(f"the intercept's interval lies {'at or below' if kind == 'above' else 'at or above'} 0")
    return finding(a, se, checks, f"slope {pm(a, se)}, intercept {pm(b, se_b)} ({counted(df, len(xs), table)}, "
                   f"{s} seed{'s' * (s > 1)})" + note, fails_text(" or ".join(lines), "yes", intercept_margin)
                   if lines else "", ", ".join(c.what for c in checks))


@register_finding("correlation")
def correlation(history: pd.DataFrame, results: pd.DataFrame, *, x: str, y: str, sign: int = 1,
                band: float = 0.3, margin: float | None = None, paper: Paper = "yes",
                require: Where | None = None, where: Where | None = None, table: str = "results",
                design_seeds: int | None = None) -> Finding:
    """Kendall's τ between x and y over every run (sweep points × seeds), ± its standard error under
    independence, √(2(2n+5) / (9n(n−1))) (normal).

    sign = +1 (y grows with x) or −1 (falls): τ·sign > 0, no effect when τ's interval lies within ±`margin`.
    sign = 0 ("no direct correlation"): |τ| ≤ band. `paper = "no"`: the seed says the stated direction does
    not hold; the verdict is reversed.
    """
    from scipy import stats

    if sign not in (-1, 0, 1):
        raise ValueError(f"correlation: sign must be +1 (grows), -1 (falls) or 0 (no correlation), got {sign!r}")
    df, note = rows(history, results, table, where, require)
    xs, ys, df, dropped = finite_xy(df, x, y)
    note += dropped
    n = len(xs)
    if n < 3:
        if note:
            return unmet(f"correlation of {y} with {x}: {n} runs meet {require}, 3 needed{note}")
        raise ValueError(f"correlation of {y} with {x}: needs at least 3 runs with finite values, got {n}")
    tau, p = stats.kendalltau(xs, ys)
    tau = float(tau) if np.isfinite(tau) else 0.0  # constant x or y: no ordering, τ = 0
    se = math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))
    s = seeds_of(df)
    ev = Evidence(tau, se, look=look(df, design_seeds), n=s, df_per_seed=0.0, design=design_seeds or 0)
    if sign == 0:
        check, line = judge(f"|τ| ≤ {band:g}", ev, "within", (-band, band)), f"τ's interval lies outside ±{band:g}"
    else:
        word = "grows" if sign > 0 else "falls"
        check = judge(f"τ {'>' if sign > 0 else '<'} 0 ({y} {word} with {x})", ev, "above" if sign > 0 else "below",
                      0.0, strict=True, margin=margin)
        line = f"τ's interval lies {'≤' if sign > 0 else '≥'} 0"
    return finding(tau, se, [check], f"Kendall τ = {pm(tau, se)} (p = {p:.2g}, {counted(df, n, table)}, {s} "
                   f"seed{'s' * (s > 1)})" + note, fails_text(line, paper, margin if sign else None),
                   expect_text(check.what, paper), paper)
