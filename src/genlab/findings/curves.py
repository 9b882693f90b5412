"""Findings that set runs against other runs: `recovery` (a perturbed run against its unperturbed control),
`dominates` (one group below another at every value of a sweep field) and `slower` (one group's curve above
another's over the whole run). Registered in genlab.findings; errors are over seeds (genlab.findings.verdicts)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from genlab.lazy import pd
from genlab.expr import Where
from genlab.findings.base import (Check, Evidence, Finding, Paper, expect_text, fails_text, finding, judge,
                                  look, pm, register_finding, rows, seeds_of, values_present)
from genlab.findings.groups import difference
from genlab.tables import fmt, numeric


def tail_level(run: pd.DataFrame, metric: str, window: int) -> float:
    """Mean of `metric` over a run's last `window` epochs (rows after a perturbation excluded): the level a run
    ends at, averaged over the last epochs so that one noisy epoch does not decide it."""
    v = numeric(run[run["event"].isna()] if "event" in run else run, metric, "metric").dropna().to_numpy(float)
    v = v[-window:]
    return float(v.mean()) if len(v) else math.nan


def jumps(run: pd.DataFrame, metric: str) -> list[float]:
    """metric(after) − metric(before) at each perturbation of a run: the rows with and without `event`."""
    out = []
    for epoch in run.loc[run["event"].notna(), "epoch"]:
        at = run[run["epoch"] == epoch]
        before, after = at.loc[at["event"].isna(), metric], at.loc[at["event"].notna(), metric]
        if len(before) and len(after):
            out.append(float(after.iloc[0]) - float(before.iloc[0]))
    return out


def over_seeds(values: list[float], look_: int, design: int | None = None) -> Evidence:
    """The mean of per-seed values ± sample std / √n (t, n − 1 df); NaN error for one seed."""
    v = np.asarray(values, float)
    if len(v) < 2:
        return Evidence(float(v.mean()) if len(v) else math.nan, math.nan)
    return Evidence(float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))), len(v) - 1, look_, len(v), 1.0,
                    design or 0)


@register_finding("recovery")
def recovery(history: pd.DataFrame, results: pd.DataFrame, *, metric: str = "train_loss",
             by: str = "events.perturb_std", control: Any = 0.0, match: list[str] = ["seed"],
             tolerance: float = 0.1, window: int = 5, where: Where | None = None,
             design_seeds: int | None = None) -> Finding:
    """After perturbations, does `metric` come back to where an unperturbed run gets? (000 §3.4–3.6)

    Per perturbed run: r = (its level over the last `window` epochs) / (the same for its control: the run with
    `by` = `control` and the same `match` columns — same seed, same data order). Per value of `by`: the mean r
    over seeds ± its standard error over seeds. Checks: each mean r ≤ 1 + tolerance; and the perturbations set
    the metric back (mean jump after − before > 0, over runs), without which there is nothing to recover from.
    One seed: not judged. The value is the worst (largest) mean r.
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
                         f"(values present: {values_present(h, by)})")
    levels = {tuple(k) if isinstance(k, tuple) else (k,): tail_level(run, metric, window)
              for k, run in ctrl.groupby(match)}
    ratios: dict[Any, list[float]] = {}
    per_run_jumps = []
    for rid, run in h[h[by] != control].groupby("run_id", sort=False):
        key = tuple(run.iloc[0][match])
        if key not in levels:
            raise ValueError(f"recovery: run {rid} has no control with {match} = {key!r}")
        ratios.setdefault(run.iloc[0][by], []).append(tail_level(run, metric, window) / levels[key])
        j = jumps(run, metric)
        if j:
            per_run_jumps.append(float(np.mean(j)))
    if not ratios:
        raise ValueError(f"recovery: no perturbed run (every run has {by} = {control!r})")
    k = look(h, design_seeds)
    checks = [judge(f"{by}={fmt(v)}: final / control ≤ {1 + tolerance:g}", over_seeds(r, k, design_seeds), "below",
                    1 + tolerance)
              for v, r in sorted(ratios.items())]
    worst = max(checks, key=lambda c: c.value)
    per_value = ", ".join(c.what.split(":")[0] + ": " + pm(c.value, c.error) for c in checks)
    text = f"final {metric} / control's, mean over {seeds_of(h)} seed(s): {per_value} (last {window} epochs)"
    if per_run_jumps:
        ev = over_seeds(per_run_jumps, k, design_seeds)
        checks.append(judge(f"perturbations raise {metric} (mean jump > 0)", ev, "above", 0.0, strict=True))
        text += f"; jump at a perturbation {pm(ev.value, ev.error)} (mean over {len(per_run_jumps)} runs)"
    return finding(worst.value, worst.error, checks, text,
                   f"differs if the mean over seeds ends more than {tolerance:.0%} above the control beyond its "
                   f"error bar, or the perturbations do not raise {metric}; inconclusive when an interval spans "
                   f"its line", f"final / control ≤ {1 + tolerance:g} for every perturbation size; perturbations "
                   f"raise {metric}")


