"""Figures of seed 003 (HW0: Conv-4, vertical flips, random labels, min-norm regression) that the generic ones
cannot draw, registered by name. 003's Figs. 5-12 (random labels) are seed002's `curves_facets`.

- `capacity`: Conv-4 over kernel size and width — accuracy against the number of parameters, and the same
  numbers as a table (rows: kernel size, columns: width).
- `flip_curves`: 003 Figs. 2 and 4 — accuracy per epoch on the test set and on the vertically flipped test
  set, one panel per training condition (plain, flip-augmented).
- `per_class`: 003 Fig. 3 — final per-class accuracy on the test set and on each flipped copy, as bars.
- `min_norm_paths`: 003 §4 — train/test MSE, ‖w − X⁺y‖ and ‖w‖ along training, with the pseudo-inverse
  solution's values as references.
- `mp_spectrum`: 003 §4.4 — the density of the non-zero eigenvalues of XᵀX/n (from the quantiles the
  `design_spectrum` measure stored) with the Marchenko–Pastur density drawn over it.

All are pure functions of the history/results tables (see `genlab.figures`).
"""

from __future__ import annotations


import numpy as np
from genlab.lazy import pd
from genlab.lazy import Figure

from genlab.expr import Where
from genlab.figures import register_figure
from genlab.figures.curves import with_accuracy
from genlab.tables import fmt, hue_labels, hue_order, require, select
from genlab.figures.style import finish_axes

FLIP_NAMES = {"test": "test set", "test_vflip": "vertically flipped test set", "test_hflip": "horizontally flipped test set"}
FLIP_COLORS = {"test": "C0", "test_vflip": "C3", "test_hflip": "C2"}  # 003 Fig. 2: blue plain, red flipped
CLASS_NAMES = {"cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}


def _facets(df: pd.DataFrame, facet: str | None, labels: dict[str, str]) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) per value of `facet` (one ("", df) without a facet), in value order."""
    if not facet:
        return [("", df)]
    keys = df[facet].map(_text)
    return [(f"{labels.get(facet, facet)} = {v}", df[keys == v]) for v in sorted(keys.unique())]


def _text(v) -> str:
    """A config value as a label: lists (e.g. data.flips) joined, the empty one "none"."""
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v)) or "none"
    return fmt(v)


@register_figure("capacity")
def capacity(history: pd.DataFrame, results: pd.DataFrame, *, width: str = "model.width",
             kernel: str = "model.kernel_size", metrics: list[str] = ["train_accuracy", "test_accuracy"],
             table_metric: str = "test_accuracy", where: Where | None = None, title: str = "") -> Figure:
    """Accuracy against the number of parameters (log scale), one colour per kernel size, each point marked
    with its width; beside it the grid kernel × width with "n_params / metric" in each cell (003 §1's table).

    Values are means over seeds. Args: width, kernel: the config columns swept; metrics: final metrics to
    plot (solid: first, dashed: others); table_metric: the one written in the table.
    """
    df = select(with_accuracy(results), where, "runs", allow_empty=False)
    require(df, [width, kernel, "n_params", table_metric, *metrics], "column")
    values = list(dict.fromkeys(["n_params", table_metric, *metrics]))
    agg = df.groupby([kernel, width])[values].mean().reset_index()
    fig = Figure(figsize=(11, 4.2))
    ax, tab = fig.subplots(1, 2)
    for i, (k, sub) in enumerate(agg.groupby(kernel)):
        sub = sub.sort_values("n_params")
        for j, m in enumerate(metrics):
            ax.plot(sub["n_params"], sub[m], "-o" if j == 0 else "--s", color=f"C{i % 10}", ms=4,
                    label=f"{m} (kernel {fmt(k)})")
        for _, r in sub.iterrows():
            ax.annotate(f"c={fmt(r[width])}", (r["n_params"], r[metrics[0]]), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
    finish_axes(ax, xlabel="number of parameters", ylabel="accuracy (final epoch)", log_x=True)
    ks, ws = sorted(agg[kernel].unique()), sorted(agg[width].unique())
    cell = {(r[kernel], r[width]): r for _, r in agg.iterrows()}
    for yi, k in enumerate(ks):
        for xi, w in enumerate(ws):
            if (k, w) in cell:
                r = cell[(k, w)]
                tab.text(xi, yi, f"{int(r['n_params']):,}\n{r[table_metric]:.3f}", ha="center", va="center",
                         fontsize=8)
    tab.set_xticks(range(len(ws)), [fmt(w) for w in ws])
    tab.set_yticks(range(len(ks)), [fmt(k) for k in ks])
    tab.set_xlim(-0.5, len(ws) - 0.5)
    tab.set_ylim(len(ks) - 0.5, -0.5)
    tab.set_xlabel(f"width c ({width})")
    tab.set_ylabel(f"kernel size k ({kernel})")
    tab.set_title("parameters / " + table_metric.replace("_", " "), fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


@register_figure("flip_curves")
def flip_curves(history: pd.DataFrame, results: pd.DataFrame, *, facet: str | None = None,
                splits: list[str] = ["test", "test_vflip"], train: bool = True, labels: dict[str, str] = {},
                where: Where | None = None, title: str = "") -> Figure:
    """Accuracy per epoch on the test set (blue) and its flipped copies (red), one panel per value of
    `facet` (e.g. the training flips: 003 Fig. 2 without, Fig. 4 with augmentation); the training accuracy
    dotted when `train`. Lines are means over seeds; the last value is written in the legend."""
    if history.empty:
        raise ValueError("no finished runs to draw: run the spec first (`genlab run SPEC`)")
    h = select(with_accuracy(history), where, "epochs of the history", allow_empty=False)
    cols = [f"{s}_accuracy" for s in splits] + (["train_accuracy"] if train else [])
    require(h, cols + ([facet] if facet else []), "column")
    groups = _facets(h, facet, labels)
    fig = Figure(figsize=(5.0 * len(groups), 3.8))
    for ax, (name, sub) in zip(fig.subplots(1, len(groups), squeeze=False)[0], groups):
        for col in cols:
            split = col.removesuffix("_accuracy")
            s = sub.groupby("epoch")[col].mean()
            ax.plot(s.index, s.values, ":" if split == "train" else "-", color=FLIP_COLORS.get(split, "0.3"),
                    lw=1.4, label=f"{FLIP_NAMES.get(split, split + ' set')} (final {s.iloc[-1]:.3f})")
        finish_axes(ax, xlabel="epoch", ylabel="accuracy", title=name)
        ax.set_ylim(0, 1.02)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


@register_figure("per_class")
def per_class(history: pd.DataFrame, results: pd.DataFrame, *, splits: list[str] = ["test", "test_vflip"],
              facet: str | None = None, class_names: list[str] = [], labels: dict[str, str] = {},
              where: Where | None = None, title: str = "") -> Figure:
    """Final per-class accuracy (results' `per_class.<split>`, mean over seeds), bars side by side per
    split (003 Fig. 3: plain vs vertically flipped test set), one panel per value of `facet`.

    class_names: tick labels (default: CIFAR-10's names for cifar10 runs, else the class indices).
    """
    df = select(results, where, "runs", allow_empty=False)
    require(df, [f"per_class.{s}" for s in splits] + ([facet] if facet else []), "column")
    groups = _facets(df, facet, labels)
    fig = Figure(figsize=(6.0 * len(groups), 3.8))
    width = 0.8 / len(splits)
    for ax, (name, sub) in zip(fig.subplots(1, len(groups), squeeze=False)[0], groups):
        for j, s in enumerate(splits):
            acc = np.nanmean(np.array([list(v) for v in sub[f"per_class.{s}"]], float), axis=0)  # (K,)
            xs = np.arange(len(acc)) + (j - (len(splits) - 1) / 2) * width
            ax.bar(xs, acc, width, color=FLIP_COLORS.get(s, f"C{j}"), label=f"{FLIP_NAMES.get(s, s)} "
                   f"(mean {np.nanmean(acc):.3f})")
        names = class_names or CLASS_NAMES.get(_base_dataset(sub), [])
        k = len(acc)
        finish_axes(ax, xlabel="class", ylabel="accuracy (final epoch)", title=name)  # before ticks: scales reset them
        ax.set_xticks(range(k), names if len(names) == k else [str(i) for i in range(k)],
                      rotation=45 if len(names) == k else 0, fontsize=8)
        ax.axhline(1 / k, color="0.5", ls="--", lw=0.8)  # chance
        ax.legend(fontsize=7, loc="upper center", ncol=len(splits))
        ax.set_ylim(0, 1.22)  # room for the legend above the bars
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _base_dataset(df: pd.DataFrame) -> str:
    """The image set behind the runs: `data.base` for wrappers (train_flipped), else `data.name`."""
    for col in ("data.base", "data.name"):
        if col in df.columns and df[col].notna().any():
            return str(df[col].dropna().iloc[0])
    return ""


@register_figure("min_norm_paths")
def min_norm_paths(history: pd.DataFrame, results: pd.DataFrame, *, hue: list[str] = [],
                   measure: str = "min_norm_gap", labels: dict[str, str] = {}, where: Where | None = None,
                   title: str = "") -> Figure:
    """Along training (log-log): train (solid) and test (dashed) MSE with the pseudo-inverse solution's test
    MSE as a grey line; ‖w − X⁺y‖; ‖w‖ with ‖X⁺y‖ as a grey line. One colour per `hue` key.

    Reads the history's `<measure>.*` columns at `record.measure_epochs`, and train/test loss every epoch.
    """
    if history.empty:
        raise ValueError("no finished runs to draw: run the spec first (`genlab run SPEC`)")
    h = select(history, where, "epochs of the history", allow_empty=False)
    need = [f"{measure}.{k}" for k in ("distance", "norm", "min_norm", "min_norm_test_mse")]
    require(h, ["train_loss", "test_loss", *need, *hue], "column")
    h = h.assign(_hue=hue_labels(h, hue, labels) if hue else "all")
    order = hue_order(h, hue, labels) if hue else ["all"]
    fig = Figure(figsize=(15, 4.0))
    ax_mse, ax_dist, ax_norm = fig.subplots(1, 3)
    for i, key in enumerate(order):
        sub = h[(h["_hue"] == key) & (h["epoch"] > 0)]
        c = f"C{i % 10}"
        loss = sub.groupby("epoch")[["train_loss", "test_loss"]].mean()
        ax_mse.plot(loss.index, loss["train_loss"], "-", color=c, lw=1.3, label=f"train ({key})")
        ax_mse.plot(loss.index, loss["test_loss"], "--", color=c, lw=1.3, label=f"test ({key})")
        m = sub.dropna(subset=[f"{measure}.distance"]).groupby("epoch")[need].mean()
        ax_dist.plot(m.index, m[f"{measure}.distance"], "-o", color=c, ms=3, label=key)
        ax_norm.plot(m.index, m[f"{measure}.norm"], "-o", color=c, ms=3, label=f"‖w‖ ({key})")
    m_all = h[need].dropna()
    if len(m_all):
        ax_mse.axhline(m_all[f"{measure}.min_norm_test_mse"].mean(), color="0.4", ls="-.", lw=1,
                       label="test MSE of X⁺y")
        ax_norm.axhline(m_all[f"{measure}.min_norm"].mean(), color="0.4", ls="-.", lw=1, label="‖X⁺y‖")
    finish_axes(ax_mse, xlabel="epoch", ylabel="mean squared error", log_x=True, log_y=True)
    finish_axes(ax_dist, xlabel="epoch", ylabel="‖w − X⁺y‖ (Euclidean)", log_x=True, log_y=True)
    finish_axes(ax_norm, xlabel="epoch", ylabel="‖w‖ (Euclidean)", log_x=True)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


@register_figure("mp_spectrum")
def mp_spectrum(history: pd.DataFrame, results: pd.DataFrame, *, where: Where | None = None,
                title: str = "") -> Figure:
    """The density of the non-zero eigenvalues of XᵀX/n for the first selected run's training design, read
    from what the `design_spectrum` measure stored (its 51 quantiles: 2 % of the eigenvalues between
    neighbours, drawn as a step density), with the Marchenko–Pastur density for γ = p/n and σ² = mean(x²), its
    edges σ²(1 ∓ √γ)² as dotted lines, and the count of zero eigenvalues (p − rank) in the legend."""
    import torch

    from genlab.measures.regression import QUANTILES, mp_density, mp_edges

    df = select(results, where, "runs", allow_empty=False)
    cols = [f"design_spectrum.q{k:02d}" for k in range(QUANTILES + 1)]
    require(df, cols + ["design_spectrum.gamma", "design_spectrum.sigma2", "design_spectrum.n_zero"], "column")
    row = df.iloc[0]
    q = np.array([float(row[c]) for c in cols])
    gamma, sigma2, zeros = (float(row[f"design_spectrum.{k}"]) for k in ("gamma", "sigma2", "n_zero"))
    rank = round(zeros / (gamma - 1)) if gamma > 1 else None  # p − n zeros when p > n: rank = n
    p = rank + round(zeros) if rank is not None else None
    lo, hi = mp_edges(gamma, sigma2)
    fig = Figure(figsize=(6.0, 4.2))
    ax = fig.subplots()
    width = np.diff(q)
    dens = np.divide(1.0 / QUANTILES, width, out=np.full_like(width, np.nan), where=width > 0)
    ax.stairs(dens, q, fill=True, color="C0", alpha=0.6,
              label=f"non-zero eigenvalues (+ {round(zeros)} zeros), from {QUANTILES + 1} stored quantiles")
    grid = torch.linspace(max(lo, 1e-9), hi, 400, dtype=torch.float64)
    ax.plot(grid.numpy(), mp_density(grid, gamma, sigma2).numpy(), "k-", lw=1.5,
            label=f"Marchenko–Pastur, γ = p/n = {gamma:.3g}")
    for e in (lo, hi):
        ax.axvline(e, color="C3", ls=":", lw=1)
    ax.plot([], [], color="C3", ls=":", label=f"edges σ²(1 ∓ √γ)² = {lo:.3g}, {hi:.3g}")
    shape = f"n = {rank}, p = {p}" if rank is not None else f"γ = p/n = {gamma:.3g}"
    finish_axes(ax, xlabel="eigenvalue λ of XᵀX/n", ylabel="density", title=title or shape)
    fig.tight_layout()
    return fig
