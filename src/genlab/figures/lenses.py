"""Figures of issue 26's lenses, drawn from the results table (the measures keep what a figure needs):

    esd_fit            a layer's ESD (log-log density) with its power-law fit, a few runs   (esd, bins > 0)
    alpha_per_layer    α per layer, one line per value of a sweep axis (mean over runs)      (esd)
    landscape_slice    the 1-D filter-normalized slice, one line per value of an axis        (landscape)
    landscape_contour  the 2-D slice of one run as contour lines                             (landscape, plane_steps)
    barrier_path       loss or error along the segment between seed pairs, per config point  (mode_connectivity)
                       or along the trained curve, the segment dashed                         (curve_connectivity)
    cka_heatmap        CKA of every layer pair (layers × layers) for one pair of runs         (cka, matrix = true)

Pair measures appear in a run's row as the mean over its config point's seed pairs (genlab.store.pairs), so the path
and heat map of a run are those of its point.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np

from genlab.lazy import Figure, pd

from genlab.figures import register_figure
from genlab.figures.style import finish_axes
from genlab.expr import Where
from genlab.tables import fmt, select

MAX_RUNS = 4  # esd_fit draws at most this many runs (one colour each)


def _indexed(df: pd.DataFrame, pattern: str) -> dict[tuple[int, ...], str]:
    """{index tuple: column} of the columns matching `pattern` (a regex whose groups are the integer indices)."""
    out = {}
    for c in df.columns:
        m = re.fullmatch(pattern, str(c))
        if m:
            out[tuple(int(g) for g in m.groups())] = c
    if not out:
        raise ValueError(f"no result column matches {pattern!r}; record the measure with the options this figure "
                         "needs (see genlab.figures.lenses)")
    return dict(sorted(out.items()))


def _rows(results: pd.DataFrame, where: str | None) -> pd.DataFrame:
    rows = select(results, where, allow_empty=False)
    if rows.empty:
        raise ValueError("no runs to draw")
    return rows


def _groups(rows: pd.DataFrame, by: str | None) -> list[tuple[str, pd.DataFrame]]:
    if by is None:
        return [("all runs", rows)]
    if by not in rows.columns:
        raise ValueError(f"by = {by!r} is not a column")
    return [(f"{by}={fmt(v)}", g) for v, g in rows.groupby(by, sort=True)]


@register_figure("esd_fit")
def esd_fit(history: pd.DataFrame, results: pd.DataFrame, *, layer: int = 0, where: Where | None = None,
            title: str = "") -> Figure:
    """Layer `layer`'s ESD (density of the eigenvalues of WᵀW, log-spaced bins, log-log) with the fitted
    power law p(λ) = tail·(α − 1)/x_min·(λ/x_min)^(−α) for λ ≥ x_min (dashed), for up to 4 runs."""
    rows = _rows(results, where).head(MAX_RUNS)
    bins = _indexed(rows, rf"esd\.hist\.{layer}\.(\d+)")
    fig = Figure(figsize=(4.6, 3.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for k, (_, r) in enumerate(rows.iterrows()):
        lo, hi = float(r[f"esd.hist_lo.{layer}"]), float(r[f"esd.hist_hi.{layer}"])
        edges = np.geomspace(lo, hi, len(bins) + 1)
        mids = np.sqrt(edges[:-1] * edges[1:])
        dens = np.array([float(r[c]) for c in bins.values()])
        ok = dens > 0
        alpha, xmin, tail = (float(r[f"esd.{q}.{layer}"]) for q in ("alpha", "xmin", "tail"))
        ax.plot(mids[ok], dens[ok], "o-", ms=3, color=f"C{k}", label=f"{r['run_id']}: α = {alpha:.2f}")
        lam = np.geomspace(xmin, hi, 50)
        ax.plot(lam, tail * (alpha - 1) / xmin * (lam / xmin) ** (-alpha), "--", color=f"C{k}")
        ax.axvline(xmin, color=f"C{k}", lw=0.6, alpha=0.5)
    finish_axes(ax, xlabel="eigenvalue λ of WᵀW", ylabel="density", log_x=True, log_y=True,
                title=title or f"layer {layer}: ESD and power-law fit (x_min: thin line)")
    return fig


@register_figure("alpha_per_layer")
def alpha_per_layer(history: pd.DataFrame, results: pd.DataFrame, *, by: str | None = None,
                    where: Where | None = None, title: str = "") -> Figure:
    """α of each fitted layer (x: layer index in execution order), one line per value of `by` (mean ± std over
    the runs with that value); α ≈ 2-4 is Martin & Mahoney's well-trained range, above ~6 the random-like one."""
    rows = _rows(results, where)
    cols = _indexed(rows, r"esd\.alpha\.(\d+)")
    fig = Figure(figsize=(4.8, 3.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    x = np.array([i[0] for i in cols])
    for k, (label, g) in enumerate(_groups(rows, by)):
        vals = g[list(cols.values())].apply(pd.to_numeric, errors="coerce")
        mean, std = vals.mean().to_numpy(), vals.std(ddof=0).to_numpy()
        ax.errorbar(x, mean, yerr=std, marker="o", ms=3, capsize=2, color=f"C{k % 10}", label=label)
    ax.set_xticks(x)
    finish_axes(ax, xlabel="layer (execution order)", ylabel="power-law exponent α", title=title)
    return fig


@register_figure("landscape_slice")
def landscape_slice(history: pd.DataFrame, results: pd.DataFrame, *, span: float = 1.0, by: str | None = None,
                    where: Where | None = None, title: str = "") -> Figure:
    """The 1-D filter-normalized slice L(θ + t·d) (mean over the measure's directions, then over runs), t over
    [−span, span] (the measure's `span`), one line per value of `by`."""
    rows = _rows(results, where)
    cols = _indexed(rows, r"landscape\.curve\.(\d+)")
    t = np.linspace(-span, span, len(cols))
    fig = Figure(figsize=(4.8, 3.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for k, (label, g) in enumerate(_groups(rows, by)):
        ax.plot(t, g[list(cols.values())].apply(pd.to_numeric, errors="coerce").mean().to_numpy(), "o-", ms=3,
                color=f"C{k % 10}", label=label)
    finish_axes(ax, xlabel="t (filter-normalized step)", ylabel="training loss L(θ + t·d)", title=title)
    return fig


@register_figure("landscape_contour")
def landscape_contour(history: pd.DataFrame, results: pd.DataFrame, *, span: float = 1.0, where: Where | None = None,
                      title: str = "") -> Figure:
    """The 2-D slice L(θ + s·d₀ + t·d₁) of the first run selected, as labelled contour lines (Li et al. Fig. 1)."""
    rows = _rows(results, where)
    cells = _indexed(rows, r"landscape\.plane\.(\d+)\.(\d+)")
    n = max(i for i, _ in cells) + 1
    r = rows.iloc[0]
    z = np.array([[float(r[cells[(i, j)]]) for j in range(n)] for i in range(n)])
    s = np.linspace(-span, span, n)
    fig = Figure(figsize=(4.4, 4.0), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    levels = np.quantile(z[np.isfinite(z)], np.linspace(0.02, 0.98, 12))
    cs = ax.contour(s, s, z.T, levels=np.unique(levels), cmap="viridis")  # z[i, j]: s_i along d₀ (x), t_j (y)
    ax.clabel(cs, fontsize=6, fmt="%.2f")
    ax.plot([0], [0], "k+")
    finish_axes(ax, xlabel="s along d₀", ylabel="t along d₁", title=title or f"{r['run_id']}: training loss")
    return fig


@register_figure("barrier_path")
def barrier_path(history: pd.DataFrame, results: pd.DataFrame, *, quantity: str = "error", split: str = "test",
                 measure: Literal["mode_connectivity", "curve_connectivity"] = "mode_connectivity",
                 by: str | None = None, where: Where | None = None, title: str = "") -> Figure:
    """`quantity` (loss or error) on `split` along the path between seed pairs, mean over each config point's
    pairs (one line per point, labelled by `by`); the barrier is the bump above the endpoints. The path is
    `measure`'s: the segment θ(t) = (1 − t)θ_A + tθ_B (mode_connectivity), or the trained Bézier curve
    (curve_connectivity), drawn solid with the same pairs' segment dashed in its colour."""
    rows = _rows(results, where)
    paths = {"": _indexed(rows, rf"{measure}\.path\.{quantity}\.{split}\.(\d+)")}
    if measure == "curve_connectivity":
        paths["line_"] = _indexed(rows, rf"{measure}\.line_path\.{quantity}\.{split}\.(\d+)")
    fig = Figure(figsize=(4.8, 3.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for k, (label, g) in enumerate(_groups(rows, by)):
        for prefix, cols in paths.items():
            vals = g[list(cols.values())].apply(pd.to_numeric, errors="coerce").dropna()
            if len(vals):
                ax.plot(np.linspace(0, 1, len(cols)), vals.mean().to_numpy(), "o--" if prefix else "o-", ms=3,
                        color=f"C{k % 10}", label=None if prefix else label)
    path = "the trained curve (dashed: the segment)" if measure == "curve_connectivity" else "the segment"
    finish_axes(ax, xlabel=f"t on {path} θ_A → θ_B", ylabel=f"{split} {quantity}", title=title)
    return fig


@register_figure("cka_heatmap")
def cka_heatmap(history: pd.DataFrame, results: pd.DataFrame, *, kernel: str = "linear", where: Where | None = None,
                title: str = "") -> Figure:
    """CKA between every layer of run A (rows) and of run B (columns) for the first run selected (its config
    point's seed pairs, averaged), values written in the cells."""
    rows = _rows(results, where)
    cells = _indexed(rows, rf"cka\.{kernel}_matrix\.(\d+)\.(\d+)")
    r = rows.dropna(subset=list(cells.values())).iloc[0] if rows[list(cells.values())].notna().all(axis=1).any() \
        else rows.iloc[0]
    na, nb = max(i for i, _ in cells) + 1, max(j for _, j in cells) + 1
    m = np.array([[float(r[cells[(i, j)]]) for j in range(nb)] for i in range(na)])
    fig = Figure(figsize=(1.0 + 0.6 * nb, 0.8 + 0.6 * na), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(m, vmin=0, vmax=1, cmap="magma", origin="upper")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    ax.set_xticks(range(nb))
    ax.set_yticks(range(na))
    ax.set_xlabel("layer of run B")
    ax.set_ylabel("layer of run A")
    ax.set_title(title or f"{kernel} CKA, {r['run_id']}'s seed pairs", fontsize=10)
    return fig
