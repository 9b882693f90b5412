"""The report's `analysis` section: the ranking table (measures × statistics, sortable by a click on a
header) and, for the top of the ranking, a figure of μ against the gap coloured by each axis."""

from __future__ import annotations

import html
import math

import pandas as pd

# a click on a header sorts by that column (numbers by value, missing values last; a second click reverses)
SORT_JS = """<script>function glSort(th){const t=th.closest('table'),b=t.tBodies[0],i=th.cellIndex,
d=th.dataset.dir=th.dataset.dir==='desc'?'asc':'desc',k=r=>{const c=r.cells[i],v=c.dataset.v;
return v===undefined?c.textContent:(v===''?NaN:+v)};[...b.rows].sort((r,s)=>{const x=k(r),y=k(s);
if(typeof x==='string')return d==='asc'?x.localeCompare(y):y.localeCompare(x);if(isNaN(x))return 1;
if(isNaN(y))return -1;return d==='asc'?x-y:y-x}).forEach(r=>b.appendChild(r))}</script>"""


def ranking_html(table: pd.DataFrame, notes: dict[str, str]) -> str:
    """An HTML table of `table` (one row per measure); headers carry the column's meaning as a tooltip."""
    head = "".join(f"<th onclick='glSort(this)' title='{html.escape(notes.get(c, c))}' style='cursor:pointer'>"
                   f"{html.escape(c)}</th>" for c in table.columns)
    rows = []
    for r in table.itertuples(index=False):
        cells = []
        for v in r:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                ok = math.isfinite(v)
                cells.append(f"<td data-v='{v if ok else ''}'>{f'{v:.3g}' if ok else '—'}</td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table class='ranking'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def analysis_html(results: pd.DataFrame, options: dict) -> str:
    """The section for a spec's `[analysis]` table (checked options, see `AnalysisSpec`). A ValueError (no
    measures, every run excluded, a bad formula) is shown in the page, not raised."""
    from genlab.analysis import COLUMNS, analyze
    from genlab.analysis.options import AnalysisSpec
    from genlab.figures import draw
    from genlab.report import png_b64

    spec = AnalysisSpec.model_validate(options)
    try:
        a = analyze(results, **spec.options())
    except ValueError as e:
        return f"<h4>Which measure predicts the gap</h4><p class='no'>cannot analyze: {html.escape(str(e))}</p>"
    sw = a.sweep
    excluded = ", ".join(f"{n} ({why})" for why, n in sw.excluded.items()) or "none"
    parts = ["<h4>Which measure predicts the gap</h4>",
             f"<p class='meta'>gap = {html.escape(sw.gap_text)} · {len(sw.runs)} runs analyzed, excluded: "
             f"{html.escape(excluded)} · axes: {html.escape(', '.join(f'{x} ({len(sw.levels[x])})' for x in sw.axes))}"
             " · click a header to sort</p>", SORT_JS, ranking_html(a.main(), COLUMNS),
             "<details><summary>what each column is</summary><ul>"
             + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in COLUMNS.items()
                       if k in a.main().columns) + "</ul></details>"]
    detail = [c for c in a.table.columns if c.startswith(("psi[", "cmi_k1[", "sign_mean["))]
    if detail:  # ψ per axis is Jiang et al.'s per-hyperparameter column; cmi_k1[a]: conditioned on a alone
        parts.append("<details><summary>per axis: ψ, CMI given that axis, mean sign-error</summary>"
                     + ranking_html(a.table[["measure", *detail]], {}) + "</details>")
    for m in a.table["measure"][:spec.figure_measures]:
        try:
            fig = draw({"name": "measure_vs_gap", "measure": m, "gap": spec.gap, "axes": spec.axes}, None, results)
            parts.append(f"<img alt='{html.escape(m)} vs gap' src='data:image/png;base64,{png_b64(fig)}'>")
        except ValueError as e:
            parts.append(f"<p class='no'>figure for {html.escape(m)} cannot be drawn: {html.escape(str(e))}</p>")
    return "\n".join(parts)
