"""Findings: a number with its uncertainty, computed from the results tables and set beside the seed's claim.

A finding function is `fn(history, results, *, options...) -> Finding`, registered by name. A spec lists
its findings in `[[findings]]` tables: `name` (the function), `claim` (the seed's words, quoted in the
report), and the function's options — including what would count as agreeing (e.g. `target`, `tolerance`).

    [[findings]]
    name = "slope"
    claim = "normalized test loss vs train loss is a line of slope ≈ 1 (000 Fig. 4-3)"
    x = "normalized_loss.train"
    y = "normalized_loss.test"
    target = 1.0
    tolerance = 0.2

Uncertainties are standard errors (or, where said, standard deviations across seeds), never variances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from genlab.expr import Where
from genlab.registry import Registry, call_entry
from genlab.tables import numeric, select


@dataclass(frozen=True)
class Finding:
    """value ± error (a standard error; NaN when one run gives no spread); agrees: None if not judged."""

    value: float
    error: float
    agrees: bool | None
    text: str  # one line: what was measured, e.g. "slope 0.97 ± 0.05 (n = 28 runs)"


FindingFn = Callable[..., Finding]
_FINDINGS: Registry[FindingFn] = Registry("finding")
register_finding = _FINDINGS.register
get_finding = _FINDINGS.get
list_findings = _FINDINGS.names


def evaluate(entry: dict[str, Any], history: pd.DataFrame, results: pd.DataFrame) -> tuple[str, Finding]:
    """(claim, Finding) for one `[[findings]]` entry; options are checked against the function's signature."""
    return entry.get("claim", ""), call_entry(_FINDINGS, entry, history, results, ignore=("claim",))


