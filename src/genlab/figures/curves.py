"""Learning curves: metrics per epoch, one colour per value of a sweep field, mean ± std over seeds."""

from __future__ import annotations

import numpy as np

from genlab.lazy import Figure, pd

from genlab.figures import register_figure
from genlab.figures.style import finish_axes, loss_label, note, spread_note
from genlab.tables import describe_rows

UNITS = {"loss": "loss (nats)", "error": "error rate", "accuracy": "accuracy", "cosine": "cos θ to reference"}
STYLES = {"train": "-", "test": "--", "val": ":"}


def with_accuracy(history: pd.DataFrame) -> pd.DataFrame:
    """Add `<split>_accuracy` = 1 − `<split>_error` for every error column."""
    extra = {c.replace("_error", "_accuracy"): 1.0 - history[c] for c in history.columns if c.endswith("_error")}
    return history.assign(**extra)


def ylabel(metrics: list[str], history: pd.DataFrame | None = None) -> str:
    """Units of a panel's metrics; a loss is named by `train.loss` of the runs drawn (exp is not in nats)."""
    kinds = {m.rsplit("_", 1)[-1] for m in metrics}
    units = {**UNITS, "loss": loss_label(history)} if history is not None and "train.loss" in history else UNITS
    return " / ".join(units.get(k, k) for k in sorted(kinds))


def mean_std(history: pd.DataFrame, by: list[str], metric: str) -> pd.DataFrame:
    """Mean and sample standard deviation (ddof=1; 0 for one seed) of `metric` per `by` group and epoch.

    An epoch with a perturbation keeps its two rows (before, after), so the curve shows the jump.
    """
    post = history["event"].notna() if "event" in history.columns else False  # the row after a perturbation
    g = history.assign(_post=post).groupby(by + ["epoch", "_post"], dropna=False)[metric]
    out = g.agg(["mean", "std", "count"]).reset_index().sort_values(by + ["epoch", "_post"])
    out["std"] = out["std"].fillna(0.0)
    return out


def diverged_runs(history: pd.DataFrame, results: pd.DataFrame | None) -> set:
    """The run ids of runs that diverged: status "diverged" in the results, or (no status) a non-finite
    training loss in the history."""
    if results is not None and len(results) and {"status", "run_id"} <= set(results.columns):
        return set(results.loc[results["status"] == "diverged", "run_id"])
    if "train_loss" in history.columns and "run_id" in history.columns:
        bad = ~np.isfinite(pd.to_numeric(history["train_loss"], errors="coerce").to_numpy(float))
        return set(history.loc[bad, "run_id"])
    return set()


def diverged_note(history: pd.DataFrame, ids: set, hue: str | None = None) -> str:
    """"Diverged: k runs …" naming each (the config columns that tell the runs apart, its `hue` value, its
    seed) and its last epoch."""
    if not ids:
        return ""
    last = history[history["run_id"].isin(ids)].sort_values("epoch").groupby("run_id").tail(1)
    return (f"Diverged: {len(last)} of {history['run_id'].nunique()} runs, left out of the mean and the axis "
            f"ranges and drawn dotted until they leave the axes: {describe_rows(last, history, tuple(c for c in (hue, 'seed', 'epoch') if c))}.")


def _draw_diverged(ax, h: pd.DataFrame, metric: str, hue: str | None, values: list, colors: list[str]) -> None:
    """Each diverged run's curve, thin and dotted, inside the axis range the other runs set (never widening it)."""
    if not ax.has_data():  # every run of the panel diverged: the range of their finite values below the 90th percentile
        v = pd.to_numeric(h[metric], errors="coerce").to_numpy(float)
        v = v[np.isfinite(v)]
        if len(v):
            lo, hi = v.min(), np.percentile(v, 90)
            pad = 0.05 * (hi - lo) or 1.0
            ax.set_ylim(lo - pad, hi + pad)
            ax.set_xlim(h["epoch"].min(), h["epoch"].max())
    ax.autoscale(False)
    for rid, run in h.groupby("run_id", sort=False):
        c = colors[values.index(run[hue].iloc[0])] if hue and run[hue].iloc[0] in values else "0.4"
        ax.plot(run["epoch"], pd.to_numeric(run[metric], errors="coerce"), ":", color=c, lw=0.9, alpha=0.8)


@register_figure("curves")
def curves(history: pd.DataFrame, results: pd.DataFrame, *, panels: list[list[str]] = [["train_loss", "test_loss"]],
           hue: str | None = None, title: str = "", log_y: bool = False, mark_events: bool = True,
           hue_label: str | None = None) -> Figure:
    """Metrics vs epoch: one axes per panel, one colour per `hue` value, line style per split.

    Args:
      panels: metric names per panel, e.g. [["train_loss", "test_loss"], ["test_accuracy"], ["cosine"]].
      hue: the config column (dotted, e.g. "init.std") whose values get one colour each.
      log_y: log-scale y axes. mark_events: grey vertical lines at epochs with an event (perturbations).
    Returns: a Figure; lines are the mean over seeds, bands ± one standard deviation across seeds. Runs that
    diverged (status "diverged" in `results`) are left out of the means and never set an axis range: they are
    drawn dotted inside the range the others set, and listed under the axes.
    """
    if history.empty:
        raise ValueError("no finished runs to draw: run the spec first (`genlab run SPEC`)")
    h = with_accuracy(history)
    gone = diverged_runs(h, results)
    h_div = h[h["run_id"].isin(gone)] if gone else h.iloc[:0]
    h = h[~h["run_id"].isin(gone)] if gone else h
    for m in (m for p in panels for m in p):
        if m not in h.columns:
            raise ValueError(f"metric {m!r} not in the history; present: {sorted(c for c in h.columns if '.' not in c)}")
    if hue is not None and hue not in h.columns:
        raise ValueError(f"hue {hue!r} is not a config column; present: {sorted(c for c in h.columns if '.' in c)}")
    fig = Figure(figsize=(5.2 * len(panels), 3.8))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    values = sorted(pd.concat([h, h_div])[hue].dropna().unique()) if hue else [None]
    colors = [f"C{i % 10}" for i in range(len(values))]
    by = [hue] if hue else []
    for ax, metrics in zip(axes, panels):
        for metric in metrics:
            split = metric.split("_", 1)[0]
            if h.empty:
                continue
            stats = mean_std(h if hue else h.assign(_all=0), by or ["_all"], metric)
            for v, c in zip(values, colors):
                s = stats[stats[hue] == v] if hue else stats
                label = f"{metric} ({hue_label or hue}={v:g})" if hue and isinstance(v, (int, float)) else \
                    (f"{metric} ({hue_label or hue}={v})" if hue else metric)
                ax.plot(s["epoch"], s["mean"], STYLES.get(split, "-."), color=c, label=label, lw=1.4)
                if (s["std"] > 0).any():
                    ax.fill_between(s["epoch"], s["mean"] - s["std"], s["mean"] + s["std"], color=c, alpha=0.15,
                                    lw=0)
        if mark_events and "event" in h.columns:
            for e in sorted(h.loc[h["event"].notna(), "epoch"].unique()):
                ax.axvline(e, color="0.6", lw=0.8, ls=":", zorder=0)
        finish_axes(ax, xlabel="epoch", ylabel=ylabel(metrics, h), log_y=log_y)
        if len(h_div):
            for metric in metrics:
                _draw_diverged(ax, h_div, metric, hue, values, colors)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    note(fig, [spread_note(h, by), diverged_note(pd.concat([h, h_div]), gone, hue)])  # bands; diverged runs
    return fig

