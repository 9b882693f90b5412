"""Verdicts: an estimate's interval held against a claim's line, valid however many times it is looked at.

A claim is judged on an estimate v with standard error e (a standard deviation over seeds / √n, never a
variance) and t degrees of freedom df (inf: a normal estimate). Its interval is v ± q·e with
q = t⁻¹(1 − α_k/2; df). Four verdicts are decided, one is not:

- **agrees**: the whole interval lies on the claim's side of its line;
- **differs**: the whole interval lies on the other side;
- **no effect**: the claim names `margin`, the smallest effect that matters in its units, and the whole
  interval lies within line ± margin — "no effect of any size that matters at this scale";
- **inconclusive**: none of these — not enough runs yet (`more` says how many more seeds the current
  estimate suggests: the smallest n' whose interval, with the same estimate and e·√(n/n'), would decide);
- **not judged** (verdict None): no error bar (one run), or the claim's precondition is not met (`reason`).

Looking again after more seeds must not inflate wrong verdicts. The looks are the spec's own seeds (look 0) and
then each doubling of them — `genlab run --decide` adds seeds in rounds that double the count, n₀ → 2n₀ → 4n₀
…, so look k is at up to n₀·2^k seeds (`look_at`). Look k spends α_k = α / ((k + 1)(k + 2)) of the total
error rate α = 0.05, and Σ_k α_k = α: by the union bound the intervals hold at every look at once with
probability ≥ 1 − α, so a claim whose true value lies on its line gets a wrong verdict (agrees or differs) at
rate ≤ α however the looks are stopped — a group-sequential design with α-spending (Bonferroni spending over an
open-ended number of looks), valid under optional stopping like the time-uniform confidence sequences of
Howard, Ramdas, McAuliffe & Sekhon (Ann. Statist. 2021), and simpler. Doubling keeps the looks few: at 8n₀
seeds the interval is spent at α/20, where one look per added seed would have spent it ever thinner and never
reached a verdict the extra seeds could give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05  # the total rate of wrong verdicts over all looks at a claim
DECIDED = ("agrees", "differs", "no effect")
VERDICTS = (*DECIDED, "inconclusive")
MORE_MAX = 64  # "more seeds needed" is searched up to this many extra seeds; beyond: None ("many")


def spent(look: int, alpha: float = ALPHA) -> float:
    """α_k = α / ((k+1)(k+2)): α/2 at the design's own look, α/6 at the next, …; Σ_k α_k = α."""
    if look < 0:
        raise ValueError(f"look must be ≥ 0, got {look}")
    return alpha / ((look + 1) * (look + 2))


def look_at(seeds: int, design: int | None) -> int:
    """The look `seeds` seeds per sweep point are judged at, when the spec itself lists `design`: 0 up to the
    design, then k for up to design·2^k seeds (a round of `--decide` doubles them). None: 0."""
    if not design or seeds <= design:
        return 0
    return math.ceil(math.log2(seeds / design) - 1e-12)


def critical(alpha: float, df: float) -> float:
    """q with P(|T_df| > q) = alpha (the normal's when df is inf)."""
    from scipy import stats  # on first use: checking a spec imports this module, and needs no scipy

    return float(stats.norm.ppf(1 - alpha / 2) if math.isinf(df) else stats.t.ppf(1 - alpha / 2, df))


@dataclass(frozen=True)
class Evidence:
    """An estimate and what its interval needs: value ± error (a standard error; NaN: none, one run; 0: an exact
    value, no sampling error), df of its t, the look it is taken at, and how it grows with seeds: `n` seeds now
    (the error scales as 1/√n) and `df_per_seed` (the df one more seed adds)."""

    value: float
    error: float
    df: float = math.inf
    look: int = 0
    n: int = 0
    df_per_seed: float = 1.0
    design: int = 0  # the spec's own seeds (0: unknown; the current n is taken as the base of later looks)

    @property
    def alpha(self) -> float:
        return spent(self.look)

    def interval(self) -> tuple[float, float]:
        half = 0.0 if self.error == 0 else critical(self.alpha, self.df) * self.error
        return self.value - half, self.value + half

    def with_seeds(self, extra: int) -> "Evidence":
        """The same estimate as if `extra` more seeds had been added: error·√(n/(n+extra)), df and look grown."""
        f = math.sqrt(self.n / (self.n + extra)) if self.n > 0 else 1.0
        n = self.n + extra
        look = look_at(n, self.design) if self.design else self.look + look_at(n, max(self.n, 1))
        return Evidence(self.value, self.error * f, self.df + extra * self.df_per_seed, look, n, self.df_per_seed,
                        self.design)