def _rows(history: pd.DataFrame, results: pd.DataFrame, table: str, where: str | None) -> pd.DataFrame:
    """The `results` (one row per run) or `history` (per run and epoch) table, filtered by an expression (genlab.expr)."""
    if table not in ("results", "history"):
        raise ValueError(f"table must be 'results' or 'history', got {table!r}")
    return select(results if table == "results" else history, where)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Least squares y = a x + b: (a, standard error of a, b, standard error of b). Needs n ≥ 3."""
    from scipy import stats

    r = stats.linregress(x, y)
    return float(r.slope), float(r.stderr), float(r.intercept), float(r.intercept_stderr)


@register_finding("slope")
def slope(history: pd.DataFrame, results: pd.DataFrame, *, x: str, y: str, log_x: bool = False,
          log_y: bool = False, target: float | None = None, tolerance: float = 0.1,
          where: Where | None = None, table: str = "results") -> Finding:
    """The least-squares slope of y against x over the runs (optionally in log space), ± its standard error.

    Agrees when |slope − target| ≤ tolerance + 2·stderr. `where` is an expression selecting runs (genlab.expr).
    """
    df = _rows(history, results, table, where)
    xs, ys = numeric(df, x, "x").to_numpy(float), numeric(df, y, "y").to_numpy(float)
    xs, ys = (np.log(xs) if log_x else xs), (np.log(ys) if log_y else ys)
    ok = np.isfinite(xs) & np.isfinite(ys)
    if ok.sum() < 3:
        raise ValueError(f"slope of {y} vs {x}: needs at least 3 finished runs with finite values, got {ok.sum()}")
    a, se, b, se_b = linear_fit(xs[ok], ys[ok])
    agrees = None if target is None else abs(a - target) <= tolerance + 2 * se
    return Finding(a, se, agrees, f"slope {_fmt(a)} ± {_fmt(se)}, intercept {_fmt(b)} ± {_fmt(se_b)} "
                                  f"(n = {int(ok.sum())} runs)")


@register_finding("correlation")
def correlation(history: pd.DataFrame, results: pd.DataFrame, *, x: str, y: str, sign: int = 1,
                where: Where | None = None, table: str = "results") -> Finding:
    """Kendall's τ between x and y over the runs; agrees when τ has the expected `sign` (+1 or −1) and
    its two-sided p-value is below 0.05. The error is the normal-approximation standard error of τ."""
    from scipy import stats

    df = _rows(history, results, table, where)
    xs, ys = numeric(df, x, "x").to_numpy(float), numeric(df, y, "y").to_numpy(float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    n = int(ok.sum())
    if n < 3:
        raise ValueError(f"correlation of {y} with {x}: needs at least 3 runs with finite values, got {n}")
    tau, p = stats.kendalltau(xs[ok], ys[ok])
    se = math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))
    return Finding(float(tau), se, bool(np.sign(tau) == sign and p < 0.05),
                   f"Kendall τ = {_fmt(tau)} ± {_fmt(se)} (p = {p:.2g}, n = {n})")


@register_finding("compare")
def compare(history: pd.DataFrame, results: pd.DataFrame, *, metric: str, by: str, low: Any, high: Any,
            where: Where | None = None, table: str = "results") -> Finding:
    """mean(metric | by = high) − mean(metric | by = low), ± the standard error of the difference
    (sample std with ddof=1 over seeds); agrees when the difference is positive by more than 2 errors."""
    df = _rows(history, results, table, where)
    vals = numeric(df, metric, "metric")
    groups = {v: vals[df[by] == v].dropna() for v in (low, high)}
    for v, g in groups.items():
        if g.empty:
            raise ValueError(f"compare: no finished run with {by} = {v!r}; values present: {sorted(df[by].unique())}")
    d = groups[high].mean() - groups[low].mean()
    head = f"{metric}: {_fmt(groups[high].mean())} at {by}={high} vs {_fmt(groups[low].mean())} at {by}={low}"
    if min(len(g) for g in groups.values()) < 2:  # one run in a group: no spread to estimate, judge the sign
        return Finding(float(d), math.nan, bool(d > 0), f"{head} (Δ = {_fmt(d)}; one run per group, no error "
                                                       "estimate: add seeds)")
    se = math.sqrt(sum(g.std(ddof=1) ** 2 / len(g) for g in groups.values()))
    return Finding(float(d), se, bool(d > 2 * se), f"{head} (Δ = {_fmt(d)} ± {_fmt(se)}, "
                                                   f"{len(groups[low])} and {len(groups[high])} runs)")


@register_finding("value")
def value(history: pd.DataFrame, results: pd.DataFrame, *, metric: str, where: Where | None = None, table: str = "results",
          target: float | None = None, tolerance: float = 0.0, at_most: float | None = None,
          at_least: float | None = None) -> Finding:
    """The mean of `metric` over the selected runs ± its standard error; agrees when within
    target ± (tolerance + 2·error), and/or ≤ at_most, ≥ at_least."""
    df = _rows(history, results, table, where)
    v = numeric(df, metric, "metric").dropna()
    if v.empty:
        raise ValueError(f"value: no finished run has {metric!r}" + (f" where {where}" if where else ""))
    m, se = float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    checks = []
    if target is not None:
        checks.append(abs(m - target) <= tolerance + 2 * (0.0 if math.isnan(se) else se))
    if at_most is not None:
        checks.append(m <= at_most)
    if at_least is not None:
        checks.append(m >= at_least)
    spread = f" ± {_fmt(se)}" if len(v) > 1 else ""
    return Finding(m, se, all(checks) if checks else None, f"{metric} = {_fmt(m)}{spread} (n = {len(v)} runs)")


@register_finding("recovery")
def recovery(history: pd.DataFrame, results: pd.DataFrame, *, metric: str = "train_loss",
             tolerance: float = 0.1, where: Where | None = None) -> Finding:
    """After perturbations, does `metric` come back? Per run: the final value over the value just before the
    first perturbation; the mean ratio ± its standard error. Agrees when the ratio ≤ 1 + tolerance (000 §3.5)."""
    h = _rows(history, results, "history", where)
    if "event" not in h.columns or h["event"].isna().all():
        raise ValueError("recovery: no perturbation in these runs (events.perturb_epochs)")
    ratios = []
    for _, run in h.groupby("run_id"):
        first = run.loc[run["event"].notna(), "epoch"].min()
        before = run[(run["epoch"] == first) & run["event"].isna()][metric]
        if len(before):
            ratios.append(float(run[metric].iloc[-1]) / float(before.iloc[0]))
    r = np.array(ratios)
    se = float(r.std(ddof=1) / math.sqrt(len(r))) if len(r) > 1 else 0.0
    return Finding(float(r.mean()), se, bool(r.mean() <= 1 + tolerance),
                   f"final / before-first-perturbation {metric} = {_fmt(r.mean())} ± {_fmt(se)} "
                   f"(max {_fmt(r.max())}, n = {len(r)} runs)")


@register_finding("dominates")
def dominates(history: pd.DataFrame, results: pd.DataFrame, *, metric: str, by: str, low: Any, high: Any,
              over: str, where: Where | None = None, table: str = "results") -> Finding:
    """Is mean(metric | by = low) < mean(metric | by = high) at every value of the sweep field `over`?
    (004: lower capacity on true labels than on random ones at every training-set size.)

    The value is the fraction of `over` values where it holds, ± its binomial standard error √(f(1−f)/k) over
    the k values that have runs of both groups; agrees when it holds at all of them. Means are over seeds; a
    value where both means are +inf (vacuous: γ_margin ≤ 0) does not count as holding.
    """
    df = _rows(history, results, table, where)
    vals = numeric(df, metric, "metric")
    for col in (by, over):
        if col not in df.columns:
            raise ValueError(f"dominates: {col!r} is not a column of the results")
    diffs: dict[Any, float] = {}
    for v, sub in df.groupby(over, sort=True):
        lo, hi = vals[sub.index][sub[by] == low].dropna(), vals[sub.index][sub[by] == high].dropna()
        if len(lo) and len(hi):
            diffs[v] = float(hi.mean()) - float(lo.mean()) if not (np.isinf(hi.mean()) and np.isinf(lo.mean())) \
                else math.nan
    if not diffs:
        raise ValueError(f"dominates: no value of {over} has finished runs with both {by} = {low!r} and {high!r}; "
                         f"values of {by} present: {sorted(df[by].unique()) if by in df else []}")
    holds = [d > 0 for d in diffs.values()]  # NaN (both vacuous) compares False
    k, f = len(holds), sum(holds) / len(holds)
    shown = ", ".join(f"{v}: {_fmt(d)}" for v, d in diffs.items())
    return Finding(f, math.sqrt(f * (1 - f) / k), all(holds),
                   f"{metric} lower at {by}={low} than at {by}={high} at {sum(holds)}/{k} values of {over} "
                   f"(mean difference high − low per value: {shown})")
