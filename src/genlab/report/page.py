"""The report: one self-contained HTML page that opens with a verdict table (every seed claim, our number ±
its error, agrees / differs / inconclusive, a link), then one section per experiment, grouped by seed and
chapter in the seeds' order, each saying which profile and data set produced it: its figures (inlined PNG,
click to enlarge, captions listing what they leave out), its findings with their checks and what would make
them fail, and a table of final results per sweep point.

It reads the store through the query API only; it never trains.
"""

from __future__ import annotations

import math
import re
import time

import pandas as pd

from genlab.figures import draw, png_b64
from genlab.figures.style import column_text
from genlab.report.claims import (ZOOM, Judged, Section, esc as _e, findings_html, judge, seed_of,  # noqa: F401
                                  verdict_table)

FINAL_METRICS = ("n_params", "epochs_run", "train_loss", "test_loss", "train_error", "test_error", "val_error")
SEED_TITLES = {"000": "000 — thesis: linear networks, normalized losses, weight normalization",
               "002": "002 — the role of tweaks in deep learning", "003": "003 — HW0: capacity, robustness, "
               "random labels, regression", "004": "004 — generalization ideas: capacity measures",
               "other": "across the seeds — which measure predicts generalization (experiments/analysis)"}
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


def order_key(s: Section) -> tuple:
    """Seeds in order, chapters by their first number (ch. 3 < ch. 4 < ch. 5; §3.1 < §3.2), then names
    in natural order (fig3_2 < fig3_10)."""
    num = re.search(r"\d+(?:\.\d+)?", s.exp.chapter)
    natural = [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s.exp.name)]
    return seed_of(s.exp), float(num.group()) if num else math.inf, s.exp.chapter, natural


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
        from genlab.report.ranking import analysis_html

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
