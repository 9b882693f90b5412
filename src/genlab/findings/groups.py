"""Findings about groups of runs: `compare` (one group's mean above another's, Welch over seeds) and `value` (a
metric's mean, or its worst run, against a band or a bound). Registered in genlab.findings."""

from __future__ import annotations

import math
from typing import Any, Literal


from genlab.expr import Where
from genlab.findings.base import (Evidence, Finding, Paper, counted, expect_text, fails_text, finding,
                                  fmt3, judge, look, missing_note, pm, register_finding, rows, seeds_of,
                                  values_present)
from genlab.findings.verdicts import welch
from genlab.lazy import pd
from genlab.tables import fmt, numeric


def run_values(df: pd.DataFrame, history: pd.DataFrame, metric: str, change_from: int | None) -> pd.Series:
    """`metric` per row, or (change_from) its change since that epoch in the same run: metric − metric₀."""
    vals = numeric(df, metric, "metric")
    if change_from is None:
        return vals
    if history is None or "epoch" not in df.columns:
        raise ValueError("compare: change_from needs table = 'history'")
    h = history[(history["epoch"] == change_from) & (history["event"].isna() if "event" in history else True)]
    start = h.drop_duplicates("run_id").set_index("run_id")[metric]
    return vals - df["run_id"].map(start).astype(float)


def difference(lo: pd.Series, hi: pd.Series, look_: int, design: int | None = None) -> Evidence:
    """mean(hi) − mean(lo) over runs (seeds) as Evidence: Welch's standard error and df; NaN error with one
    run in a group."""
    if min(len(lo), len(hi)) < 2:
        return Evidence(float(hi.mean() - lo.mean()), math.nan)
    d, se, df = welch(lo, hi)
    return Evidence(d, se, df, look_, min(len(lo), len(hi)), 2.0, design or 0)


@register_finding("compare")
def compare(history: pd.DataFrame, results: pd.DataFrame, *, metric: str, by: str, low: Any, high: Any,
            change_from: int | None = None, margin: float | None = None, paper: Paper = "yes",
            require: Where | None = None, where: Where | None = None, table: str = "results",
            design_seeds: int | None = None) -> Finding:
    """mean(metric | by = high) − mean(metric | by = low) over seeds, ± the standard error of the difference
    (sample std, ddof=1; Welch's t). Claim: the difference is > 0; no effect when its interval lies within
    ±`margin`. With `change_from` (history) each run's value is its change since that epoch. One run in a
    group gives no error estimate: not judged (add seeds).
    """
    df, note = rows(history, results, table, where, require)
    vals = run_values(df, history, metric, change_from)
    if by not in df.columns:
        raise ValueError(f"compare: {by!r} is not a column of the {table} table")
    groups = {v: vals[df[by] == v].dropna() for v in (low, high)}
    for v, g in groups.items():
        if g.empty:
            raise ValueError(f"compare: no finished run with {by} = {fmt(v)}; values present: "
                             f"{values_present(df, by)}")
    ev = difference(groups[low], groups[high], look(df, design_seeds), design_seeds)
    what = metric if change_from is None else f"change of {metric} since epoch {change_from}"
    claim = f"{what} higher at {by}={fmt(high)} than at {by}={fmt(low)}"
    check = judge(claim, ev, "above", 0.0, strict=True, margin=margin)
    text = (f"{what}: {fmt3(groups[high].mean())} at {by}={fmt(high)} vs {fmt3(groups[low].mean())} at "
            f"{by}={fmt(low)} (difference {pm(ev.value, ev.error)}; {len(groups[low])} and {len(groups[high])} "
            f"runs)")
    return finding(ev.value, ev.error, [check], text + note,
                   fails_text("the difference's interval lies at or below 0", paper, margin), expect_text(claim, paper),
                   paper)


