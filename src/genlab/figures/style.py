"""The finishing touches every genlab axes gets: scales, labels with units, legend, grid."""

from __future__ import annotations


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
