"""Figures of seed 004 that the generic ones (curves, scatter, versus) cannot draw, registered by name.

`capacity_panels` is `versus` in several panels, like seed002's `versus_panels`, plus what the capacity
study needs: runs whose margin-normalized measure is +inf (γ_margin ≤ 0, vacuous) are left out and counted,
hue values get names ("true labels"), and one-element sweep lists (`model.widths = [h]`) are read as numbers.
It draws Neyshabur et al. 2017's Fig. 1 (one panel per capacity
measure against the training-set size, true vs random labels) and Figs. 3 and 5 (train/test error on the
left, the measures beside it, against the confusion-set size or the number of hidden units).
"""

from __future__ import annotations

import numpy as np
from genlab.lazy import pd
from genlab.lazy import Figure

from genlab.expr import Where
from genlab.tables import select
from genlab.figures import register_figure
from genlab.figures.curves import with_accuracy
from genlab.figures.style import finish_axes, note
from genlab.tables import describe_rows

PANEL_WIDTH = 3.3  # inches per panel; Fig. 1 has five side by side
STYLES = ["-o", "--s", ":^", "-.v"]  # one per metric within a panel


def sweep_values(col: pd.Series) -> pd.Series:
    """A sweep column as numbers: one-element lists/tuples (`model.widths = [h]`) become h."""
    return col.map(lambda v: v[0] if isinstance(v, (list, tuple)) and len(v) == 1 else v)


def mean_std_by(df: pd.DataFrame, x: str, metric: str) -> tuple[pd.DataFrame, int]:
    """Per value of x: mean and sample std (ddof=1; 0 for one seed) of the finite values of `metric`;
    and how many runs had a non-finite value (+inf: a vacuous measure, γ_margin ≤ 0), left out."""
    v = pd.to_numeric(df[metric], errors="coerce")
    ok = np.isfinite(v.to_numpy(float))
    agg = df.assign(_v=v)[ok].groupby(x)["_v"].agg(["mean", "std"]).reset_index().sort_values(x)
    return agg.assign(std=agg["std"].fillna(0.0)), int((~ok & v.notna().to_numpy()).sum())


def _hue_label(hue: str, value, names: dict[str, str]) -> str:
    key = f"{value:g}" if isinstance(value, (int, float)) else str(value)
    return names.get(str(value), names.get(key, f"{hue}={key}"))


@register_figure("capacity_panels")
def capacity_panels(history: pd.DataFrame, results: pd.DataFrame, *, x: str, panels: list[list[str]],
                  hue: str | None = None, hue_names: dict[str, str] = {}, labels: dict[str, str] = {},
                  ylabels: list[str] = [], log_x: bool = False, log_y: bool = False, title: str = "", where: Where | None = None) -> Figure:
    """Final metrics against the sweep field `x`, one axes per panel (a list of metrics), side by side.

    Each line is the mean over seeds with ± one sample std bars, a colour per `hue` value, a line style per
    metric. Runs whose value is not finite (a margin-normalized measure is +inf when γ_margin ≤ 0) are left
    out of the mean and counted in the panel's corner.

    Args:
      x: a sweep field; one-element lists (`model.widths`) are read as their element.
      panels: e.g. [["train_error", "test_error"], ["log_l2_capacity"], ["sharpness_004.zeta"]].
      hue_names: legend names per hue value, e.g. {"0.0": "true labels", "1.0": "random labels"}.
      labels: axis labels with units per column (x and metrics), also the legend names in multi-metric panels.
      ylabels: one y label per panel (default: the label of the panel's first metric).
      where: an expression selecting runs (genlab.expr), e.g. "data.n_train > 1000".
    """
    if not panels or not all(panels):
        raise ValueError("capacity_panels needs panels: a non-empty list of non-empty metric lists")
    if ylabels and len(ylabels) != len(panels):
        raise ValueError(f"capacity_panels: {len(ylabels)} ylabels for {len(panels)} panels; give one per panel")
    df = with_accuracy(select(results, where))
    for c in [x, *(m for p in panels for m in p)] + ([hue] if hue else []):
        if c not in df.columns:
            raise ValueError(f"column {c!r} not in the results; present: {', '.join(map(str, df.columns))}")
    df = df.assign(**{x: sweep_values(df[x])})
    fig = Figure(figsize=(PANEL_WIDTH * len(panels), 3.4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    groups = sorted(df[hue].dropna().unique()) if hue else [None]
    notes = []
    for k, (ax, metrics) in enumerate(zip(axes, panels)):
        left_out = 0
        for j, m in enumerate(metrics):
            v = pd.to_numeric(df[m], errors="coerce")
            bad = v.notna() & ~np.isfinite(v.to_numpy(float))
            if bad.any():
                notes.append(f"{labels.get(m, m)}: {int(bad.sum())} run(s) not finite (vacuous), not drawn: "
                             f"{describe_rows(df[bad], df)}.")
            for i, g in enumerate(groups):
                agg, bad = mean_std_by(df[df[hue] == g] if hue else df, x, m)
                left_out += bad
                name = labels.get(m, m) if len(metrics) > 1 else ""
                label = ", ".join(s for s in (name, _hue_label(hue, g, hue_names) if hue else "") if s)
                ax.errorbar(agg[x], agg["mean"], yerr=agg["std"], fmt=STYLES[j % len(STYLES)], color=f"C{i % 10}",
                            ms=4, lw=1.2, capsize=2, label=label or None)
        if left_out:
            ax.text(0.02, 0.02, f"{left_out} run(s) not finite (vacuous), not drawn", transform=ax.transAxes,
                    fontsize=7, color="0.35")
        ylabel = ylabels[k] if ylabels else labels.get(metrics[0], metrics[0])
        finish_axes(ax, xlabel=labels.get(x, x), ylabel=ylabel, log_x=log_x, log_y=log_y)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    note(fig, notes)
    return fig