@register_finding("value")
def value(history: pd.DataFrame, results: pd.DataFrame, *, metric: str, where: Where | None = None,
          table: str = "results", target: float | None = None, tolerance: float = 0.0,
          at_most: float | None = None, at_least: float | None = None, require: Where | None = None,
          stat: Literal["mean", "max", "min"] = "mean", best_over: str | None = None,
          best_by: str = "train_loss", divided_by: str | None = None, design_seeds: int | None = None) -> Finding:
    """The mean of `metric` over the selected runs ± its standard error (t, n − 1 df), or (`stat`) its largest
    or smallest value — for a claim about every run ("every network fits its training set": max ≤ 0), exact, no
    sampling error. Checks: within the fixed band target ± tolerance; ≤ at_most; ≥ at_least. One run is not
    judged (no error bar). `best_over` (e.g. "optim.lr"): only the runs at the value of that sweep field whose
    runs reach the lowest mean `best_by` (training loss: chosen without looking at the test set). `divided_by`
    (a column): each run's metric over its own value of that column, for an identity claim such as
    ‖w − X⁺y‖ = ‖P_null w‖ (a ratio of 1); a run whose divisor is 0 or missing is listed and left out.
    """
    df, note = rows(history, results, table, where, require)
    if best_over is not None:
        df, picked = best_group(df, best_over, best_by)
        note = f" at {picked}" + note
    raw = numeric(df, metric, "metric")
    if divided_by is not None:
        den = numeric(df, divided_by, "divided_by")
        raw = (raw / den).where(den != 0)
        metric = f"{metric} / {divided_by}"
    if raw.notna().any():  # rows without the metric (NaN: not measured, or undefined) are listed, not dropped silently
        note += missing_note(df, raw.isna().to_numpy(), metric)
    v = raw.dropna()
    if v.empty:
        diverged = int((df["status"] == "diverged").sum()) if "status" in df.columns else 0
        raise ValueError(f"value: no finished run has {metric!r}" + (f" where {where}" if where else "")
                         + (f" ({diverged} of {len(df)} selected runs diverged)" if diverged else ""))
    n, s = len(v), seeds_of(df.loc[v.index])
    m, se = float(v.mean()), float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    if stat != "mean":  # every run's own value: exact, but one run is still one run
        m, se, metric = float(v.max() if stat == "max" else v.min()), (0.0 if n > 1 else math.nan), f"{stat} {metric}"
    ev = Evidence(m, se, max(n - 1, 1), look(df, design_seeds), s, n / s, design_seeds or 0)
    checks, lines = [], []
    if target is not None:
        checks.append(judge(f"{metric} in [{target - tolerance:g}, {target + tolerance:g}]", ev, "within",
                            (target - tolerance, target + tolerance)))
        lines.append(f"the interval lies outside [{target - tolerance:g}, {target + tolerance:g}]")
    if at_most is not None:
        checks.append(judge(f"{metric} ≤ {at_most:g}", ev, "below", at_most))
        lines.append(f"the interval lies above {at_most:g}")
    if at_least is not None:
        checks.append(judge(f"{metric} ≥ {at_least:g}", ev, "above", at_least))
        lines.append(f"the interval lies below {at_least:g}")
    spread = f" ± {fmt3(se)}" if se > 0 else ""
    return finding(m, se, checks, f"{metric} = {fmt3(m)}{spread} ({counted(df.loc[v.index], n, table)})" + note,
                   fails_text(" or ".join(lines), "yes") if lines else "", ", ".join(c.what for c in checks))


def best_group(df: pd.DataFrame, over: str, by: str) -> tuple[pd.DataFrame, str]:
    """The rows at the value of `over` with the lowest mean `by` (runs that diverged count as missing), and
    a note naming it among the others, e.g. "optim.lr=0.05 (lowest train_loss of 0.005: 0.41, 0.05: 0.003)"."""
    means = numeric(df, by, "best_by").groupby(df[over]).mean().dropna()
    if means.empty:
        diverged = int((df["status"] == "diverged").sum()) if "status" in df.columns else 0
        raise ValueError(f"value: no value of {over} has a run with a finite {by}"
                         + (f" ({diverged} of {len(df)} selected runs diverged)" if diverged else ""))
    best = means.idxmin()
    shown = ", ".join(f"{fmt(k)}: {fmt3(v)}" for k, v in means.items())
    return df[df[over] == best], f"{over}={fmt(best)} (lowest mean {by} of {shown})"