@register_finding("dominates")
def dominates(history: pd.DataFrame, results: pd.DataFrame, *, metric: str, by: str, low: Any, high: Any,
              over: str, margin: float | None = None, paper: Paper = "yes", where: Where | None = None,
              table: str = "results", design_seeds: int | None = None) -> Finding:
    """Is mean(metric | by = low) < mean(metric | by = high) at every value of the sweep field `over`?
    (004: lower capacity on true labels than on random ones at every training-set size.)

    One check per value of `over`: high − low > 0, ± the standard error of the difference of means over
    seeds (Welch; not judged with one seed per group); no effect within ±`margin`. A value where both means
    are +inf (vacuous: γ_margin ≤ 0) is not judged. The value is the fraction of the k values of `over` where
    the check agrees (a count, no error bar; the text gives "j of k"). `paper = "no"`: the seed says it does not hold at every value.
    """
    df, _ = rows(history, results, table, where)
    vals = numeric(df, metric, "metric")
    for col in (by, over):
        if col not in df.columns:
            raise ValueError(f"dominates: {col!r} is not a column of the results")
    checks, k = [], look(df, design_seeds)
    for v, sub in df.groupby(over, sort=True):
        lo, hi = vals[sub.index][sub[by] == low].dropna(), vals[sub.index][sub[by] == high].dropna()
        if not (len(lo) and len(hi)):
            continue
        what = f"{over}={fmt(v)}: {metric} lower at {by}={fmt(low)}"
        if np.isinf(hi.mean()) and np.isinf(lo.mean()):
            checks.append(Check(what, math.nan, math.nan, None, reason="both vacuous (+inf)"))
            continue
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):  # an +inf seed (vacuous): no spread to show
            d = float(hi.mean() - lo.mean())
            checks.append(Check(what, d, math.nan, None, reason="a vacuous (+inf) seed: no error bar"))
            continue
        checks.append(judge(what, difference(lo, hi, k, design_seeds), "above", 0.0, strict=True, margin=margin))
    if not checks:
        raise ValueError(f"dominates: no value of {over} has finished runs with both {by} = {fmt(low)} and "
                         f"{fmt(high)}; values of {by} present: {values_present(df, by) if by in df else ''}")
    held = sum(c.verdict == "agrees" for c in checks)
    shown = ", ".join(f"{c.what.split(':')[0].split('=')[1]}: {pm(c.value, c.error)}" for c in checks)
    claim = f"{metric} lower at {by}={fmt(low)} than at {by}={fmt(high)} at every {over}"
    return finding(held / len(checks), math.nan, checks,
                   f"{metric} lower at {by}={fmt(low)} than at {by}={fmt(high)}: agrees at {held} of {len(checks)} "
                   f"values of {over} (difference high − low per value: {shown})",
                   fails_text("at some value the difference's interval lies at or below 0", paper, margin),
                   expect_text(claim, paper), paper, unit=f"fraction of the {len(checks)} values of {over} where it holds")


def first_reach(y: np.ndarray, level: float) -> float:
    """The (fractional, linearly interpolated) epoch at which the curve y[epoch] first gets to ≤ level; NaN if
    it never does."""
    hit = np.nonzero(y <= level)[0]
    if not len(hit):
        return math.nan
    i = int(hit[0])
    return 0.0 if i == 0 else i - 1 + float((y[i - 1] - level) / (y[i - 1] - y[i]))


