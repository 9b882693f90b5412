"""Findings: a seed's claim stated as checks that can each fail, judged on the results tables.

A finding function is `fn(history, results, *, options...) -> Finding`, registered by name. A spec lists its
findings in `[[findings]]` tables: `name` (the function), `claim` (the seed's words, quoted in the report),
optionally `figure` (the figure file it reads, for the report's links) and the function's options — the
lines the claim draws (a slope band, an intercept sign, a tolerance) and, for a claim the seed says does
*not* hold, `paper = "no"`.

    [[findings]]
    name = "slope"
    claim = "normalized test loss vs train loss: slope 1, positive offset (000 Fig. 4-6)"
    x = "normalized_loss.train"
    y = "normalized_loss.test"
    target = 1.0
    tolerance = 0.1            # the slope band [0.9, 1.1], fixed: it does not widen with noisy data
    intercept = "positive"
    require = "train_error == 0"   # runs that did not get there are left out, and listed

Each check compares a number's ±2 standard-error interval with its line: **agrees** when the whole interval
is on the claim's side, **differs** when it is wholly on the other side, **inconclusive** when it spans the
line. A finding agrees when every check agrees, differs when any check differs, else is inconclusive; a
finding with no line is not judged (verdict None). Every finding states what would make it fail.
Uncertainties are standard errors (or, where said, standard deviations across seeds), never variances.
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

ENTRY_KEYS = ("claim", "figure")  # keys of a [[findings]] table that are not the function's options
Z = 2.0  # an interval is the value ± 2 standard errors (≈ 95 % for a normal estimate)
VERDICTS = ("agrees", "differs", "inconclusive")
Paper = Literal["yes", "no"]  # does the seed say the stated relation holds?


@dataclass(frozen=True)
class Check:
    """One line of a claim: `what` (e.g. "slope in [0.9, 1.1]"), the value ± its standard error (NaN: no
    error estimate, judged on the value alone) and the verdict."""

    what: str
    value: float
    error: float
    verdict: str


@dataclass(frozen=True)
class Finding:
    """value ± error (the headline number; error a standard error, NaN when there is none), the verdict
    ("agrees" | "differs" | "inconclusive"; None if not judged), one line of what was measured, the checks,
    and what it would take to fail."""

    value: float
    error: float
    verdict: str | None
    text: str
    checks: tuple[Check, ...] = ()
    fails_if: str = ""
    expect: str = ""  # the direction tested, e.g. "τ < 0 (paper: falls)" or "not: lower at every size"

    @property
    def agrees(self) -> bool | None:
        """True / False for agrees / differs; None when inconclusive or not judged."""
        return {"agrees": True, "differs": False}.get(self.verdict)


FindingFn = Callable[..., Finding]
_FINDINGS: Registry[FindingFn] = Registry("finding")
register_finding = _FINDINGS.register
get_finding = _FINDINGS.get
list_findings = _FINDINGS.names


def evaluate(entry: dict[str, Any], history: pd.DataFrame, results: pd.DataFrame) -> tuple[str, Finding]:
    """(claim, Finding) for one `[[findings]]` entry; options are checked against the function's signature."""
    return entry.get("claim", ""), call_entry(_FINDINGS, entry, history, results, ignore=ENTRY_KEYS)


# ---- judging: an interval against a line -------------------------------------------------------------------
def interval(v: float, e: float) -> tuple[float, float]:
    half = 0.0 if math.isnan(e) else Z * e
    return v - half, v + half


def at_least(what: str, v: float, e: float, line: float, strict: bool = False) -> Check:
    """Claim v ≥ line (v > line if `strict`)."""
    lo, hi = interval(v, e)
    yes = lo > line if strict else lo >= line
    no = hi <= line if strict else hi < line
    return Check(what, v, e, "agrees" if yes else "differs" if no else "inconclusive")


def at_most(what: str, v: float, e: float, line: float, strict: bool = False) -> Check:
    """Claim v ≤ line (v < line if `strict`)."""
    c = at_least(what, -v, e, -line, strict)
    return Check(what, v, e, c.verdict)


