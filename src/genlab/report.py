"""The report: one self-contained HTML page with, per experiment, its figures (inlined PNG), its findings
beside the seed's claims (and whether they agree), and a table of final results per sweep point.

It reads the store through the query API only; it never trains.
"""

from __future__ import annotations

import base64
import html
import io
import time
from dataclasses import dataclass

import pandas as pd

from genlab.figures import draw
from genlab.findings import evaluate
from genlab.spec import Experiment

FINAL_METRICS = ("n_params", "epochs_run", "train_loss", "test_loss", "train_error", "test_error", "val_error")
CSS = """body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f4f4}img{max-width:100%;margin:.5em 0}.yes{color:#176f2c;font-weight:600}
.no{color:#b3261e;font-weight:600}.na{color:#777}.meta{color:#666;font-size:12px}pre{white-space:pre-wrap}"""


@dataclass(frozen=True)
class Section:
    exp: Experiment
    history: pd.DataFrame
    results: pd.DataFrame


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


def _findings_html(s: Section) -> str:
    entries = getattr(s.exp, "findings", ())
    if not entries:
        return ""
    rows = []
    for entry in entries:
        try:
            claim, f = evaluate(entry, s.history, s.results)
            mark = {True: '<span class="yes">agrees</span>', False: '<span class="no">differs</span>',
                    None: '<span class="na">—</span>'}[f.agrees]
            rows.append(f"<tr><td>{html.escape(claim)}</td><td>{html.escape(f.text)}</td><td>{mark}</td></tr>")
        except ValueError as e:  # a finding that cannot be computed is shown, not hidden
            rows.append(f"<tr><td>{html.escape(entry.get('claim', ''))}</td><td class='no'>cannot compute: "
                        f"{html.escape(str(e))}</td><td class='na'>—</td></tr>")
    return ("<h3>Findings: the seed's and ours</h3><table><tr><th>seed reported</th><th>here</th><th></th></tr>"
            + "".join(rows) + "</table>")


def section_html(s: Section) -> str:
    e = s.exp
    parts = [f"<h2 id='{html.escape(e.name)}'>{html.escape(e.name)}</h2>",
             f"<p>{html.escape(e.description)}</p>",
             f"<p class='meta'>profile {html.escape(str(e.profile))} · {len(s.results)} finished runs · spec "
             f"{html.escape(str(e.path))}</p>"]
    for entry in e.figures:
        try:
            parts.append(f"<img alt='{html.escape(entry.get('file', entry['name']))}' "
                         f"src='data:image/png;base64,{png_b64(draw(entry, s.history, s.results))}'>")
        except ValueError as err:
            parts.append(f"<p class='no'>figure {html.escape(entry.get('file', ''))} cannot be drawn: "
                         f"{html.escape(str(err))}</p>")
    parts.append(_findings_html(s))
    if getattr(e, "analysis", None) is not None:  # [analysis]: the measure ranking (genlab.analysis)
        from genlab.analysis.html import analysis_html

        parts.append(analysis_html(s.results, e.analysis))
    if not s.results.empty:
        parts.append("<h3>Final results</h3>" + summary_table(s).to_html(index=False, border=0))
    return "\n".join(parts)


def render(sections: list[Section], title: str = "genlab report") -> str:
    toc = "".join(f"<li><a href='#{html.escape(s.exp.name)}'>{html.escape(s.exp.name)}</a> — "
                  f"{html.escape(s.exp.description)}</li>" for s in sections)
    body = "\n".join(section_html(s) for s in sections)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='meta'>written {stamp} by genlab</p><ul>{toc}</ul>{body}</body></html>")