def delay(lo: np.ndarray, hi: np.ndarray, levels: int = 20) -> float:
    """Mean over `levels` loss levels that both curves pass through (from the lower of their starts to the higher
    of their lowest values, evenly spaced) of epochs(hi reaches it) − epochs(lo reaches it): how much later the
    high run gets to the same loss. NaN when the curves share no level."""
    top, bottom = min(lo[0], hi[0]), max(lo.min(), hi.min())
    if not top > bottom:
        return math.nan
    ls = np.linspace(top, bottom, levels)
    return float(np.mean([first_reach(hi, v) - first_reach(lo, v) for v in ls]))


def progress_gap(lo: np.ndarray, hi: np.ndarray) -> float:
    """Mean over epochs ≥ 1 of [log hi(e) − log hi(0)] − [log lo(e) − log lo(0)]: how much less of its loss the
    high run has shed than the low one (fractions, so a gap at initialization does not count)."""
    lo, hi = np.log(np.maximum(lo, 1e-300)), np.log(np.maximum(hi, 1e-300))
    return float(np.mean((hi[1:] - hi[0]) - (lo[1:] - lo[0]))) if len(lo) > 1 else math.nan


STATISTICS = {"delay": (delay, "epochs"), "progress": (progress_gap, "log loss")}


@register_finding("slower")
def slower(history: pd.DataFrame, results: pd.DataFrame, *, metric: str = "train_loss", by: str, low: Any,
           high: Any, statistic: str = "delay", match: list[str] = ["seed"], margin: float | None = None,
           paper: Paper = "yes", where: Where | None = None, design_seeds: int | None = None) -> Finding:
    """Does the run at `by` = high converge slower than its match at `by` = low, over the whole curve?
    (000 §3.4: "with a larger init std it takes slightly longer to converge".)

    Per matched pair (same `match` columns: same seed, same data order), one of two statistics of the two
    curves metric[epoch] (epoch 0 = initialization):
    - "delay" (default; units: epochs): the mean over the loss levels both curves pass through of how many
      epochs later the high run first gets down to the level than the low one ("takes longer to converge");
    - "progress" (units: log loss): the mean over epochs of how much less of its loss (in log) the high run has
      shed since its own start — speed with any gap at initialization removed.
    Then the mean over pairs ± its standard error over pairs (t, n − 1 df); > 0 means slower. No effect when
    the interval lies within ±`margin` (in the statistic's units). One pair: not judged.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"slower: statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    stat, unit = STATISTICS[statistic]
    h, _ = rows(history, results, "history", where)
    h = h[h["event"].isna()] if "event" in h.columns else h
    for c in (by, "epoch", *match):
        if c not in h.columns:
            raise ValueError(f"slower: {c!r} is not a column of the history")
    curve = {}
    for key, run in h[h[by].isin([low, high])].groupby([by, *match], sort=False):
        curve[key] = numeric(run.sort_values("epoch"), metric, "metric").to_numpy(float)
    gaps = []
    for (v, *m), y in curve.items():
        other = curve.get((low, *m))
        if v == high and other is not None:
            e = min(len(y), len(other))
            gaps.append(stat(other[:e], y[:e]))
    gaps = [g for g in gaps if np.isfinite(g)]
    if not gaps:
        raise ValueError(f"slower: no pair of runs with {by} = {fmt(low)} and {fmt(high)}, the same "
                         f"{', '.join(match)} and a common range of {metric}; values of {by} present: "
                         f"{values_present(h, by)}")
    ev = over_seeds(gaps, look(h, design_seeds), design_seeds)
    claim = f"{metric} converges slower at {by}={fmt(high)} than at {by}={fmt(low)} ({statistic}, {unit})"
    check = judge(claim, ev, "above", 0.0, strict=True, margin=margin)
    text = (f"{statistic} of {by}={fmt(high)} behind {fmt(low)} in {metric}: {pm(ev.value, ev.error)} {unit} over "
            f"{len(gaps)} seed pair(s)")
    return finding(ev.value, ev.error, [check], text,
                   fails_text(f"the {statistic}'s interval lies at or below 0 (the high run converges as fast or faster)",
                          paper, margin), expect_text(claim, paper), paper)
