"""The finishing touches every genlab axes gets: scales, labels with units, legend, grid; titles filled from
the configs of the runs drawn; a note under the axes of what a figure leaves out."""

from __future__ import annotations

import re
import textwrap
from numbers import Real

import numpy as np
from genlab.lazy import pd

from genlab.tables import fmt, missing

# display names of registered entries, for titles (a name not here is shown as it is)
NAMES = {"digits": "digits (8×8)", "cifar10": "CIFAR-10", "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST",
         "mnist1d": "MNIST-1D", "separable": "separable synthetic data", "gaussian_regression": "Gaussian regression",
         "resnet20": "ResNet-20", "resnet56": "ResNet-56", "convnet3": "ConvNet3", "conv4": "Conv-4", "vgg": "VGG",
         "tweaks_cnn": "the 002 CNN", "linear": "linear", "mlp": "MLP", "cross_entropy": "cross-entropy",
         "exp": "exponential loss", "mse": "squared loss"}
LOSS_UNITS = {"cross_entropy": "loss (nats)", "exp": "exponential loss exp(−y·f)", "mse": "squared error"}
FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")  # {data.name}: a column, nothing else


def finish_axes(ax, *, xlabel: str, ylabel: str, log_x: bool = False, log_y: bool = False, title: str = "") -> None:
    ax.set_xscale("log" if log_x else "linear")
    ax.set_yscale("log" if log_y else "linear")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)


def show_value(v) -> str:
    """A config value for a title: lists as a/b/c, registered names by their display name."""
    if isinstance(v, (list, tuple)):
        return "/".join(show_value(x) for x in v)
    return NAMES.get(v, v) if isinstance(v, str) else fmt(v)


def column_text(df: pd.DataFrame, col: str) -> str:
    """The distinct values of `col` among the rows drawn, in sorted order, joined by ", "."""
    if col not in df.columns:
        raise ValueError(f"title field {{{col}}} is not a column of the runs drawn; config columns: "
                         f"{', '.join(sorted(c for c in df.columns if '.' in str(c)))}")
    values = [v for v in df[col] if isinstance(v, (list, tuple)) or not missing(v)]
    numbers = all(isinstance(v, Real) and not isinstance(v, (bool, np.bool_)) for v in values)
    shown = [show_value(v) for v in (sorted(set(values)) if numbers else values)]
    return ", ".join(dict.fromkeys(shown if numbers else sorted(shown))) or "—"


def fill_title(template: str, df: pd.DataFrame) -> str:
    """`template` with each {dotted.column} replaced by that column's values among the runs drawn, e.g.
    "ConvNet3 on {data.name}, lr {optim.lr}" → "ConvNet3 on digits (8×8), lr 0.05". Spec text is data: only
    column names are substituted (no format(), no attribute access)."""
    return FIELD.sub(lambda m: column_text(df, m.group(1)), template)


def loss_label(df: pd.DataFrame) -> str:
    """The y label of a loss: its name and units from `train.loss` of the runs drawn ("loss" if unknown)."""
    names = sorted(df["train.loss"].dropna().unique()) if "train.loss" in df.columns else []
    return " / ".join(LOSS_UNITS.get(n, n) for n in names) or "loss"


def note(fig, lines: list[str], width: int = 150) -> None:
    """Write under the axes what the figure leaves out and why, and keep the lines on the figure
    (`fig.genlab_notes`) for the report's caption. Nothing left out: nothing written."""
    lines = [ln for ln in lines if ln]
    if not lines:
        return
    fig.genlab_notes = [*getattr(fig, "genlab_notes", []), *lines]
    text = "\n".join(textwrap.fill(ln, width) for ln in lines)
    fig.text(0.01, 0.0, text, fontsize=7, va="top", ha="left", color="0.3")


def spread_note(df: pd.DataFrame, by: list[str], what: str = "bands") -> str:
    """What a figure's bands (or error bars) are, for its caption: "lines: mean over 3 seeds; bands: ± 1
    sample standard deviation (ddof=1) across seeds", with the runs per curve counted from `df` (a range when
    curves differ; "" when every curve is one run: nothing is drawn around it)."""
    if "run_id" not in df.columns or not len(df):
        return ""
    keys = [c for c in by if c in df.columns]
    counts = df.groupby(keys, dropna=False)["run_id"].nunique() if keys else pd.Series([df["run_id"].nunique()])
    lo, hi = int(counts.min()), int(counts.max())
    if hi < 2:
        return ""
    n = f"{lo}" if lo == hi else f"{lo}-{hi}"
    return (f"lines: mean over {n} runs (seeds) each; {what}: ± 1 sample standard deviation (ddof=1) across "
            "them, not a standard error or a confidence interval")
