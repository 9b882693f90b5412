"""The report's claims: each `[[findings]]` entry of a section judged (`judge`), the verdict table that opens the
page (every check of a claim with its number and verdict, what an undecided one needs), each experiment's
findings list, and the link from a claim to the figure it reads.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass

import pandas as pd

from genlab.findings import Check, Finding, evaluate, negate
from genlab.spec.loader import Experiment

def seed_of(exp: Experiment) -> str:
    """The seed document a spec belongs to: its folder under experiments/ (e.g. "000"), else "other"."""
    parent = exp.path.parent.name if exp.path is not None else ""
    return parent if re.fullmatch(r"\d{3}", parent) else "other"


HOLDS = {"agrees": "holds", "differs": "does not hold", "no effect": "shows no effect at this scale",
         "inconclusive": "is undecided", None: "is not judged"}


FINDING_COLUMNS = ("metric", "x", "y")  # the options of a [[findings]] entry that name the columns it reads


ZOOM = "this.classList.toggle('big')"  # an image's onclick: it fills the window; click again: back
VERDICT_CLASS = {"agrees": "yes", "differs": "no", "no effect": "noeff", "inconclusive": "maybe", None: "na"}


@dataclass(frozen=True)
class Section:
    exp: Experiment
    history: pd.DataFrame
    results: pd.DataFrame
    design_seeds: int | None = None  # the spec's own seeds; more in the rows are `run --decide`'s later looks


@dataclass(frozen=True)
class Judged:
    """One `[[findings]]` entry of a section, evaluated: its Finding, or the reason it cannot be computed."""

    exp: Experiment
    index: int
    entry: dict
    finding: Finding | None
    error: str = ""

    @property
    def anchor(self) -> str:
        return f"{self.exp.name}-finding-{self.index}"


def judge(s: Section) -> list[Judged]:
    out = []
    for i, entry in enumerate(getattr(s.exp, "findings", ())):
        try:
            out.append(Judged(s.exp, i, entry, evaluate(entry, s.history, s.results, s.design_seeds)[1]))
        except (ValueError, KeyError) as e:  # a finding that cannot be computed is shown, not hidden
            out.append(Judged(s.exp, i, entry, None, str(e)))
    return out


def esc(v) -> str:
    return html.escape(str(v))


def not_judged_why(f: Finding | None) -> str:
    """Why a finding has no verdict: it cannot be computed, its runs miss the claim's precondition, or the
    claim draws no line (a number reported beside the seed's, which gives none)."""
    if f is None:
        return "cannot compute"
    if f.reason:
        return f.reason
    if f.expect.startswith("not judged:"):
        return f.expect.split(":", 1)[1].strip()
    return "no line to judge: a number reported" if not f.checks else ""


def verdict_word(f: Finding | None) -> str:
    """The verdict as the table shows it: agrees / differs / inconclusive (the interval spans the line), or
    "not judged (why)" — never inconclusive for a claim no run could test."""
    if f is not None and f.verdict is not None:
        return "no effect at this scale" if f.verdict == "no effect" else f.verdict
    return f"not judged ({not_judged_why(f)})"


def verdict_html(f: Finding | None) -> str:
    v = f.verdict if f is not None else None
    word = verdict_word(f)
    if f is not None and v == "inconclusive":
        word += f" (needs {f.more} more seed{'s' * (f.more != 1)})" if f.more else " (needs many more seeds)"
    return f"<span class='{VERDICT_CLASS.get(v, 'na')}'>{esc(word)}</span>"


def number(f: Finding | None) -> str:
    if f is None or math.isnan(f.value):
        return "—"
    if math.isnan(f.error):
        return f"{f.value:.3g} (no error bar)"
    return f"{f.value:.3g}" + (f" ± {f.error:.2g}" if f.error > 0 else " (exact: over every run)")


def check_html(c: Check, paper: str) -> str:
    """One check: what it tests, its number ± error and its verdict. For a claim that the relation does not
    hold (paper = "no") the check tests the relation itself, so it says whether the relation holds and,
    coloured by it, what that means for the claim — a green claim never shows a red check."""
    num = esc(number(Finding(c.value, c.error, None, "")))
    if paper == "no":
        claim = negate(c.verdict, "no")
        return (f"<li>{esc(c.what)}: {num} → the relation {esc(HOLDS.get(c.verdict, c.verdict))}; for the claim: "
                f"<span class='{VERDICT_CLASS.get(claim, 'na')}'>{esc(claim)}</span></li>")
    word = c.verdict or f"not judged ({c.reason})"
    return f"<li>{esc(c.what)}: {num} → <span class='{VERDICT_CLASS.get(c.verdict, 'na')}'>{esc(word)}</span></li>"


def checks_html(f: Finding, entry: dict) -> str:
    return "<ul class='checks'>" + "".join(check_html(c, entry.get("paper", "yes")) for c in f.checks) + "</ul>"


def number_cell(j: Judged) -> str:
    """The verdict table's number: one check → its number (and what it counts); several → every check with
    its own number and verdict (slope and intercept each), so the row shows what was judged."""
    f = j.finding
    if f is not None and len(f.checks) > 1:
        head = f"{esc(number(f))} ({esc(f.unit)}); " if f.unit else ""
        return head + checks_html(f, j.entry)
    return esc(number(f)) + (f" <span class='meta'>({esc(f.unit)})</span>" if f is not None and f.unit else "")


def strings_in(v) -> set[str]:
    """Every string inside a figure entry's options (panels are lists of lists or of {x, y} tables)."""
    if isinstance(v, str):
        return {v}
    if isinstance(v, dict):
        return {s for x in v.values() for s in strings_in(x)}
    if isinstance(v, (list, tuple)):
        return {s for x in v for s in strings_in(x)}
    return set()


def drawn_columns(fig_entry: dict) -> set[str]:
    """The columns a `[[figures]]` entry names, its function's defaults included (a figure drawing
    `test_accuracy` draws `test_error`), for matching findings to figures."""
    import inspect

    from genlab.figures import get_figure

    try:
        params = inspect.signature(get_figure(fig_entry["name"])).parameters.values()
        opts = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    except (KeyError, ValueError):
        opts = {}
    opts.update({k: v for k, v in fig_entry.items() if k not in ("title", "file", "name", "labels")})
    cols = strings_in(opts)
    return cols | {c.replace("_accuracy", "_error") for c in cols}


def figure_of(exp: Experiment, entry: dict) -> str:
    """The file of the figure a finding reads: its `figure` key; else the spec's only figure; else the figure
    that draws the most of the finding's columns (metric, x, y), a figure with the finding's own `where`
    first; "" when the spec draws none of them."""
    files = [e.get("file", e["name"]) for e in exp.figures]
    if entry.get("figure") or len(files) <= 1:
        return entry.get("figure") or (files[0] if files else "")
    cols = {entry[k] for k in FINDING_COLUMNS if isinstance(entry.get(k), str)}
    scores = [(overlap(cols, drawn_columns(e)), e.get("where") == entry.get("where"), -i)
              for i, e in enumerate(exp.figures)]
    best = max(scores)
    return files[-best[2]] if best[0] > 0 else ""


def overlap(cols: set[str], drawn: set[str]) -> int:
    """2 per column the figure draws as such; 1 per column it draws a part or a sibling of: a measure's field
    ("min_norm_gap" draws "min_norm_gap.relative"), a split's prefix ("test_vflip" → "test_vflip_error"), the
    same split's loss for its error ("train_loss" for "train_error")."""
    def near(c: str, d: str) -> bool:
        return c.startswith((d + ".", d + "_")) or (c.rsplit("_", 1)[0] == d.rsplit("_", 1)[0] and "_" in c
                                                      and c.rsplit("_", 1)[1] in ("error", "loss", "accuracy")
                                                      and d.rsplit("_", 1)[-1] in ("error", "loss", "accuracy"))
    return sum(2 if c in drawn else 1 if any(near(c, d) for d in drawn) else 0 for c in cols)


def figure_ref(j: Judged) -> str:
    """A link to the figure a finding reads (`figure_of`), else to the spec's section."""
    name = figure_of(j.exp, j.entry)
    if name:
        return f"<a href='#fig-{esc(j.exp.name)}-{esc(name)}'>{esc(name)}</a>"
    return f"<a href='#{esc(j.exp.name)}'>{esc(j.exp.name)}</a>"


def verdict_counts(judged: list[Judged]) -> dict[str, int]:
    """How many claims got each verdict; the not-judged ones by their reason (precondition, no line, cannot
    compute), never folded into inconclusive."""
    counts: dict[str, int] = {}
    for j in judged:
        w = verdict_word(j.finding)
        counts[w] = counts.get(w, 0) + 1
    order = {"agrees": 0, "differs": 1, "no effect at this scale": 2, "inconclusive": 3}
    return dict(sorted(counts.items(), key=lambda kv: (order.get(kv[0], 3), kv[0])))


def verdict_table(judged: list[Judged]) -> str:
    head = ", ".join(f"{n} {v}" for v, n in verdict_counts(judged).items()) or "none in these specs"
    rows = "".join(
        f"<tr><td>{esc(seed_of(j.exp))}</td><td>{figure_ref(j)}</td><td>{esc(j.entry.get('claim', ''))}</td>"
        f"<td class='meta'>{esc(j.finding.expect if j.finding else j.error)}</td>"
        f"<td>{number_cell(j)}</td><td>{verdict_html(j.finding)}</td>"
        f"<td><a href='#{esc(j.anchor)}'>details</a></td></tr>" for j in judged)
    return (f"<h2 id='verdicts'>Verdicts: the seeds' claims and ours</h2><p class='meta'>{len(judged)} claims: "
            f"{esc(head)}. Each verdict compares a number's interval with the claim's line: agrees or differs when it "
            "lies wholly on one side, no effect at this scale when it lies within the claim's margin (the smallest "
            "effect that matters, set from the seed), inconclusive when it spans the line (and it says how many "
            "more seeds its estimate suggests); not judged when no run can test the claim (one run: no error bar; "
            "its precondition is not met; it cannot be computed) or the claim draws no line. A claim judged on "
            "several checks lists each with its number. Errors are standard errors over seeds; intervals are t "
            "intervals at the error rate each look spends in a group-sequential design with α-spending (α = 0.05 in "
            "all, α/2 at the spec's own seeds, α/6 once <code>genlab run --decide</code> has doubled them, α/12 at "
            "four times as many, …), so the verdicts stay valid however many seeds are added and looked at.</p><table class='verdicts'><tr><th>seed</th><th>figure</th>"
            "<th>claim</th><th>tested here</th><th>number ± error</th><th>verdict</th><th></th></tr>" + rows + "</table>")


def findings_html(judged: list[Judged]) -> str:
    if not judged:
        return ""
    rows = []
    for j in judged:
        f = j.finding
        if f is None:
            here = f"<span class='no'>cannot compute: {esc(j.error)}</span>"
        else:
            here = (esc(f.text) + (checks_html(f, j.entry) if f.checks else "")
                    + (f"<div class='fails'>what would make it fail: {esc(f.fails_if)}</div>" if f.fails_if else ""))
        rows.append(f"<tr id='{esc(j.anchor)}'><td>{esc(j.entry.get('claim', ''))}</td><td>{here}</td>"
                    f"<td>{verdict_html(f)}</td></tr>")
    return ("<h4>Findings: the seed's and ours</h4><table><tr><th>seed reported</th><th>here</th><th>verdict</th></tr>"
            + "".join(rows) + "</table>")