def within(what: str, v: float, e: float, lo_line: float, hi_line: float) -> Check:
    """Claim lo_line ≤ v ≤ hi_line."""
    lo, hi = interval(v, e)
    yes, no = lo_line <= lo and hi <= hi_line, hi < lo_line or lo > hi_line
    return Check(what, v, e, "agrees" if yes else "differs" if no else "inconclusive")


def overall(checks: list[Check] | tuple[Check, ...]) -> str | None:
    """differs if any check differs; else inconclusive if any is; agrees if all agree; None without checks."""
    if not checks:
        return None
    verdicts = {c.verdict for c in checks}
    return "differs" if "differs" in verdicts else "inconclusive" if "inconclusive" in verdicts else "agrees"


def negate(verdict: str | None, paper: Paper) -> str | None:
    """The verdict on the seed's statement: with paper = "no" the seed says the relation does not hold."""
    if paper not in ("yes", "no"):
        raise ValueError(f"paper must be 'yes' or 'no' (does the seed say it holds?), got {paper!r}")
    return {"agrees": "differs", "differs": "agrees"}.get(verdict, verdict) if paper == "no" else verdict


def _expect(text: str, paper: Paper) -> str:
    return f"not: {text} (paper: no)" if paper == "no" else text


def _fails(text: str, paper: Paper) -> str:
    if paper == "no":
        return f"the seed says this does not hold: agrees only if the data show it does not ({text} is the " \
               f"opposite); inconclusive when an interval spans its line"
    return f"differs if {text}; inconclusive when an interval spans its line"


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _pm(v: float, e: float) -> str:
    return f"{_fmt(v)} ± {_fmt(e)}" if not math.isnan(e) else f"{_fmt(v)} (no error bar)"


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


def unmet(text: str) -> Finding:
    """Inconclusive: too few runs meet the claim's precondition (`require`) to test it; the text lists them."""
    return Finding(math.nan, math.nan, "inconclusive", text, (),
                   "cannot fail on these runs: too few meet the claim's precondition (train them further)",
                   "precondition not met")


def linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Least squares y = a x + b: (a, standard error of a, b, standard error of b). Needs n ≥ 3."""
    from scipy import stats

    r = stats.linregress(x, y)
    return float(r.slope), float(r.stderr), float(r.intercept), float(r.intercept_stderr)


def _xy(df: pd.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = numeric(df, x, "x").to_numpy(float), numeric(df, y, "y").to_numpy(float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    return xs[ok], ys[ok]


# ---- the finding kinds -----------------------------------------------------------------------------------
@register_finding("slope")
def slope(history: pd.DataFrame, results: pd.DataFrame, *, x: str, y: str, log_x: bool = False,
          log_y: bool = False, target: float | None = None, tolerance: float = 0.1,
          intercept: Literal["any", "positive", "negative"] = "any", require: Where | None = None,
          where: Where | None = None, table: str = "results") -> Finding:
    """The least-squares line y = a x + b over the runs (optionally in log space), a and b ± standard errors.

    Checks: a in the fixed band [target − tolerance, target + tolerance]; b > 0 (`intercept = "positive"`)
    or b < 0. `require` is the claim's precondition (e.g. "train_error == 0"): runs failing it are left out
    of the fit and listed.
    """
    df, note = rows(history, results, table, where, require, show=(x, "train_error"))
    xs, ys = _xy(df, x, y)
    xs, ys = (np.log(xs) if log_x else xs), (np.log(ys) if log_y else ys)
    if len(xs) < 3:
        if note:  # the runs exist but miss the claim's precondition: this profile cannot test the claim
            return unmet(f"slope of {y} vs {x}: {len(xs)} runs meet {require}, 3 needed{note}")
        raise ValueError(f"slope of {y} vs {x}: needs at least 3 runs with finite values, got {len(xs)}")
    a, se, b, se_b = linear_fit(xs, ys)
    checks, lines = [], []
    if target is not None:
        lo, hi = target - tolerance, target + tolerance
        checks.append(within(f"slope in [{lo:g}, {hi:g}]", a, se, lo, hi))
        lines.append(f"the slope's interval lies outside [{lo:g}, {hi:g}]")
    if intercept != "any":
        sign = 1.0 if intercept == "positive" else -1.0
        checks.append(at_least(f"intercept {'>' if sign > 0 else '<'} 0", sign * b, se_b, 0.0, strict=True))
        checks[-1] = Check(checks[-1].what, b, se_b, checks[-1].verdict)
        lines.append(f"the intercept's interval lies {'at or below' if sign > 0 else 'at or above'} 0")
    return Finding(a, se, overall(checks), f"slope {_pm(a, se)}, intercept {_pm(b, se_b)} (n = {len(xs)} runs)"
                   + note, tuple(checks), _fails(" or ".join(lines), "yes") if lines else "",
                   ", ".join(c.what for c in checks))


@register_finding("correlation")
def correlation(history: pd.DataFrame, results: pd.DataFrame, *, x: str, y: str, sign: int = 1,
                band: float = 0.3, paper: Paper = "yes", require: Where | None = None, where: Where | None = None,
                table: str = "results") -> Finding:
    """Kendall's τ between x and y over the runs, ± its standard error under independence,
    √(2(2n+5) / (9n(n−1))).

    sign = +1 (y grows with x) or −1 (falls): τ·sign > 0. sign = 0 ("no direct correlation"): |τ| ≤ band.
    `paper = "no"`: the seed says the stated direction does not hold; the verdict is reversed.
    """
    from scipy import stats

    if sign not in (-1, 0, 1):
        raise ValueError(f"correlation: sign must be +1 (grows), -1 (falls) or 0 (no correlation), got {sign!r}")
    df, note = rows(history, results, table, where, require)
    xs, ys = _xy(df, x, y)
    n = len(xs)
    if n < 3:
        if note:
            return unmet(f"correlation of {y} with {x}: {n} runs meet {require}, 3 needed{note}")
        raise ValueError(f"correlation of {y} with {x}: needs at least 3 runs with finite values, got {n}")
    tau, p = stats.kendalltau(xs, ys)
    tau = float(tau) if np.isfinite(tau) else 0.0  # constant x or y: no ordering, τ = 0
    se = math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))
    if sign == 0:
        check, line = within(f"|τ| ≤ {band:g}", tau, se, -band, band), f"τ's interval lies outside ±{band:g}"
    else:
        word = "grows" if sign > 0 else "falls"
        check = at_least(f"τ {'>' if sign > 0 else '<'} 0 ({y} {word} with {x})", sign * tau, se, 0.0, strict=True)
        check, line = Check(check.what, tau, se, check.verdict), f"τ's interval lies {'≤' if sign > 0 else '≥'} 0"
    return Finding(tau, se, negate(check.verdict, paper), f"Kendall τ = {_pm(tau, se)} (p = {p:.2g}, n = {n})"
                   + note, (check,), _fails(line, paper), _expect(check.what, paper))


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


@register_finding("compare")
def compare(history: pd.DataFrame, results: pd.DataFrame, *, metric: str, by: str, low: Any, high: Any,
            change_from: int | None = None, paper: Paper = "yes", require: Where | None = None,
            where: Where | None = None, table: str = "results") -> Finding:
    """mean(metric | by = high) − mean(metric | by = low), ± the standard error of the difference (sample
    std, ddof=1, over runs). Claim: the difference is > 0. With `change_from` (history) each run's value is
    its change since that epoch — "slower to converge" is a smaller fall from the start, not a higher level.
    One run in a group gives no error estimate: inconclusive (add seeds).
    """
    df, note = rows(history, results, table, where, require)
    vals = _values(df, history, metric, change_from)
    if by not in df.columns:
        raise ValueError(f"compare: {by!r} is not a column of the {table} table")
    groups = {v: vals[df[by] == v].dropna() for v in (low, high)}
    for v, g in groups.items():
        if g.empty:
            raise ValueError(f"compare: no finished run with {by} = {v!r}; values present: {sorted(df[by].unique())}")
    d = float(groups[high].mean() - groups[low].mean())
    what = metric if change_from is None else f"change of {metric} since epoch {change_from}"
    head = f"{what}: {_fmt(groups[high].mean())} at {by}={high} vs {_fmt(groups[low].mean())} at {by}={low}"
    claim = f"{what} higher at {by}={high} than at {by}={low}"
    if min(len(g) for g in groups.values()) < 2:
        check = Check(claim, d, math.nan, "inconclusive")
        text = f"{head} (difference {_fmt(d)}; one run in a group: no error bar, add seeds)"
    else:
        se = math.sqrt(sum(g.std(ddof=1) ** 2 / len(g) for g in groups.values()))
        check = at_least(claim, d, se, 0.0, strict=True)
        text = f"{head} (difference {_pm(d, se)}, {len(groups[low])} and {len(groups[high])} runs)"
    return Finding(d, check.error, negate(check.verdict, paper), text + note, (check,),
                   _fails("the difference's interval lies at or below 0", paper), _expect(claim, paper))


@register_finding("value")
def value(history: pd.DataFrame, results: pd.DataFrame, *, metric: str, where: Where | None = None,
          table: str = "results", target: float | None = None, tolerance: float = 0.0,
          at_most: float | None = None, at_least: float | None = None, require: Where | None = None,
          stat: Literal["mean", "max", "min"] = "mean", best_over: str | None = None,
          best_by: str = "train_loss") -> Finding:
    """The mean of `metric` over the selected runs ± its standard error, or (`stat`) its largest or smallest
    value — for a claim about every run ("every network fits its training set": max ≤ 0), exact, no error
    bar. Checks: within the fixed band target ± tolerance; ≤ at_most; ≥ at_least. One run is judged on its
    own value (the claim is about it). `best_over` (e.g. "optim.lr"): only the runs at the value of that sweep
    field whose runs reach the lowest mean `best_by` (training loss: chosen without looking at the test set).
    """
    df, note = rows(history, results, table, where, require)
    if best_over is not None:
        df, picked = best_group(df, best_over, best_by)
        note = f" at {picked}" + note
    v = numeric(df, metric, "metric").dropna()
    if v.empty:
        diverged = int((df["status"] == "diverged").sum()) if "status" in df.columns else 0
        raise ValueError(f"value: no finished run has {metric!r}" + (f" where {where}" if where else "")
                         + (f" ({diverged} of {len(df)} selected runs diverged)" if diverged else ""))
    m, se = float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    if stat != "mean":
        m, se, metric = float(v.max() if stat == "max" else v.min()), math.nan, f"{stat} {metric}"
    checks, lines = [], []
    if target is not None:
        checks.append(within(f"{metric} in [{target - tolerance:g}, {target + tolerance:g}]", m, se,
                             target - tolerance, target + tolerance))
        lines.append(f"the interval lies outside [{target - tolerance:g}, {target + tolerance:g}]")
    if at_most is not None:
        checks.append(_at_most(f"{metric} ≤ {at_most:g}", m, se, at_most))
        lines.append(f"the interval lies above {at_most:g}")
    if at_least is not None:
        checks.append(_at_least(f"{metric} ≥ {at_least:g}", m, se, at_least))
        lines.append(f"the interval lies below {at_least:g}")
    spread = f" ± {_fmt(se)}" if not math.isnan(se) else ""
    return Finding(m, se, overall(checks), f"{metric} = {_fmt(m)}{spread} (n = {len(v)} runs)" + note,
                   tuple(checks), _fails(" or ".join(lines), "yes") if lines else "",
                   ", ".join(c.what for c in checks))


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


_at_most, _at_least = at_most, at_least  # `value`'s options shadow the names inside it

from genlab import findings_runs  # noqa: E402,F401  (registers recovery and dominates)
