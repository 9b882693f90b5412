"""Figures of seed 000 chapters 4 and 5 that the generic ones (curves, scatter, versus) cannot draw.

* `ch4_losses` — test vs train loss, raw and normalized, side by side (Figs. 4-1, 4-2, 4-3, 4-6), with the
  random-label (RL) point marked and "the regression of slope 1 with a positive intercept" (Fig. 4-6).
* `ch4_points` — one run-level quantity against another (Figs. 4-4, 4-5, 4-7 a–c, 4-8 to 4-11), with the
  derived columns of ch. 4: the product of the layer norms and the inverse normalized margin.
* `weightnorm_curves` — ch. 5: learning curves of weight-normalized training beside plain SGD.

Every function is a pure function of the results (or history) table; points are coloured by a sweep field on
a log colour scale (the init std spans three decades), and the RL runs are drawn as a red star.
"""

from __future__ import annotations

import math
import numpy as np
from genlab.lazy import pd
from genlab.lazy import LogNorm, Normalize
from genlab.lazy import Figure

from genlab.expr import Where, evaluate, parse
from genlab.figures import register_figure
from genlab.tables import describe_rows, numeric, select, split
from genlab.figures.curves import curves, with_accuracy
from genlab.figures.style import note
from genlab.findings import linear_fit

RL_WHERE = "`data.corrupt_prob` == 1.0"  # 000's RL point: every train and test label random
LABELS = {  # axis labels with units for the columns ch. 4 plots
    "train_loss": "training loss (nats)", "test_loss": "test loss (nats)",
    "normalized_loss.train": "normalized training loss (nats)", "normalized_loss.test": "normalized test loss (nats)",
    "output_normalized_loss.train": "output-normalized training loss (nats)",
    "output_normalized_loss.test": "output-normalized test loss (nats)",
    "train_error": "training error (fraction)", "test_error": "test error (fraction)",
    "init.std": "std of the initial weights σ", "init.scale": "weight scale factor after init",
    "prod_frobenius": "∏ₖ ‖Wₖ‖_F (unnormalized)", "inverse_margin": "1 / margin of the normalized net",
    "normalized_margin_q5": "5 % margin of the normalized net (logit units)",
    "output_normalized_margin_q5": "5 % margin of the output-normalized net (logit units)",
}


def derived(results: pd.DataFrame, *, margin: str = "normalized_margin_q5") -> pd.DataFrame:
    """`results` plus ch. 4's derived columns, where their inputs are present.

    prod_frobenius = exp(log_prod_frobenius) = ∏_k ‖W_k‖_F, the scale ρ of a bias-free ReLU net;
    inverse_margin = 1 / `margin`, a margin of the normalized net (normalized_margin_q5 for the ConvNet,
    output_normalized_margin_q5 for the ResNet).
    """
    out = with_accuracy(results)
    if "log_prod_frobenius" in out.columns:
        out = out.assign(prod_frobenius=np.exp(pd.to_numeric(out["log_prod_frobenius"], errors="coerce")))
    if margin in out.columns:
        out = out.assign(inverse_margin=1.0 / pd.to_numeric(out[margin], errors="coerce"))
    return out


def rl_mask(df: pd.DataFrame, rl: str | None) -> np.ndarray:
    """(n,) True for the RL runs (`rl`, a genlab expression); all False if its columns are absent."""
    e = parse(rl) if rl else None
    if e is None or df.empty or any(c not in df.columns for c in e.columns):
        return np.zeros(len(df), bool)
    return evaluate(e, df).to_numpy(bool)


