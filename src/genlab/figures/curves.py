"""Learning curves: metrics per epoch, one colour per value of a sweep field, mean ± std over seeds."""

from __future__ import annotations

from genlab.lazy import pd
from genlab.lazy import Figure

from genlab.figures import register_figure
from genlab.figures.style import finish_axes, loss_label

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


@register_figure("curves")
def curves(history: pd.DataFrame, results: pd.DataFrame, *, panels: list[list[str]] = [["train_loss", "test_loss"]],
           hue: str | None = None, title: str = "", log_y: bool = False, mark_events: bool = True,
           hue_label: str | None = None) -> Figure:
    """Metrics vs epoch: one axes per panel, one colour per `hue` value, line style per split.

    Args:
      panels: metric names per panel, e.g. [["train_loss", "test_loss"], ["test_accuracy"], ["cosine"]].
      hue: the config column (dotted, e.g. "init.std") whose values get one colour each.
      log_y: log-scale y axes. mark_events: grey vertical lines at epochs with an event (perturbations).
    Returns: a Figure; lines are the mean over seeds, bands ± one standard deviation across seeds.
    """
    if history.empty:
        raise ValueError("no finished runs to draw: run the spec first (`genlab run SPEC`)")
    h = with_accuracy(history)
    for m in (m for p in panels for m in p):
        if m not in h.columns:
            raise ValueError(f"metric {m!r} not in the history; present: {sorted(c for c in h.columns if '.' not in c)}")
    if hue is not None and hue not in h.columns:
        raise ValueError(f"hue {hue!r} is not a config column; present: {sorted(c for c in h.columns if '.' in c)}")
    fig = Figure(figsize=(5.2 * len(panels), 3.8))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    values = sorted(h[hue].dropna().unique()) if hue else [None]
    colors = [f"C{i % 10}" for i in range(len(values))]
    by = [hue] if hue else []
    for ax, metrics in zip(axes, panels):
        for metric in metrics:
            split = metric.split("_", 1)[0]
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
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig

