"""Figures: a registry of functions that draw from the results tables, never from training.

A figure function is `fn(history: DataFrame, results: DataFrame, *, options...) -> matplotlib Figure`, where
`history` has one row per (run, epoch) and `results` one row per run (see `Store.history` / `Store.results`).
A spec lists the figures to draw in `[[figures]]` tables: `name` (the registered function), `file` (the
output name, without extension) and the function's options. A `title` may name config columns in braces,
"ConvNet3 on {data.name}, lr {optim.lr}": they are filled from the runs drawn (`style.fill_title`), so a
small and a full profile are both labelled truthfully.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from genlab.figures.style import fill_title
from genlab.outfiles import write_with
from genlab.paths import check_name, under
from genlab.registry import Registry, call_entry

FigureFn = Callable[..., Any]
_FIGURES: Registry[FigureFn] = Registry("figure")
register_figure = _FIGURES.register
get_figure = _FIGURES.get
list_figures = _FIGURES.names

FORMATS = ("png", "pdf")


def draw(entry: dict[str, Any], history, results):
    """Draw one `[[figures]]` entry; its options are checked against the function's signature, its title
    filled from the configs of the runs it selects."""
    if isinstance(entry.get("title"), str) and "{" in entry["title"]:
        entry = {**entry, "title": fill_title(entry["title"], drawn_runs(entry, history, results))}
    return call_entry(_FIGURES, entry, history, results, ignore=("file",))


def png_b64(fig) -> str:
    """A drawn figure as base64 PNG text (110 dpi, tight), for an HTML page's inline <img>."""
    import base64
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def drawn_runs(entry: dict[str, Any], history, results):
    """The rows a figure entry draws from, for its title: results (else history) filtered by its `where`."""
    from genlab.tables import select

    df = results if results is not None and len(results) else history
    where = entry.get("where")
    try:
        return select(df, where) if isinstance(where, str) else df
    except ValueError:  # a `where` on history-only columns (epoch): the title reads every run
        return df


def save(fig, out_dir: Path, stem: str, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write `fig` as <out_dir>/<stem>.<ext> per format; `stem` must be a plain file name (genlab.paths)."""
    check_name(stem, "figure file")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        p = under(out_dir, f"{stem}.{ext}")
        write_with(p, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"), "figure")
        paths.append(p)
    return paths


from genlab.figures import curves, ranking, scatter, seed000, seed002, seed003, seed004  # noqa: E402,F401  (registers)
from genlab.figures import rules  # noqa: E402,F401  (the learning-rules study)
from genlab.figures import lenses  # noqa: E402,F401  (issue 26: ESD, landscape, barrier, CKA)
