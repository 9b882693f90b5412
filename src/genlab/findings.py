"""Findings: a seed's claim stated as checks that can each fail, judged on the results tables.

A finding function is `fn(history, results, *, options...) -> Finding`, registered by name. A spec lists its
findings in `[[findings]]` tables: `name` (the function), `claim` (the seed's words, quoted in the report),
optionally `figure` (the figure file it reads, for the report's links) and the function's options — the
lines the claim draws (a slope band, an intercept sign, a tolerance), for a comparison or a trend `margin`
(the smallest effect that matters, in the claim's units, with a one-line reason from the seed beside it) and,
for a claim the seed says does *not* hold, `paper = "no"`.

    [[findings]]
    name = "slope"
    claim = "normalized test loss vs train loss: slope 1, positive offset (000 Fig. 4-6)"
    x = "normalized_loss.train"
    y = "normalized_loss.test"
    target = 1.0
    tolerance = 0.1            # the slope band [0.9, 1.1], fixed: it does not widen with noisy data
    intercept = "positive"
    intercept_margin = 0.01    # an offset below 0.01 (the seed reports ≈ 0.1) is no offset
    require = "train_error == 0"   # runs that did not get there are left out, and listed

Each check holds an estimate's interval against its line (genlab.verdicts): agrees, differs, no effect at
this scale (inside ± margin), or inconclusive (not enough seeds yet: it says how many more); a check read off
one run has no error bar and is not judged. Errors are standard errors over seeds (sample std / √n, ddof = 1),
never variances; intervals are t intervals at the error rate the look spends (α_k, genlab.verdicts), so
`genlab run --decide` may add seeds and look again without inflating wrong verdicts. A finding agrees when
every check agrees, differs when any check differs. Every finding states what would make it fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np

from genlab.lazy import pd
from genlab.expr import Where
from genlab.registry import Registry, call_entry
from genlab.tables import describe_rows, fmt, numeric, select, split
from genlab.verdicts import (DECIDED, VERDICTS, Check, Evidence, judge, look_at, more_seeds, not_judged, overall,
                             welch)

ENTRY_KEYS = ("claim", "figure")  # keys of a [[findings]] table that are not the function's options
INJECTED = ("design_seeds",)  # options evaluate() passes, never a spec
Paper = Literal["yes", "no"]  # does the seed say the stated relation holds?
__all__ = ["Check", "DECIDED", "VERDICTS", "Finding", "evaluate", "judge", "Evidence"]


@dataclass(frozen=True)
class Finding:
    """value ± error (the headline number; error a standard error, NaN when there is none), the verdict
    ("agrees" | "differs" | "no effect" | "inconclusive"; None if not judged, `reason` says why), one line of
    what was measured, the checks, what it would take to fail, and (inconclusive) the seeds it needs."""

    value: float
    error: float
    verdict: str | None
    text: str
    checks: tuple[Check, ...] = ()
    fails_if: str = ""
    expect: str = ""  # the direction tested, e.g. "τ < 0 (paper: falls)" or "not: lower at every size"
    reason: str = ""  # why it is not judged: "one run: no error bar", "precondition not met: …"
    more: int | None = None  # inconclusive: how many more seeds the current estimate suggests
    unit: str = ""  # what the headline number counts when it is not the metric itself, e.g. "fraction of the 4
    # values of data.n_train where it holds"

    @property
    def agrees(self) -> bool | None:
        """True / False for agrees / differs; None otherwise."""
        return {"agrees": True, "differs": False}.get(self.verdict)

    @property
    def decided(self) -> bool:
        return self.verdict in DECIDED


def finding(value: float, error: float, checks: list[Check] | tuple[Check, ...], text: str, fails_if: str,
            expect: str, paper: "Paper" = "yes", unit: str = "") -> Finding:
    """The Finding of a list of checks: the verdict over them (reversed for paper = "no"), the reason when not
    judged, the seeds an inconclusive one needs."""
    checks = tuple(checks)
    verdict = negate(overall(checks), paper)
    reason = "; ".join(dict.fromkeys(c.reason for c in checks if c.verdict is None and c.reason))
    return Finding(value, error, verdict, text, checks, fails_if, expect, reason if verdict is None else "",
                   more_seeds(checks) if verdict == "inconclusive" else None, unit)


FindingFn = Callable[..., Finding]
_FINDINGS: Registry[FindingFn] = Registry("finding")
register_finding = _FINDINGS.register
get_finding = _FINDINGS.get
list_findings = _FINDINGS.names


def evaluate(entry: dict[str, Any], history: pd.DataFrame, results: pd.DataFrame,
             design_seeds: int | None = None) -> tuple[str, Finding]:
    """(claim, Finding) for one `[[findings]]` entry; options are checked against the function's signature.
    `design_seeds`: the seeds the spec itself lists — every seed beyond them in the rows a finding reads is one
    more look (genlab.verdicts.spent); None: the rows' seeds are the design (look 0)."""
    bad = [k for k in INJECTED if k in entry]
    if bad:
        raise ValueError(f"finding {entry.get('name')!r}: {bad[0]!r} is set by genlab, not by a spec")
    return entry.get("claim", ""), call_entry(_FINDINGS, {**entry, "design_seeds": design_seeds}, history,
                                              results, ignore=ENTRY_KEYS)


