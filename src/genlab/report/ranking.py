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


# the sign of τ(μ, gap) each measure's theory predicts: +1 where a bound grows with μ (norms, capacities, path
# norms, sharpness, flatness 1/σ², the bounds themselves, distance from init, parameter count: Jiang et al. 2020
# Table 1's "expected" direction), −1 where a larger μ promises a smaller gap (margins, σ of the flatness search).
# A measure not listed has no stated prediction and is not marked.
PREDICTED_SIGN = {
    **dict.fromkeys(("dist_from_init", "num_params", "log_prod_frobenius", "log_sum_sq_frobenius",
                     "log_prod_spectral", "log_sum_sq_spectral", "log_sum_of_spec", "sum_stable_rank",
                     "bartlett_spectral", "pacbayes_spectral", "log_l2_path_norm", "log_l1_path_norm",
                     "log_l2_capacity", "log_spectral_capacity", "log_l2_path_capacity", "log_l1_path_capacity",
                     "normalized_loss", "output_normalized_loss", "sharpness", "sharpness_004",
                     "pacbayes_flatness", "pacbayes_mag_flatness", "hessian"), 1),
    **dict.fromkeys(("margin_q10", "margin_q5", "margin_min", "normalized_margin_q5",
                     "output_normalized_margin_q5", "pacbayes_flatness.sigma", "pacbayes_mag_flatness.sigma"), -1),
}


def predicted_sign(measure: str) -> int | None:
    """+1 / −1: the sign of τ the measure's theory predicts (`PREDICTED_SIGN`, a column first, then its
    measure's name before the "."); None when no prediction is stated."""
    return PREDICTED_SIGN.get(measure, PREDICTED_SIGN.get(measure.split(".", 1)[0]))


def opposite(measure: str, tau: float) -> bool:
    """τ is beyond 0 on the side opposite to the measure's predicted sign (False without a prediction)."""
    sign = predicted_sign(measure)
    return sign is not None and math.isfinite(tau) and tau * sign < 0


def _sign_note(measure: str, tau: float) -> str:
    sign = predicted_sign(measure)
    return f"against its theory: predicted τ {'>' if sign > 0 else '<'} 0" if opposite(measure, tau) else ""


def ranking_html(table: pd.DataFrame, notes: dict[str, str]) -> str:
    """An HTML table of `table` (one row per measure); headers carry the column's meaning as a tooltip. A
    measure whose τ has the sign opposite to its theory's prediction is marked beside its name."""
    head = "".join(f"<th onclick='glSort(this)' title='{html.escape(notes.get(c, c))}' style='cursor:pointer'>"
                   f"{html.escape(c)}</th>" for c in table.columns)
    rows = []
    for r in table.itertuples(index=False):
        cells = []
        row = dict(zip(table.columns, r))
        for c, v in row.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                ok = math.isfinite(v)
                cells.append(f"<td data-v='{v if ok else ''}'>{f'{v:.3g}' if ok else '—'}</td>")
            elif c == "measure" and "tau" in row and _sign_note(str(v), float(row["tau"])):
                cells.append(f"<td>{html.escape(str(v))} <span class='against'>"
                             f"({html.escape(_sign_note(str(v), float(row['tau'])))})</span></td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table class='ranking'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def sign_summary(table: pd.DataFrame) -> str:
    """One sentence above the ranking: how many measures with a stated prediction have τ of the other sign."""
    if "tau" not in table.columns:
        return ""
    judged = [(m, t) for m, t in zip(table["measure"], table["tau"]) if predicted_sign(str(m)) is not None
              and math.isfinite(t)]
    against = [m for m, t in judged if opposite(str(m), t)]
    if not judged:
        return ""
    return (f"<p class='meta'><span class='against'>{len(against)} of {len(judged)} measures</span> with a "
            "predicted direction have τ of the opposite sign — their gap moves against what their bound predicts"
            + (f": {html.escape(', '.join(map(str, against)))}" if against else "") + ".</p>")


def analysis_html(results: pd.DataFrame, options: dict) -> str:
    """The section for a spec's `[analysis]` table (checked options, see `AnalysisSpec`). A ValueError (no
    measures, every run excluded, a bad formula) is shown in the page, not raised."""
    from genlab.analysis import COLUMNS, analyze
    from genlab.spec.analysis import AnalysisSpec
    from genlab.figures import draw, png_b64
    from genlab.report.claims import ZOOM

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
             " · click a header to sort</p>", sign_summary(a.main()), SORT_JS, ranking_html(a.main(), COLUMNS),
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
            parts.append(f"<figure><img alt='{html.escape(m)} vs gap' onclick=\"{ZOOM}\" "
                         f"src='data:image/png;base64,{png_b64(fig)}'><figcaption>{html.escape(m)} against the gap "
                         "(click to enlarge)</figcaption></figure>")
        except ValueError as e:
            parts.append(f"<p class='no'>figure for {html.escape(m)} cannot be drawn: {html.escape(str(e))}</p>")
    return "\n".join(parts)
