"""Findings that set runs against other runs: `recovery` (a perturbed run against its unperturbed control)
and `dominates` (one group below another at every value of a sweep field). Registered in genlab.findings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from genlab.lazy import pd

from genlab.expr import Where
from genlab.findings import (Check, Finding, Paper, _expect, _fails, _fmt, _pm, at_least, at_most, negate, overall,
                             register_finding, rows)
from genlab.tables import fmt, numeric


def tail_level(run: pd.DataFrame, metric: str, window: int) -> tuple[float, float]:
    """Mean of `metric` over a run's last `window` epochs (rows after a perturbation excluded) ± its standard
    error (sample std / √window): the level a run ends at, with the epoch-to-epoch noise of SGD as its error."""
    v = numeric(run[run["event"].isna()] if "event" in run else run, metric, "metric").dropna().to_numpy(float)
    v = v[-window:]
    if len(v) == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan


def jumps(run: pd.DataFrame, metric: str) -> list[float]:
    """metric(after) − metric(before) at each perturbation of a run: the rows with and without `event`."""
    out = []
    for epoch in run.loc[run["event"].notna(), "epoch"]:
        at = run[run["epoch"] == epoch]
        before, after = at.loc[at["event"].isna(), metric], at.loc[at["event"].notna(), metric]
        if len(before) and len(after):
            out.append(float(after.iloc[0]) - float(before.iloc[0]))
    return out


@register_finding("recovery")
def recovery(history: pd.DataFrame, results: pd.DataFrame, *, metric: str = "train_loss",
             by: str = "events.perturb_std", control: Any = 0.0, match: list[str] = ["seed"],
             tolerance: float = 0.1, window: int = 5, where: Where | None = None) -> Finding:
    """After perturbations, does `metric` come back to where an unperturbed run gets? (000 §3.4–3.6)

    Per perturbed run: r = (its level over the last `window` epochs) / (the same for its control: the run
    with `by` = `control` and the same `match` columns — same seed, same data order), ± a standard error from
    the epoch-to-epoch spread of both levels. Checks: every r ≤ 1 + tolerance; and the perturbations set the
    metric back (mean jump after − before > 0), without which there is nothing to recover from.
    The value is the worst (largest) r.
    """
    h, _ = rows(history, results, "history", where)
    if "event" not in h.columns or h["event"].isna().all():
        raise ValueError("recovery: no perturbation in these runs (events.perturb_epochs)")
    for c in [by, *match]:
        if c not in h.columns:
            raise ValueError(f"recovery: {c!r} is not a column of the history")
    ctrl = h[h[by] == control]
    if ctrl.empty:
        raise ValueError(f"recovery needs an unperturbed control run: add {by} = {control!r} to the sweep "
                         f"(values present: {sorted(h[by].dropna().unique())})")
    levels = {tuple(k) if isinstance(k, tuple) else (k,): tail_level(run, metric, window)
              for k, run in ctrl.groupby(match)}
    checks, all_jumps = [], []
    for rid, run in h[h[by] != control].groupby("run_id", sort=False):
        key = tuple(run.iloc[0][match])
        if key not in levels:
            raise ValueError(f"recovery: run {rid} has no control with {match} = {key!r}")
        (p, sp), (c, sc) = tail_level(run, metric, window), levels[key]
        r = p / c
        se = abs(r) * math.sqrt((sp / p) ** 2 + (sc / c) ** 2)
        checks.append(at_most(f"{by}={fmt(run.iloc[0][by])}: final / control ≤ {1 + tolerance:g}", r, se,
                              1 + tolerance))
        all_jumps += jumps(run, metric)
    if not checks:
        raise ValueError(f"recovery: no perturbed run (every run has {by} = {control!r})")
    worst = max(checks, key=lambda c: c.value)
    per_run = ", ".join(c.what.split(":")[0] + ": " + _pm(c.value, c.error) for c in checks)
    text = f"final {metric} / control's: {per_run} (last {window} epochs)"
    j = np.array(all_jumps)
    if len(j):
        j_se = float(j.std(ddof=1) / math.sqrt(len(j))) if len(j) > 1 else math.nan
        checks.append(at_least(f"perturbations raise {metric} (mean jump > 0)", float(j.mean()), j_se, 0.0,
                               strict=True))
        text += f"; jump at a perturbation {_pm(float(j.mean()), j_se)} (mean of {len(j)})"
    return Finding(worst.value, worst.error, overall(checks), text, tuple(checks),
                   f"differs if a run ends more than {tolerance:.0%} above its control beyond its error bar, or "
                   f"the perturbations do not raise {metric}; inconclusive when an interval spans its line",
                   f"final / control ≤ {1 + tolerance:g} for every perturbed run; perturbations raise {metric}")


@register_finding("dominates")
def dominates(history: pd.DataFrame, results: pd.DataFrame, *, metric: str, by: str, low: Any, high: Any,
              over: str, paper: Paper = "yes", where: Where | None = None, table: str = "results") -> Finding:
    """Is mean(metric | by = low) < mean(metric | by = high) at every value of the sweep field `over`?
    (004: lower capacity on true labels than on random ones at every training-set size.)

    One check per value of `over`: high − low > 0, ± the standard error of the difference of means over
    seeds (none with one seed per group: judged on the difference). A value where both means are +inf
    (vacuous: γ_margin ≤ 0) is inconclusive. The value is the fraction of values where it holds, ± its
    binomial standard error √(f(1−f)/k). `paper = "no"`: the seed says it does not hold at every value.
    """
    df, _ = rows(history, results, table, where)
    vals = numeric(df, metric, "metric")
    for col in (by, over):
        if col not in df.columns:
            raise ValueError(f"dominates: {col!r} is not a column of the results")
    checks = []
    for v, sub in df.groupby(over, sort=True):
        lo, hi = vals[sub.index][sub[by] == low].dropna(), vals[sub.index][sub[by] == high].dropna()
        if not (len(lo) and len(hi)):
            continue
        what = f"{over}={fmt(v)}: {metric} lower at {by}={fmt(low)}"
        if np.isinf(hi.mean()) and np.isinf(lo.mean()):
            checks.append(Check(what + " (both vacuous)", math.nan, math.nan, "inconclusive"))
            continue
        d = float(hi.mean() - lo.mean())
        spread = min(len(hi), len(lo)) > 1 and np.isfinite(d)  # an +inf seed (vacuous) has no spread to show
        se = math.sqrt(hi.var(ddof=1) / len(hi) + lo.var(ddof=1) / len(lo)) if spread else math.nan
        checks.append(at_least(what, d, se, 0.0, strict=True))
    if not checks:
        raise ValueError(f"dominates: no value of {over} has finished runs with both {by} = {low!r} and {high!r}; "
                         f"values of {by} present: {sorted(df[by].unique()) if by in df else []}")
    k, held = len(checks), sum(c.verdict == "agrees" for c in checks)
    f = held / k
    shown = ", ".join(f"{c.what.split(':')[0].split('=')[1]}: {_fmt(c.value)}" for c in checks)
    claim = f"{metric} lower at {by}={fmt(low)} than at {by}={fmt(high)} at every {over}"
    return Finding(f, math.sqrt(f * (1 - f) / k), negate(overall(checks), paper),
                   f"{metric} lower at {by}={fmt(low)} than at {by}={fmt(high)} at {held}/{k} values of {over} "
                   f"(mean difference high − low per value: {shown})", tuple(checks),
                   _fails("at some value the difference's interval lies at or below 0", paper),
                   _expect(claim, paper))
