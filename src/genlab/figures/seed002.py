"""Figures of seed 002 (the "tweaks" CIFAR CNN study) that the generic ones cannot draw, registered by name.

- `curves_facets`: learning curves in a grid — one column per metric panel, one row (or column) per value of
  a `facet` field, one colour per `hue` key — after an optional `where` filter. 002 Fig. 2 (accuracy per
  epoch per step size, with and without annealing side by side), Figs. 3-5 (BN on/off at batch 32; BN
  across batch sizes) and Figs. 6-7 (one panel per init scheme, one line per σ or constant value).
- `versus_panels`: final metrics against a sweep field, one axes per metric panel, mean ± std over seeds,
  with the x axis optionally `1 − x` (002's dropout p is the KEEP probability, the model's option the DROP
  probability) and on a symlog scale (002 Fig. 9's λ sweep includes λ = 0).

Both are pure functions of the history/results tables (see `genlab.figures`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from genlab.lazy import pd
from genlab.lazy import Figure

from genlab.expr import Where
from genlab.figures import register_figure
from genlab.figures.curves import STYLES, mean_std, with_accuracy, ylabel
from genlab.figures.style import note, spread_note
from genlab.tables import fmt, hue_labels, hue_order, require, select

MARKERS = ["-o", "--s", ":^", "-.v", "-D", "--x"]  # one per metric of a versus panel


def _sort_key_scalar(v):
    """Numbers (and booleans) in order before anything else, which sorts as text."""
    return (0, float(v)) if isinstance(v, (int, float, np.number)) else (1, str(v))


@register_figure("curves_facets")
def curves_facets(history: pd.DataFrame, results: pd.DataFrame, *, panels: list[list[str]] = [["train_loss"]],
                  hue: list[str] = [], facet: str | None = None, where: Where | None = None,
                  labels: dict[str, str] = {}, log_y: bool = False, title: str = "") -> Figure:
    """Metrics vs epoch in a grid: columns are metric panels (or, with one panel, the facets), rows the
    values of `facet`; one colour per `hue` key, line style per split (train solid, test dashed, val dotted).

    Args:
      panels: metric names per panel, e.g. [["test_accuracy"], ["val_loss"]] (002 Fig. 3).
      hue: config columns whose values name a line; a row's missing values are left out of its label, so
        constant (init.value) and random (init.std) inits can share a figure (002 Fig. 6).
      facet: a config column with one panel row per value (e.g. "schedule.name" for 002 Fig. 2).
      where: an expression selecting runs (genlab.expr), e.g. "`train.batch_size` == 32".
      labels: display names of hue/facet columns, e.g. {"optim.lr": "initial lr"}.
      log_y: log-scale the y axes of loss panels (accuracy and error panels stay linear).
    Returns: a Figure; lines are the mean over seeds, bands ± one sample standard deviation across seeds.
    """
    if history.empty:
        raise ValueError("no finished runs to draw: run the spec first (`genlab run SPEC`)")
    h = select(with_accuracy(history), where, "epochs of the history", allow_empty=False)
    require(h, [m for p in panels for m in p], "metric")
    require(h, hue + ([facet] if facet else []), "config field")
    h = h.assign(_hue=hue_labels(h, hue, labels), _facet=h[facet] if facet else "all")
    order = hue_order(h, hue, labels) if hue else ["all"]
    colors = {k: f"C{i % 10}" for i, k in enumerate(order)}
    facets = sorted(h["_facet"].dropna().unique(), key=str)
    rows, cols = (1, len(facets)) if len(panels) == 1 else (len(facets), len(panels))
    fig = Figure(figsize=(4.8 * cols, 3.6 * rows))
    grid = fig.subplots(rows, cols, squeeze=False)
    for fi, fv in enumerate(facets):
        sub = h[h["_facet"] == fv]
        for pi, metrics in enumerate(panels):
            ax = grid[0, fi] if len(panels) == 1 else grid[fi, pi]
            for metric in metrics:
                stats = mean_std(sub, ["_hue"], metric)
                for key in (k for k in order if k in set(stats["_hue"])):
                    s = stats[stats["_hue"] == key]
                    ax.plot(s["epoch"], s["mean"], STYLES.get(metric.split("_", 1)[0], "-."), color=colors[key],
                            lw=1.4, label=f"{metric} ({key})" if hue else metric)
                    if (s["std"] > 0).any():
                        ax.fill_between(s["epoch"], s["mean"] - s["std"], s["mean"] + s["std"], color=colors[key],
                                        alpha=0.15, lw=0)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel(metrics))
            if log_y and all(m.endswith("_loss") for m in metrics):  # accuracy/error panels stay linear
                ax.set_yscale("log")
            if facet:
                ax.set_title(f"{labels.get(facet, facet)} = {fmt(fv)}", fontsize=9)
            ax.legend(fontsize=6)
            ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    note(fig, [spread_note(h, ["_hue", "_facet"])])  # what the bands are
    return fig


@register_figure("versus_panels")
def versus_panels(history: pd.DataFrame, results: pd.DataFrame, *, x: str, panels: list[list[str]],
                  hue: str | None = None, one_minus: bool = False,
                  x_scale: Literal["linear", "log", "symlog"] = "linear", labels: dict[str, str] = {},
                  where: Where | None = None, title: str = "") -> Figure:
    """Final metrics against the sweep field `x`, one axes per panel: mean over seeds ± one sample std
    (ddof=1) bars, marker/line style per metric, colour per `hue` value.

    Args:
      one_minus: plot 1 − x (002 Fig. 1: keep probability p = 1 − model.dropout).
      x_scale: "symlog" keeps x = 0 on a log-like axis (002 Fig. 9: λ = 0 beside 1e-4 … 1e-1); its linear
        range reaches the smallest positive x.
      labels: axis/legend names with units per column, e.g. {"optim.weight_decay": "weight decay λ"}.
    """
    df = select(with_accuracy(results), where, "runs", allow_empty=False)
    require(df, [x] + [m for p in panels for m in p] + ([hue] if hue else []), "column")
    xv = pd.to_numeric(df[x], errors="coerce")
    df = df.assign(_x=1.0 - xv if one_minus else xv)
    groups = sorted(df[hue].dropna().unique(), key=_sort_key_scalar) if hue else [None]
    fig = Figure(figsize=(5.0 * len(panels), 4.0))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, metrics in zip(axes, panels):
        for j, m in enumerate(metrics):
            for i, g in enumerate(groups):
                sub = df[df[hue] == g] if hue else df
                agg = sub.groupby("_x")[m].agg(["mean", "std"]).reset_index().sort_values("_x")
                label = m + (f" ({labels.get(hue, hue)}={fmt(g)})" if hue else "")
                ax.errorbar(agg["_x"], agg["mean"], yerr=agg["std"].fillna(0), fmt=MARKERS[j % len(MARKERS)],
                            color=f"C{(i if hue else j) % 10}", ms=4, lw=1.2, capsize=2, label=label)
        if x_scale == "symlog":
            pos = df.loc[df["_x"] > 0, "_x"]
            ax.set_xscale("symlog", linthresh=float(pos.min()) if len(pos) else 1.0)
        else:
            ax.set_xscale(x_scale)
        ax.set_xlabel(labels.get(x, f"1 − {x}" if one_minus else x))
        ax.set_ylabel(ylabel(metrics))
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
