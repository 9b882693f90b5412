"""The report: one self-contained HTML page that opens with a verdict table (every seed claim, our number ±
its error, agrees / differs / inconclusive, a link), then one section per experiment, grouped by seed and
chapter in the seeds' order, each saying which profile and data set produced it: its figures (inlined PNG,
click to enlarge, captions listing what they leave out), its findings with their checks and what would make
them fail, and a table of final results per sweep point.

It reads the store through the query API only; it never trains.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import time
from dataclasses import dataclass

import pandas as pd

from genlab.figures import draw
from genlab.figures.style import column_text
from genlab.findings import Check, Finding, evaluate, negate
from genlab.experiment import Experiment

FINAL_METRICS = ("n_params", "epochs_run", "train_loss", "test_loss", "train_error", "test_error", "val_error")
SEED_TITLES = {"000": "000 — thesis: linear networks, normalized losses, weight normalization",
               "002": "002 — the role of tweaks in deep learning", "003": "003 — HW0: capacity, robustness, "
               "random labels, regression", "004": "004 — generalization ideas: capacity measures",
               "other": "across the seeds — which measure predicts generalization (experiments/analysis)"}
VERDICT_CLASS = {"agrees": "yes", "differs": "no", "no effect": "noeff", "inconclusive": "maybe", None: "na"}
CSS = """body{font:14px/1.45 system-ui,sans-serif;max-width:1400px;margin:1.5em auto;padding:0 1.2em;color:#222}
h1{font-size:1.6em}h2{border-bottom:2px solid #888;padding-bottom:.2em;margin-top:2.2em}
h3.chapter{color:#555;margin-top:1.6em}h3.exp{border-bottom:1px solid #ccc;padding-bottom:.15em;margin-top:1.8em}
table{border-collapse:collapse;margin:.8em 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f4f4f4}.yes{color:#176f2c;font-weight:600}.no{color:#b3261e;font-weight:600}
.maybe{color:#8a5a00;font-weight:600}.noeff{color:#1f4f8a;font-weight:600}.na{color:#777}.meta{color:#555;font-size:12.5px}.top{float:right;font-size:12px}
figure{display:inline-block;margin:.6em 1em .6em 0;vertical-align:top;max-width:100%}
img{max-width:100%;height:auto}figure img{cursor:zoom-in;border:1px solid #eee}figcaption{font-size:12px;color:#444;max-width:900px}
img.big{position:fixed;inset:0;width:100vw;height:100vh;max-width:none;object-fit:contain;background:#fffe;
cursor:zoom-out;z-index:9;border:0}ul.checks{margin:0;padding-left:1.1em}.fails{color:#666;font-size:12px}
table.verdicts td:nth-child(3){max-width:460px}table.verdicts td:nth-child(4){max-width:300px}
table.verdicts ul.checks{min-width:260px}.against{color:#b3261e;font-weight:600}"""
ZOOM = "this.classList.toggle('big')"  # click: the figure fills the window; click again: back


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


def seed_of(exp: Experiment) -> str:
    """The seed document a spec belongs to: its folder under experiments/ (e.g. "000"), else "other"."""
    parent = exp.path.parent.name if exp.path is not None else ""
    return parent if re.fullmatch(r"\d{3}", parent) else "other"


def order_key(s: Section) -> tuple:
    """Seeds in order, chapters by their first number (ch. 3 < ch. 4 < ch. 5; §3.1 < §3.2), then names
    in natural order (fig3_2 < fig3_10)."""
    num = re.search(r"\d+(?:\.\d+)?", s.exp.chapter)
    natural = [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s.exp.name)]
    return seed_of(s.exp), float(num.group()) if num else math.inf, s.exp.chapter, natural


def png_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def summary_table(s: Section) -> pd.DataFrame:
    """Final metrics per sweep point: mean ± std over seeds (std = sample standard deviation, ddof=1)."""
    res = s.results
    metrics = [m for m in FINAL_METRICS if m in res.columns]
    # a swept table (e.g. "init" = [{name="constant", value=0}, {name="normal", std=0.1}]) → its varying columns
    keys = [c for f in s.exp.sweep_fields for c in ([f] if f in res.columns else sorted(
        k for k in res.columns if k.startswith(f + ".") and res[k].astype(str).nunique(dropna=False) > 1))]
    if not keys:
        res, keys = res.assign(runs="all"), ["runs"]
    g = res.groupby(keys, dropna=False)
    out = g.size().rename("n").reset_index()
    for m in metrics:
        mean, std = g[m].mean().to_numpy(), g[m].std(ddof=1).fillna(0).to_numpy()
        same = (std == 0)  # e.g. n_params: no ± when every seed agrees
        out[m] = [f"{a:.4g}" if n == 1 or z else f"{a:.4g} ± {b:.2g}" for a, b, n, z in zip(mean, std, out["n"], same)]
    return out


def judge(s: Section) -> list[Judged]:
    out = []
    for i, entry in enumerate(getattr(s.exp, "findings", ())):
        try:
            out.append(Judged(s.exp, i, entry, evaluate(entry, s.history, s.results, s.design_seeds)[1]))
        except (ValueError, KeyError) as e:  # a finding that cannot be computed is shown, not hidden
            out.append(Judged(s.exp, i, entry, None, str(e)))
    return out


def _e(v) -> str:
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
    return f"<span class='{VERDICT_CLASS.get(v, 'na')}'>{_e(word)}</span>"


def number(f: Finding | None) -> str:
    if f is None or math.isnan(f.value):
        return "—"
    if math.isnan(f.error):
        return f"{f.value:.3g} (no error bar)"
    return f"{f.value:.3g}" + (f" ± {f.error:.2g}" if f.error > 0 else " (exact: over every run)")


HOLDS = {"agrees": "holds", "differs": "does not hold", "no effect": "shows no effect at this scale",
         "inconclusive": "is undecided", None: "is not judged"}


def check_html(c: Check, paper: str) -> str:
    """One check: what it tests, its number ± error and its verdict. For a claim that the relation does not
    hold (paper = "no") the check tests the relation itself, so it says whether the relation holds and,
    coloured by it, what that means for the claim — a green claim never shows a red check."""
    num = _e(number(Finding(c.value, c.error, None, "")))
    if paper == "no":
        claim = negate(c.verdict, "no")
        return (f"<li>{_e(c.what)}: {num} → the relation {_e(HOLDS.get(c.verdict, c.verdict))}; for the claim: "
                f"<span class='{VERDICT_CLASS.get(claim, 'na')}'>{_e(claim)}</span></li>")
    word = c.verdict or f"not judged ({c.reason})"
    return f"<li>{_e(c.what)}: {num} → <span class='{VERDICT_CLASS.get(c.verdict, 'na')}'>{_e(word)}</span></li>"


def checks_html(f: Finding, entry: dict) -> str:
    return "<ul class='checks'>" + "".join(check_html(c, entry.get("paper", "yes")) for c in f.checks) + "</ul>"


def number_cell(j: Judged) -> str:
    """The verdict table's number: one check → its number (and what it counts); several → every check with
    its own number and verdict (slope and intercept each), so the row shows what was judged."""
    f = j.finding
    if f is not None and len(f.checks) > 1:
        head = f"{_e(number(f))} ({_e(f.unit)}); " if f.unit else ""
        return head + checks_html(f, j.entry)
    return _e(number(f)) + (f" <span class='meta'>({_e(f.unit)})</span>" if f is not None and f.unit else "")


FINDING_COLUMNS = ("metric", "x", "y")  # the options of a [[findings]] entry that name the columns it reads


def _strings(v) -> set[str]:
    """Every string inside a figure entry's options (panels are lists of lists or of {x, y} tables)."""
    if isinstance(v, str):
        return {v}
    if isinstance(v, dict):
        return {s for x in v.values() for s in _strings(x)}
    if isinstance(v, (list, tuple)):
        return {s for x in v for s in _strings(x)}
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
    cols = _strings(opts)
    return cols | {c.replace("_accuracy", "_error") for c in cols}


def figure_of(exp: Experiment, entry: dict) -> str:
    """The file of the figure a finding reads: its `figure` key; else the spec's only figure; else the figure
    that draws the most of the finding's columns (metric, x, y), a figure with the finding's own `where`
    first; "" when the spec draws none of them."""
    files = [e.get("file", e["name"]) for e in exp.figures]
    if entry.get("figure") or len(files) <= 1:
        return entry.get("figure") or (files[0] if files else "")
    cols = {entry[k] for k in FINDING_COLUMNS if isinstance(entry.get(k), str)}
    scores = [(_match(cols, drawn_columns(e)), e.get("where") == entry.get("where"), -i)
              for i, e in enumerate(exp.figures)]
    best = max(scores)
    return files[-best[2]] if best[0] > 0 else ""


def _match(cols: set[str], drawn: set[str]) -> int:
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
        return f"<a href='#fig-{_e(j.exp.name)}-{_e(name)}'>{_e(name)}</a>"
    return f"<a href='#{_e(j.exp.name)}'>{_e(j.exp.name)}</a>"


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
        f"<tr><td>{_e(seed_of(j.exp))}</td><td>{figure_ref(j)}</td><td>{_e(j.entry.get('claim', ''))}</td>"
        f"<td class='meta'>{_e(j.finding.expect if j.finding else j.error)}</td>"
        f"<td>{number_cell(j)}</td><td>{verdict_html(j.finding)}</td>"
        f"<td><a href='#{_e(j.anchor)}'>details</a></td></tr>" for j in judged)
    return (f"<h2 id='verdicts'>Verdicts: the seeds' claims and ours</h2><p class='meta'>{len(judged)} claims: "
            f"{_e(head)}. Each verdict compares a number's interval with the claim's line: agrees or differs when it "
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
            here = f"<span class='no'>cannot compute: {_e(j.error)}</span>"
        else:
            here = (_e(f.text) + (checks_html(f, j.entry) if f.checks else "")
                    + (f"<div class='fails'>what would make it fail: {_e(f.fails_if)}</div>" if f.fails_if else ""))
        rows.append(f"<tr id='{_e(j.anchor)}'><td>{_e(j.entry.get('claim', ''))}</td><td>{here}</td>"
                    f"<td>{verdict_html(f)}</td></tr>")
    return ("<h4>Findings: the seed's and ours</h4><table><tr><th>seed reported</th><th>here</th><th>verdict</th></tr>"
            + "".join(rows) + "</table>")


def provenance(s: Section) -> str:
    """Which profile, data set and model produced a section (from the configs of its finished runs)."""
    df = s.results
    parts = [f"profile <b>{_e(s.exp.profile)}</b>"]
    for col, word in (("data.name", "data"), ("data.n_train", "training points"), ("model.name", "model")):
        if col in df.columns and len(df) and (text := column_text(df, col)) != "—":  # unset (the full split): said by data
            parts.append(f"{word} <b>{_e(text)}</b>")
    parts.append(f"{len(df)} finished runs · spec {_e(s.exp.path)}")
    return "<p class='meta'>" + " · ".join(parts) + "</p>"


def figure_html(s: Section, entry: dict) -> str:
    name = entry.get("file", entry["name"])
    try:
        fig = draw(entry, s.history, s.results)
    except (ValueError, KeyError) as err:  # one figure that cannot be drawn does not stop the report
        return f"<p class='no'>figure {_e(name)} cannot be drawn: {_e(err)}</p>"
    notes = " ".join(getattr(fig, "genlab_notes", []))
    return (f"<figure id='fig-{_e(s.exp.name)}-{_e(name)}'><img alt='{_e(name)}' onclick=\"{ZOOM}\" "
            f"src='data:image/png;base64,{png_b64(fig)}'><figcaption><b>{_e(name)}</b>"
            f"{(' — ' + _e(notes)) if notes else ''}</figcaption></figure>")


def section_html(s: Section, judged: list[Judged]) -> str:
    e = s.exp
    parts = [f"<h3 class='exp' id='{_e(e.name)}'>{_e(e.name)}<a class='top' href='#top'>↑ top</a></h3>",
             f"<p>{_e(e.description)}</p>", provenance(s)]
    parts += [figure_html(s, entry) for entry in e.figures]
    parts.append(findings_html(judged))
    if getattr(e, "analysis", None) is not None:  # [analysis]: the measure ranking (genlab.analysis)
        from genlab.analysis.html import analysis_html

        parts.append(analysis_html(s.results, e.analysis))
    if not s.results.empty:
        parts.append("<h4>Final results</h4>" + summary_table(s).to_html(index=False, border=0))
    parts.append(notes_html(s))
    return "\n".join(parts)


def notes_html(s: Section) -> str:
    """The runs tagged or annotated with `genlab tag` (the `tags`/`note` columns genlab.notes adds), if any."""
    df = s.results
    if "tags" not in df.columns and "note" not in df.columns:
        return ""
    items = []
    for _, r in df.iterrows():
        tags, note = str(r.get("tags", "") or ""), str(r.get("note", "") or "")
        if tags or note:
            items.append(f"<li><code>{_e(r['run_id'][:8])}</code> {_e(tags)}{' — ' + _e(note) if note else ''}</li>")
    return f"<h4>Tagged runs</h4><ul>{''.join(items)}</ul>" if items else ""


def render(sections: list[Section], title: str = "genlab report") -> str:
    sections = sorted(sections, key=order_key)
    judged = {s.exp.name: judge(s) for s in sections}
    toc, body, seed, chapter = [], [], None, None
    for s in sections:
        if seed_of(s.exp) != seed:
            seed, chapter = seed_of(s.exp), None
            body.append(f"<h2 id='seed-{_e(seed)}'>{_e(SEED_TITLES.get(seed, seed))}</h2>")
            toc.append(f"<li><b>{_e(SEED_TITLES.get(seed, seed))}</b></li>")
        if s.exp.chapter != chapter:
            chapter = s.exp.chapter
            body.append(f"<h3 class='chapter'>{_e(seed)} {_e(chapter)}</h3>" if chapter else "")
        toc.append(f"<li style='margin-left:1.2em'><a href='#{_e(s.exp.name)}'>{_e(s.exp.name)}</a> — "
                   f"{_e(s.exp.description)}</li>")
        body.append(section_html(s, judged[s.exp.name]))
    stamp = time.strftime("%Y-%m-%d %H:%M")
    every = [j for s in sections for j in judged[s.exp.name]]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head><body><h1 id='top'>{_e(title)}</h1>"
            f"<p class='meta'>written {stamp} by genlab · click a figure to enlarge it</p>"
            f"{verdict_table(every)}<h2>Contents</h2><ul>{''.join(toc)}</ul>{''.join(body)}</body></html>")