def _points(ax, df: pd.DataFrame, x: str, y: str, *, hue: str | None, rl: str | None, annotate: str | None,
            labels: dict[str, str]):
    """Scatter y vs x coloured by `hue` (log colour scale when positive), RL runs as red stars; returns the
    (xs, ys, is_rl) arrays and the colour mappable (None without hue)."""
    xs, ys, is_rl = numeric(df, x).to_numpy(float), numeric(df, y).to_numpy(float), rl_mask(df, rl)
    mappable = None
    if hue and hue in df.columns and (~is_rl).any():
        h = numeric(df, hue).to_numpy(float)[~is_rl]
        norm = LogNorm(h.min(), h.max()) if (h > 0).all() and h.max() > h.min() else Normalize(h.min(), h.max())
        mappable = ax.scatter(xs[~is_rl], ys[~is_rl], c=h, cmap="viridis", norm=norm, s=26, edgecolors="k",
                              linewidths=0.3, label="runs")
    elif (~is_rl).any():
        mappable = None
        ax.scatter(xs[~is_rl], ys[~is_rl], s=26, color="C0", label="runs")
    if is_rl.any():
        ax.scatter(xs[is_rl], ys[is_rl], marker="*", s=160, color="red", edgecolors="k", linewidths=0.4,
                   label="RL (random labels)", zorder=3)
    if annotate and annotate in df.columns:
        for xi, yi, t in zip(xs, ys, df[annotate]):
            if np.isfinite(xi) and np.isfinite(yi):
                ax.annotate(f"{t:g}" if isinstance(t, (int, float)) else str(t), (xi, yi), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
    return xs, ys, is_rl, mappable


def runs_drawn(df: pd.DataFrame, require: str | None) -> tuple[pd.DataFrame, str]:
    """(the runs meeting the caption's promise `require`, e.g. "train_error == 0"; a note listing the others)."""
    kept, dropped = split(df, require)
    return kept.reset_index(drop=True), (f"Left out {len(dropped)} of {len(df)} runs not meeting {require}: "
                                         f"{describe_rows(dropped, df, ('train_error',))}." if len(dropped) else "")


def unplotted(df: pd.DataFrame, xs: np.ndarray, ys: np.ndarray, log_x: bool, log_y: bool, x: str, y: str) -> str:
    """A note listing the runs whose point cannot be drawn: a non-finite value, or ≤ 0 on a log axis."""
    bad = ~np.isfinite(xs) | ~np.isfinite(ys) | ((xs <= 0) if log_x else False) | ((ys <= 0) if log_y else False)
    if not bad.any():
        return ""
    why = "non-finite" + (f", or {x} ≤ 0 on a log axis" if log_x else "") + (f", or {y} ≤ 0 on a log axis" if log_y else "")
    return f"Not drawn: {int(bad.sum())} of {len(df)} runs ({why}): {describe_rows(df[bad], df, (x, y))}."


def slope_one_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least squares y = x + b with the slope held at 1: b = mean(y − x), ± its standard error (ddof=1)."""
    d = y - x
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0
    return float(d.mean()), se


def free_fit_label(a: float, se_a: float, b: float, se_b: float, n: int) -> str:
    """The legend of a least-squares line, as the `slope` finding reports it: slope and intercept ± their
    standard errors and the number of runs fitted."""
    return f"fit: slope {a:.3g} ± {se_a:.2g}, intercept {b:.3g} ± {se_b:.2g} (n = {n})"


def _finish(fig: Figure, ax, x: str, y: str, labels: dict[str, str], mappable, hue: str | None):
    ax.set_xlabel(labels.get(x, LABELS.get(x, x)))
    ax.set_ylabel(labels.get(y, LABELS.get(y, y)))
    if mappable is not None:  # an inset (child) axes: the figure's axes stay the data panels
        fig.colorbar(mappable, cax=ax.inset_axes([1.03, 0.0, 0.035, 1.0]), label=labels.get(hue, LABELS.get(hue, hue)))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


@register_figure("ch4_losses")
def ch4_losses(history: pd.DataFrame, results: pd.DataFrame, *,
               panels: list[dict[str, str]] = [{"x": "train_loss", "y": "test_loss"},
                                               {"x": "normalized_loss.train", "y": "normalized_loss.test",
                                                "fit": "free"}],
               hue: str | None = "init.std", rl: Where | None = RL_WHERE, fit_rl: bool = True, zoom: bool = False,
               annotate: str | None = None, labels: dict[str, str] = {}, title: str = "",
               require: Where | None = None, where: Where | None = None) -> Figure:
    """Test loss against training loss, one panel per {x, y[, fit]} pair (000 Figs. 4-1, 4-2, 4-3, 4-6).

    Args:
      panels: each {"x": column, "y": column, "fit": "none" | "slope_one" | "free"}. "free" (the default of
        the normalized panel) is the least-squares line y = a x + b the `slope` finding judges — same runs
        (`where`, `require`, finite values), same numbers — slope and intercept ± standard errors in the
        legend; "slope_one" draws y = x + b with b = mean(y − x), for a claim that holds the slope at 1.
      hue: the column colouring the points (log scale); rl: an expression marking the RL runs (red star).
      fit_rl: include the RL runs in the fit (Fig. 4-6: the RL point lies on the same line).
      zoom: limit the axes to the non-RL runs (Fig. 4-3, "zoomed in").
      annotate: a column written next to each point (the ResNet scale factors of Figs. 4-1, 4-10).
      require: what the caption promises of every run drawn (e.g. "train_error == 0"); the others are left
        out of the points and the fit, and listed under the axes.
    """
    df, left_out = runs_drawn(select(results, where).reset_index(drop=True), require)
    if df.empty:
        raise ValueError("no finished runs to draw: run the spec first (`genlab run SPEC`)" +
                         (f"; {left_out}" if left_out else ""))
    fig = Figure(figsize=(5.6 * len(panels), 4.4))
    notes = [left_out]
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, p in zip(axes, panels):
        if "x" not in p or "y" not in p:
            raise ValueError(f"ch4_losses: each panel needs 'x' and 'y' columns, got {p}")
        xs, ys, is_rl, mappable = _points(ax, df, p["x"], p["y"], hue=hue, rl=rl, annotate=annotate, labels=labels)
        ok = np.isfinite(xs) & np.isfinite(ys) & (True if fit_rl else ~is_rl)
        kind = p.get("fit", "none")
        if kind not in ("none", "slope_one", "free"):
            raise ValueError(f"ch4_losses: fit must be 'none', 'slope_one' or 'free', got {kind!r}")
        if kind != "none" and ok.sum() >= 2:
            grid = np.linspace(xs[ok].min(), xs[ok].max(), 50)
            if kind == "slope_one":
                b, se = slope_one_fit(xs[ok], ys[ok])
                ax.plot(grid, grid + b, "k-", lw=1.2, label=f"slope 1 fit: intercept {b:.3g} ± {se:.2g}")
            elif ok.sum() >= 3:
                a, se_a, b, se_b = linear_fit(xs[ok], ys[ok])
                ax.plot(grid, a * grid + b, "k-", lw=1.2, label=free_fit_label(a, se_a, b, se_b, int(ok.sum())))
        if zoom and (~is_rl & np.isfinite(xs) & np.isfinite(ys)).any():
            keep = ~is_rl & np.isfinite(xs) & np.isfinite(ys)
            for lim, v in ((ax.set_xlim, xs[keep]), (ax.set_ylim, ys[keep])):
                pad = 0.05 * (v.max() - v.min()) or 1e-3 * max(abs(v.max()), 1.0)
                lim(v.min() - pad, v.max() + pad)
        _finish(fig, ax, p["x"], p["y"], labels, mappable, hue)
        notes.append(unplotted(df, xs, ys, False, False, p["x"], p["y"]))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    note(fig, list(dict.fromkeys(notes)))
    return fig


@register_figure("ch4_points")
def ch4_points(history: pd.DataFrame, results: pd.DataFrame, *, x: str, y: str, hue: str | None = "init.std",
               rl: Where | None = RL_WHERE, annotate: str | None = None, log_x: bool = False, log_y: bool = False,
               line: bool = False, fit: bool = False, margin: str = "normalized_margin_q5", labels: dict[str, str] = {},
               title: str = "", require: Where | None = None, where: Where | None = None) -> Figure:
    """y against x, one point per run, RL runs as red stars (000 Figs. 4-4, 4-5, 4-7, 4-8, 4-9, 4-10, 4-11).

    x and y may be any results column or a derived one (`derived`): prod_frobenius, and inverse_margin
    = 1 / `margin` (a margin of the normalized net: normalized_margin_q5, output_normalized_margin_q5).

    Args:
      line: join the non-RL points in x order, the mean over seeds at each x (Figs. 4-4, 4-5, 4-11).
      fit: the least-squares line over the non-RL runs (in log x when `log_x`), its slope in the legend.
      require: what the caption promises of every run drawn (e.g. "train_error == 0" for "at zero training
        error"); the others are left out and listed under the axes, as are points a log axis cannot show.
    """
    df, left_out = runs_drawn(select(derived(results, margin=margin), where).reset_index(drop=True), require)
    if df.empty:
        raise ValueError("no finished runs to draw: run the spec first (`genlab run SPEC`)" +
                         (f"; {left_out}" if left_out else ""))
    fig = Figure(figsize=(5.8, 4.4))
    ax = fig.subplots()
    xs, ys, is_rl, mappable = _points(ax, df, x, y, hue=hue, rl=rl, annotate=annotate, labels=labels)
    ok = np.isfinite(xs) & np.isfinite(ys) & ~is_rl & ((xs > 0) if log_x else True)
    if line and ok.any():
        m = pd.DataFrame({"x": xs[ok], "y": ys[ok]}).groupby("x")["y"].mean()
        ax.plot(m.index, m.to_numpy(), "-", color="0.4", lw=1, zorder=1, label="mean over seeds")
    if fit and ok.sum() >= 3:
        fx = np.log(xs[ok]) if log_x else xs[ok]
        a, se, b, _ = linear_fit(fx, ys[ok])
        grid = np.linspace(fx.min(), fx.max(), 50)
        ax.plot(np.exp(grid) if log_x else grid, a * grid + b, "k-", lw=1.2,
                label=f"fit: slope {a:.3g} ± {se:.2g}" + (" per log unit" if log_x else ""))
    ax.set_xscale("log" if log_x else "linear")
    ax.set_yscale("log" if log_y else "linear")
    _finish(fig, ax, x, y, labels, mappable, hue)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    note(fig, [left_out, unplotted(df, xs, ys, log_x, log_y, x, y)])
    return fig


CH5_LABELS = {"log_prod_frobenius": "log ∏ₖ ‖Wₖ‖_F of the plain net (log units)",
              "log_prod_norms": "log ∏ₖ ‖Wₖ‖_F of the plain net (log units)",
              "norm_dev": "maxₖ |‖Vₖ‖_F − 1| (before projection)", "log_rho": "log ρ (log units)",
              "lambda_mean": "mean λₖ"}


def variant(row: pd.Series) -> str:
    """A readable name of a run's training method from its constraint.* columns (absent: plain SGD)."""
    name = row.get("constraint.name")
    if not isinstance(name, str) or name == "none":
        return "plain SGD"
    rho = row.get("constraint.rho")
    rho_txt = "ρ trained" if rho is None or bool(rho) else "no ρ"
    if name == "project":
        return "project each epoch, " + ("ρ absorbed" if rho is None or bool(rho) else "ρ discarded")
    if bool(row.get("constraint.fixed_lambda", False)):
        return f"Lagrange, λ fixed = {row.get('constraint.lam_init'):g}, {rho_txt}"
    return f"Lagrange, λ ascent (η_λ = {row.get('constraint.lam_lr'):g}), {rho_txt}"


@register_figure("weightnorm_curves")
def weightnorm_curves(history: pd.DataFrame, results: pd.DataFrame, *,
                      panels: list[list[str]] = [["train_loss", "test_loss"], ["test_error"],
                                                 ["log_prod_frobenius"]],
                      title: str = "", log_y: bool = False, where: Where | None = None) -> Figure:
    """000 ch. 5: learning curves per training method (plain SGD, projection, Lagrange), mean ± std over seeds.

    `log_prod_frobenius` in the history (record.measure_epochs) is log ∏_k ‖W_k‖_F of the plain net, which
    for a weight-normalized run is log ρ + Σ_k log ‖V_k‖: the scale of the function, comparable across methods.
    """
    if history is None or history.empty:
        raise ValueError("no finished runs to draw: run the spec first (`genlab run SPEC`)")
    h = select(history, where)
    h = h.assign(training=h.apply(variant, axis=1))
    fig = curves(h, results, panels=panels, hue="training", hue_label="training", title=title, log_y=log_y)
    for ax, metrics in zip(fig.axes, panels):
        for ln in ax.get_lines():  # measures recorded every few epochs: join the epochs that have them
            x, y = (np.asarray(v, float) for v in ln.get_data())
            if len(x) and np.isfinite(y).any():
                ln.set_data(x[np.isfinite(y)], y[np.isfinite(y)])
        if len(metrics) == 1 and metrics[0] in CH5_LABELS:
            ax.set_ylabel(CH5_LABELS[metrics[0]])
    return fig