def seeds_of(df: pd.DataFrame) -> int:
    """How many seeds the rows hold (1 without a `seed` column)."""
    return int(df["seed"].nunique()) if "seed" in df.columns and len(df) else 1


def look(df: pd.DataFrame, design_seeds: int | None) -> int:
    """The look the rows are judged at (genlab.verdicts.look_at): 0 at the spec's own seeds, k at up to 2^k
    times as many."""
    return look_at(seeds_of(df), design_seeds)


def negate(verdict: str | None, paper: Paper) -> str | None:
    """The verdict on the seed's statement: with paper = "no" the seed says the relation does not hold
    (agrees ↔ differs; no effect, inconclusive and not judged stay)."""
    if paper not in ("yes", "no"):
        raise ValueError(f"paper must be 'yes' or 'no' (does the seed say it holds?), got {paper!r}")
    return {"agrees": "differs", "differs": "agrees"}.get(verdict, verdict) if paper == "no" else verdict


def _expect(text: str, paper: Paper) -> str:
    return f"not: {text} (paper: no)" if paper == "no" else text


def _fails(text: str, paper: Paper, margin: float | None = None) -> str:
    tail = "; inconclusive when an interval spans its line"
    if margin is not None:
        tail = f"; no effect when the interval lies within ±{margin:g} of the line" + tail
    if paper == "no":  # the claim's source (a seed, or the paper a seed reproduces) says the relation fails
        return f"the claim is that this relation does not hold (paper = 'no'): agrees only if the data show it " \
               f"does not ({text} is the opposite){tail}"
    return f"differs if {text}{tail}"


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _pm(v: float, e: float) -> str:
    if math.isnan(e):
        return f"{_fmt(v)} (one run, no error bar)"
    return f"{_fmt(v)} ± {_fmt(e)}" if e > 0 else f"{_fmt(v)} (exact)"


def values_text(values) -> str:
    """Distinct values as a reader writes them, sorted: "0.001, 0.01, 0.1" (never "[np.float64(0.001), …]")."""
    vals = [v for v in pd.unique(pd.Series(list(values), dtype=object)) if not (isinstance(v, float) and math.isnan(v))]
    try:
        vals = sorted(vals)
    except TypeError:  # mixed kinds (numbers and text): in the order met
        pass
    return ", ".join(fmt(v.item() if isinstance(v, np.generic) else v) for v in vals) or "none"


def _values_present(df: pd.DataFrame, col: str) -> str:
    return values_text(df[col])


def counted(df: pd.DataFrame, n: int, table: str) -> str:
    """What `n` counts: runs of the results table, or (run, epoch) rows of the history and how many runs."""
    if table == "history" and "run_id" in df.columns:
        return f"n = {n} (run, epoch) rows of {df['run_id'].nunique()} runs"
    return f"n = {n} runs"


# ---- the tables ------------------------------------------------------------------------------------------
def rows(history: pd.DataFrame, results: pd.DataFrame, table: str, where: str | None,
         require: Where | None = None, show: tuple[str, ...] = ()) -> tuple[pd.DataFrame, str]:
    """The `results` (one row per run) or `history` (per run and epoch) table filtered by `where`, then by
    the claim's precondition `require`; returns (rows, note) where note lists the rows `require` left out."""
    if table not in ("results", "history"):
        raise ValueError(f"table must be 'results' or 'history', got {table!r}")
    df = select(results if table == "results" else history, where)
    kept, dropped = split(df, require)
    note = f"; left out {len(dropped)} of {len(df)} runs not meeting {require}: " \
           f"{describe_rows(dropped, df, show)}" if len(dropped) else ""
    return kept, note


PRECONDITION = "not judged: precondition not met"  # `expect` of a finding whose runs miss the claim's precondition


def unmet(text: str) -> Finding:
    """Not judged (verdict None): too few runs meet the claim's precondition (`require`) to test it — not
    "inconclusive", which means the runs are there but their interval spans the line; the text lists them."""
    return Finding(math.nan, math.nan, None, text, (),
                   "cannot fail on these runs: too few meet the claim's precondition (train them further)",
                   PRECONDITION, reason="precondition not met")


def linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Least squares y = a x + b: (a, standard error of a, b, standard error of b). Needs n ≥ 3."""
    from scipy import stats

    r = stats.linregress(x, y)
    return float(r.slope), float(r.stderr), float(r.intercept), float(r.intercept_stderr)


def _xy(df: pd.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, str]:
    """The finite (x, y) pairs, the rows they come from, and a note listing the rows left out (NaN or ±inf)."""
    xs, ys = numeric(df, x, "x").to_numpy(float), numeric(df, y, "y").to_numpy(float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    return xs[ok], ys[ok], df[ok], missing_note(df, ~ok, f"{x} or {y}")


def missing_note(df: pd.DataFrame, bad: np.ndarray, what: str) -> str:
    """"; left out k of n rows with no finite <what>: <which>" — never dropped without a word. In the history
    (one row per run and epoch) a measure recorded every few epochs is missing at the others by design: there
    the note names the runs with no finite value at any epoch."""
    bad = np.asarray(bad, bool)
    if not bad.any():
        return ""
    if "epoch" in df.columns and "run_id" in df.columns:
        per_run = pd.Series(bad, index=df.index).groupby(df["run_id"]).all()
        none = df.drop_duplicates("run_id")
        none = none[none["run_id"].map(per_run).to_numpy(bool)]
        epochs = f"{int((~bad).sum())} of {len(df)} (run, epoch) rows have it"
        return f"; {epochs}" + (f"; left out {len(none)} of {df['run_id'].nunique()} runs with no finite {what} at "
                                f"any epoch: {describe_rows(none, df.drop_duplicates('run_id'))}" if len(none) else "")
    return f"; left out {int(bad.sum())} of {len(df)} runs with no finite {what}: {describe_rows(df[bad], df)}"


# ---- the finding kinds -----------------------------------------------------------------------------------
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
    xs, ys, df, dropped = _xy(df, x, y)
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
    return finding(a, se, checks, f"slope {_pm(a, se)}, intercept {_pm(b, se_b)} ({counted(df, len(xs), table)}, "
                   f"{s} seed{'s' * (s > 1)})" + note, _fails(" or ".join(lines), "yes", intercept_margin)
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
    xs, ys, df, dropped = _xy(df, x, y)
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
    return finding(tau, se, [check], f"Kendall τ = {_pm(tau, se)} (p = {p:.2g}, {counted(df, n, table)}, {s} "
                   f"seed{'s' * (s > 1)})" + note, _fails(line, paper, margin if sign else None),
                   _expect(check.what, paper), paper)


def _values(df: pd.DataFrame, history: pd.DataFrame, metric: str, change_from: int | None) -> pd.Series:
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
    vals = _values(df, history, metric, change_from)
    if by not in df.columns:
        raise ValueError(f"compare: {by!r} is not a column of the {table} table")
    groups = {v: vals[df[by] == v].dropna() for v in (low, high)}
    for v, g in groups.items():
        if g.empty:
            raise ValueError(f"compare: no finished run with {by} = {fmt(v)}; values present: "
                             f"{_values_present(df, by)}")
    ev = difference(groups[low], groups[high], look(df, design_seeds), design_seeds)
    what = metric if change_from is None else f"change of {metric} since epoch {change_from}"
    claim = f"{what} higher at {by}={fmt(high)} than at {by}={fmt(low)}"
    check = judge(claim, ev, "above", 0.0, strict=True, margin=margin)
    text = (f"{what}: {_fmt(groups[high].mean())} at {by}={fmt(high)} vs {_fmt(groups[low].mean())} at "
            f"{by}={fmt(low)} (difference {_pm(ev.value, ev.error)}; {len(groups[low])} and {len(groups[high])} "
            f"runs)")
    return finding(ev.value, ev.error, [check], text + note,
                   _fails("the difference's interval lies at or below 0", paper, margin), _expect(claim, paper),
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
    spread = f" ± {_fmt(se)}" if se > 0 else ""
    return finding(m, se, checks, f"{metric} = {_fmt(m)}{spread} ({counted(df.loc[v.index], n, table)})" + note,
                   _fails(" or ".join(lines), "yes") if lines else "", ", ".join(c.what for c in checks))


def best_group(df: pd.DataFrame, over: str, by: str) -> tuple[pd.DataFrame, str]:
    """The rows at the value of `over` with the lowest mean `by` (runs that diverged count as missing), and
    a note naming it among the others, e.g. "optim.lr=0.05 (lowest train_loss of 0.005: 0.41, 0.05: 0.003)"."""
    means = numeric(df, by, "best_by").groupby(df[over]).mean().dropna()
    if means.empty:
        diverged = int((df["status"] == "diverged").sum()) if "status" in df.columns else 0
        raise ValueError(f"value: no value of {over} has a run with a finite {by}"
                         + (f" ({diverged} of {len(df)} selected runs diverged)" if diverged else ""))
    best = means.idxmin()
    shown = ", ".join(f"{fmt(k)}: {_fmt(v)}" for k, v in means.items())
    return df[df[over] == best], f"{over}={fmt(best)} (lowest mean {by} of {shown})"


from genlab import findings_runs  # noqa: E402,F401  (registers recovery, dominates and slower)
