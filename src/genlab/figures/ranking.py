"""The measure-ranking figure: a measure μ against the generalization gap, one point per kept run, one panel
per hyperparameter axis coloured by that axis's value (what `genlab.analysis` ranks, seen run by run)."""

from __future__ import annotations

import math

import numpy as np
from genlab.lazy import pd
from genlab.lazy import Figure

from genlab.figures import register_figure
from genlab.figures.style import finish_axes
from genlab.tables import fmt

PANELS_PER_ROW = 4


@register_figure("measure_vs_gap")
def measure_vs_gap(history: pd.DataFrame, results: pd.DataFrame, *, measure: str, gap: str | None = None,
                   axes: list[str] | None = None, log_y: bool = False, title: str = "") -> Figure:
    """μ (`measure`, a result column) against the gap (a formula, default `test_error - train_error`) over
    the runs that reached the sweep's stop criterion; one panel per axis (default: the config columns that
    vary), points coloured by the axis value, Kendall τ of the runs in the title."""
    from genlab.analysis.gap import DEFAULT_GAP
    from genlab.analysis.kendall import kendall_tau
    from genlab.analysis.sweep import sample, sweep

    sw = sweep(results, gap or DEFAULT_GAP, axes)
    s = sample(sw, measure)
    names = s.axes or ("all runs",)
    rows = math.ceil(len(names) / PANELS_PER_ROW)
    cols = min(len(names), PANELS_PER_ROW)
    fig = Figure(figsize=(3.3 * cols, 2.9 * rows + 0.4), layout="constrained")
    mu = pd.to_numeric(sw.runs[measure], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(mu)
    for k, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, k + 1)
        codes = sw.codes[ok, k] if s.axes else np.zeros(ok.sum(), dtype=int)
        levels = sw.levels[name] if s.axes else ["all"]
        for c, value in enumerate(levels):
            at = codes == c
            ax.scatter(sw.gap[ok][at], mu[ok][at], s=12, alpha=0.75, label=f"{fmt(value)}", color=f"C{c % 10}")
        finish_axes(ax, xlabel=f"gap = {sw.gap_text}", ylabel=measure, log_y=log_y,
                    title=name)
        if ax.get_legend():
            ax.get_legend().set_title(None)
    tau = kendall_tau(s)["tau"]
    excluded = sum(sw.excluded.values())
    fig.suptitle(title or f"{measure}: τ = {tau:.3f} over {len(s.mu)} runs"
                 + (f" ({excluded} excluded)" if excluded else ""), fontsize=11)
    return fig
