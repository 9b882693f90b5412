"""Figures: a registry of functions that draw from the results tables, never from training.

A figure function is `fn(history: DataFrame, results: DataFrame, *, options...) -> matplotlib Figure`, where
`history` has one row per (run, epoch) and `results` one row per run (see `Store.history` / `Store.results`).
A spec lists the figures to draw in `[[figures]]` tables: `name` (the registered function), `file` (the
output name, without extension) and the function's options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from genlab.registry import Registry, call_entry

FigureFn = Callable[..., Any]
_FIGURES: Registry[FigureFn] = Registry("figure")
register_figure = _FIGURES.register
get_figure = _FIGURES.get
list_figures = _FIGURES.names

FORMATS = ("png", "pdf")


def draw(entry: dict[str, Any], history, results):
    """Draw one `[[figures]]` entry; its options are checked against the function's signature."""
    return call_entry(_FIGURES, entry, history, results, ignore=("file",))


def save(fig, out_dir: Path, stem: str, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        p = out_dir / f"{stem}.{ext}"
        fig.savefig(p, dpi=120, bbox_inches="tight")
        paths.append(p)
    return paths


from genlab.figures import curves, scatter, seed000, seed002, seed003, seed004  # noqa: E402,F401  (registers)
from genlab.figures import rules  # noqa: E402,F401  (the learning-rules study)