@dataclass(frozen=True)
class Check:
    """One line of a claim: `what` (e.g. "slope in [0.9, 1.1]"), the value ± its standard error, the verdict
    (None: not judged, `reason` says why), the interval it was judged on, and for an inconclusive check how many
    more seeds its estimate suggests (`more`; None: more than MORE_MAX or not estimable)."""

    what: str
    value: float
    error: float
    verdict: str | None
    lo: float = math.nan
    hi: float = math.nan
    more: int | None = None
    reason: str = ""
    margin: float | None = None


# ---- one rule per kind of line -------------------------------------------------------------------------------
def _above(lo: float, hi: float, line: float, strict: bool) -> str:
    if lo > line or (not strict and lo >= line):
        return "agrees"
    if hi < line or (strict and hi <= line):
        return "differs"
    return "inconclusive"


def _rule(kind: str, lo: float, hi: float, line: float | tuple[float, float], strict: bool,
          margin: float | None) -> str:
    centre = sum(line) / 2 if isinstance(line, tuple) else line
    if margin is not None and kind != "within" and centre - margin <= lo and hi <= centre + margin:
        return "no effect"
    if kind == "above":
        return _above(lo, hi, line, strict)
    if kind == "below":
        return _above(-hi, -lo, -line, strict)
    a, b = line
    return "agrees" if a <= lo and hi <= b else "differs" if hi < a or lo > b else "inconclusive"


def judge(what: str, ev: Evidence, kind: str, line: float | tuple[float, float], *, strict: bool = False,
          margin: float | None = None) -> Check:
    """The check of `ev` against a line: kind "above" (claim v > line, ≥ unless strict), "below", or "within"
    (line = (a, b): a ≤ v ≤ b). `margin` (> 0, in v's units) adds "no effect" for an interval inside
    line ± margin. No error bar (NaN) → not judged ("one run")."""
    if margin is not None and not margin > 0:
        raise ValueError(f"margin must be a positive number (the smallest effect that matters), got {margin!r}")
    if math.isnan(ev.error) or math.isnan(ev.value):
        return Check(what, ev.value, ev.error, None, reason="one run: no error bar (add seeds)", margin=margin)
    lo, hi = ev.interval()
    verdict = _rule(kind, lo, hi, line, strict, margin)
    more = None
    if verdict == "inconclusive" and ev.n > 0 and ev.error > 0:
        more = next((k for k in range(1, MORE_MAX + 1)
                     if _rule(kind, *ev.with_seeds(k).interval(), line, strict, margin) != "inconclusive"), None)
    return Check(what, ev.value, ev.error, verdict, lo, hi, more, margin=margin)


def not_judged(what: str, value: float, reason: str) -> Check:
    return Check(what, value, math.nan, None, reason=reason)


def overall(checks) -> str | None:
    """differs if any check differs; else inconclusive if any is; else not judged (None) if any is; else no
    effect if any check found none; else agrees. None without checks."""
    verdicts = [c.verdict for c in checks]
    if not verdicts:
        return None
    for v in ("differs", "inconclusive", None, "no effect"):
        if v in verdicts:
            return v
    return "agrees"


def more_seeds(checks) -> int | None:
    """Seeds the inconclusive checks need together: the largest `more` among them (None if any is unknown)."""
    need = [c.more for c in checks if c.verdict == "inconclusive"]
    return None if not need or None in need else max(need)


def welch(a, b) -> tuple[float, float, float]:
    """mean(b) − mean(a), its standard error √(s_a²/n_a + s_b²/n_b) (sample std, ddof = 1) and the
    Welch–Satterthwaite degrees of freedom. Needs ≥ 2 values in each."""
    na, nb = len(a), len(b)
    va, vb = float(a.var(ddof=1)) / na, float(b.var(ddof=1)) / nb
    d, se = float(b.mean() - a.mean()), math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1)) if va + vb > 0 else math.inf
    return d, se, df
