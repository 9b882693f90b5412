"""Run-level figures: one point per run (`scatter`, with an optional least-squares line) and a final metric
against a sweep field (`versus`, mean ± std over seeds). Both draw from the results table."""

from __future__ import annotations

import numpy as np
from genlab.lazy import pd
from genlab.lazy import Figure

from genlab.expr import Where
from genlab.figures import register_figure
from genlab.figures.curves import with_accuracy
from genlab.figures.style import finish_axes, note, spread_note
from genlab.findings import linear_fit
from genlab.tables import numeric, require, select


def _label(col: str, labels: dict[str, str]) -> str:
    return labels.get(col, col)


@register_figure("scatter")
def scatter(history: pd.DataFrame, results: pd.DataFrame, *, x: str, y: str, hue: str | None = None,
            fit: bool = False, identity: bool = False, log_x: bool = False, log_y: bool = False,
            fit_in_log: bool = False, labels: dict[str, str] = {}, title: str = "",
            where: Where | None = None, fit_per_hue: bool = False) -> Figure:
    """y against x, one point per finished run, coloured by `hue`.

    Args:
      fit: draw the least-squares line (in log-log space when `fit_in_log`), its slope in the legend.
      fit_per_hue: one line per `hue` group, in its colour (else one line through every point).
      identity: draw y = x (the slope-1 line of 000 Fig. 4-3).
      labels: axis labels with units per column, e.g. {"normalized_loss.test": "normalized test loss (nats)"}.
      where: an expression selecting runs (genlab.expr).
    """
    df = with_accuracy(select(results, where))
    xs, ys = numeric(df, x).to_numpy(float), numeric(df, y).to_numpy(float)
    fig = Figure(figsize=(5.4, 4.2))
    ax = fig.subplots()
    groups = sorted(df[hue].dropna().unique()) if hue else [None]
    ok = np.isfinite(xs) & np.isfinite(ys)
    for i, g in enumerate(groups):
        sel = (df[hue] == g).to_numpy() if hue else np.ones(len(df), bool)
        ax.scatter(xs[sel], ys[sel], s=22, color=f"C{i % 10}", label=f"{_label(hue, labels)}={g}" if hue else None)
        if fit and fit_per_hue and hue:
            _fit_line(ax, xs[sel & ok], ys[sel & ok], fit_in_log, f"C{i % 10}", f"{_label(hue, labels)}={g} ")
    if fit and not (fit_per_hue and hue):
        _fit_line(ax, xs[ok], ys[ok], fit_in_log, "k", "")
    if identity and ok.any():
        lo, hi = min(xs[ok].min(), ys[ok].min()), max(xs[ok].max(), ys[ok].max())
        ax.plot([lo, hi], [lo, hi], color="0.5", ls="--", lw=1, label="y = x")
    finish_axes(ax, xlabel=_label(x, labels), ylabel=_label(y, labels), log_x=log_x, log_y=log_y, title=title)
    fig.tight_layout()
    return fig


def _fit_line(ax, xs: np.ndarray, ys: np.ndarray, in_log: bool, color: str, name: str) -> None:
    """The least-squares line through (xs, ys) (finite), when there are at least 3 points."""
    if len(xs) < 3:
        return
    fx, fy = (np.log(xs), np.log(ys)) if in_log else (xs, ys)
    a, se, b, _ = linear_fit(fx, fy)
    grid = np.linspace(fx.min(), fx.max(), 100)
    gx, gy = (np.exp(grid), np.exp(a * grid + b)) if in_log else (grid, a * grid + b)
    ax.plot(gx, gy, "-", color=color, lw=1.2, label=f"{name}fit: slope {a:.3g} ± {se:.2g}, intercept {b:.3g}")


@register_figure("versus")
def versus(history: pd.DataFrame, results: pd.DataFrame, *, x: str, metrics: list[str], hue: str | None = None,
           log_x: bool = False, log_y: bool = False, labels: dict[str, str] = {}, title: str = "",
           where: Where | None = None) -> Figure:
    """Final `metrics` against the sweep field `x`: mean over seeds with ± one sample std (ddof=1) bars,
    one line per metric (and per `hue` value)."""
    df = with_accuracy(select(results, where))
    require(df, [x, *metrics] + ([hue] if hue else []))
    fig = Figure(figsize=(5.6, 4.2))
    ax = fig.subplots()
    groups = sorted(df[hue].dropna().unique()) if hue else [None]
    styles = ["-o", "--s", ":^", "-.v"]
    for j, m in enumerate(metrics):
        for i, g in enumerate(groups):
            sub = df[df[hue] == g] if hue else df
            agg = sub.groupby(x)[m].agg(["mean", "std"]).reset_index().sort_values(x)
            label = _label(m, labels) + (f" ({_label(hue, labels)}={g})" if hue else "")
            ax.errorbar(agg[x], agg["mean"], yerr=agg["std"].fillna(0), fmt=styles[j % 4], color=f"C{i % 10}",
                        ms=4, lw=1.2, capsize=2, label=label)
    finish_axes(ax, xlabel=_label(x, labels), log_x=log_x, log_y=log_y, title=title,
                ylabel=_label(metrics[0], labels) if len(metrics) == 1 else " / ".join(_label(m, labels) for m in metrics))
    fig.tight_layout()
    has = pd.concat([pd.to_numeric(df[m], errors="coerce").notna() for m in metrics], axis=1).any(axis=1)
    note(fig, [spread_note(df[has], [x, *([hue] if hue else [])], "error bars")])  # runs with a value, counted
    return fig
