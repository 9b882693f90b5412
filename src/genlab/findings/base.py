"""The parts every finding shares: `Finding` and `finding()` (checks → verdict), the registry and `evaluate`,
the rows a claim reads (`rows`, its precondition), and how numbers and lines are written. See genlab.findings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np

from genlab.lazy import pd
from genlab.expr import Where
from genlab.registry import Registry, call_entry
from genlab.tables import describe_rows, fmt, numeric, select, split
from genlab.spec.checks import FINDING_KEYS
from genlab.findings.verdicts import (DECIDED, VERDICTS, Check, Evidence, judge, look_at, more_seeds, overall)

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
    more look (genlab.findings.verdicts.spent); None: the rows' seeds are the design (look 0)."""
    bad = [k for k in INJECTED if k in entry]
    if bad:
        raise ValueError(f"finding {entry.get('name')!r}: {bad[0]!r} is set by genlab, not by a spec")
    return entry.get("claim", ""), call_entry(_FINDINGS, {**entry, "design_seeds": design_seeds}, history,
                                              results, ignore=FINDING_KEYS)


def seeds_of(df: pd.DataFrame) -> int:
    """How many seeds the rows hold (1 without a `seed` column)."""
    return int(df["seed"].nunique()) if "seed" in df.columns and len(df) else 1


def look(df: pd.DataFrame, design_seeds: int | None) -> int:
    """The look the rows are judged at (genlab.findings.verdicts.look_at): 0 at the spec's own seeds, k at up to 2^k
    times as many."""
    return look_at(seeds_of(df), design_seeds)


def negate(verdict: str | None, paper: Paper) -> str | None:
    """The verdict on the seed's statement: with paper = "no" the seed says the relation does not hold
    (agrees ↔ differs; no effect, inconclusive and not judged stay)."""
    if paper not in ("yes", "no"):
        raise ValueError(f"paper must be 'yes' or 'no' (does the seed say it holds?), got {paper!r}")
    return {"agrees": "differs", "differs": "agrees"}.get(verdict, verdict) if paper == "no" else verdict


def expect_text(text: str, paper: Paper) -> str:
    return f"not: {text} (paper: no)" if paper == "no" else text


def fails_text(text: str, paper: Paper, margin: float | None = None) -> str:
    tail = "; inconclusive when an interval spans its line"
    if margin is not None:
        tail = f"; no effect when the interval lies within ±{margin:g} of the line" + tail
    if paper == "no":  # the claim's source (a seed, or the paper a seed reproduces) says the relation fails
        return f"the claim is that this relation does not hold (paper = 'no'): agrees only if the data show it " \
               f"does not ({text} is the opposite){tail}"
    return f"differs if {text}{tail}"


def fmt3(v: float) -> str:
    return f"{v:.3g}"


def pm(v: float, e: float) -> str:
    if math.isnan(e):
        return f"{fmt3(v)} (one run, no error bar)"
    return f"{fmt3(v)} ± {fmt3(e)}" if e > 0 else f"{fmt3(v)} (exact)"


def values_text(values) -> str:
    """Distinct values as a reader writes them, sorted: "0.001, 0.01, 0.1" (never "[np.float64(0.001), …]")."""
    vals = [v for v in pd.unique(pd.Series(list(values), dtype=object)) if not (isinstance(v, float) and math.isnan(v))]
    try:
        vals = sorted(vals)
    except TypeError:  # mixed kinds (numbers and text): in the order met
        pass
    return ", ".join(fmt(v.item() if isinstance(v, np.generic) else v) for v in vals) or "none"


def values_present(df: pd.DataFrame, col: str) -> str:
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


def finite_xy(df: pd.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, str]:
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
