"""Tables out of the command line: plain machine-readable text (or a file), or a table that fits the terminal.

Machine-readable formats (csv, json, parquet) go straight to stdout or `--out FILE`, never through rich: rich
wraps lines at the terminal width (80 columns when redirected), which breaks CSV. A human table keeps the
columns that fit the terminal, whole (no `mod…`), and says which ones it hid.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # pandas loads with the first table (0.3 s): --help and ls never need it
    import pandas as pd

FORMATS = ("table", "csv", "json", "parquet")
CELL_PAD = 3  # rich's default box: one space each side plus the border before each column


def cell(v: Any) -> str:
    """A value as a table shows it: floats to 4 significant digits, missing as '-'."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(map(cell, v)) + ")"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# RunConfig's top-level fields (genlab.spec.loader.RUN_FIELDS, tested equal), named here because importing the
# configs imports torch (their defaults look up registries) and `genlab results` must start without it.
CONFIG_FIELDS = ("experiment", "seed", "data", "model", "init", "optim", "schedule", "train", "events", "record",
                 "constraint")
# what a reader looks for first: the test error (generalization), then the losses
FIRST = ("epoch", "event", "test_error", "train_error", "test_loss", "train_loss")
NOTES = ("tags", "note")  # genlab.notes: shown after the main metrics when any run has them


def results_view(df: pd.DataFrame) -> pd.DataFrame:
    """For a human: run_id, the config columns that vary, the main metrics, tags and notes, then the rest; rows
    sorted by the varying columns (numbers as numbers; then by epoch). Config columns (experiment, seed,
    data.*, model.*, ...) that hold one value for every row are left out, and so are empty tags/notes."""
    from genlab.tables import _sort_key

    config = [c for c in df.columns if c.split(".", 1)[0] in CONFIG_FIELDS]
    varying = [c for c in config if df[c].astype(str).nunique(dropna=False) > 1]
    first = [c for c in FIRST if c in df.columns]
    notes = [c for c in NOTES if c in df.columns and (df[c].astype(str) != "").any()]
    rest = [c for c in df.columns if c not in config and c not in first and c not in NOTES and c != "run_id"]
    keys = [*varying, *(["epoch"] if "epoch" in df.columns else [])]
    if keys and len(df):
        try:
            df = df.sort_values(keys, key=_sort_key, kind="stable", na_position="first")
        except TypeError:  # values that do not compare (mixed kinds): the store's order
            pass
    return df[[*(["run_id"] if "run_id" in df.columns else []), *varying, *first, *notes, *rest]]


def fit_columns(widths: list[int], available: int, keep: int = 1) -> int:
    """How many leading columns of `widths` (characters each, content only) fit in `available` characters;
    at least `keep` (the row names) even when they do not."""
    used, n = 1, 0  # the table's closing border
    for w in widths:
        if used + w + CELL_PAD > available and n >= keep:
            break
        used, n = used + w + CELL_PAD, n + 1
    return n


ALL_HINT = "choose with --columns, or --format csv|json|parquet for all"  # `genlab results`' options


def human_table(df: pd.DataFrame, console: Console, title: str = "", hint: str = ALL_HINT) -> None:
    """Print `df` as a rich table of the leading columns that fit `console`, then name the hidden ones and
    `hint`: how the calling command shows them (its own options)."""
    texts = {c: [cell(v) for v in df[c]] for c in df.columns}
    if "run_id" in texts:  # 8 characters name a run (compare, tag take prefixes); csv/json keep the whole id
        texts["run_id"] = [t[:8] if len(t) == 12 and all(ch in "0123456789abcdef" for ch in t) else t
                           for t in texts["run_id"]]
    widths = [max([len(str(c)), *map(len, texts[c])]) for c in df.columns]
    n = fit_columns(widths, console.width)
    t = Table(title=title or None, title_justify="left")
    for c, w in zip(df.columns[:n], widths):
        t.add_column(Text(str(c)), no_wrap=True, min_width=w)
    for i in range(len(df)):
        t.add_row(*(Text(texts[c][i]) for c in df.columns[:n]))  # Text: cell values are never markup
    console.print(t)
    hidden = list(df.columns[n:])
    if hidden:
        console.print(Text(f"{len(hidden)} columns hidden to fit {console.width} characters: {', '.join(map(str, hidden))}"
                           f" ({hint})"), style="dim")


def _json_cell(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN/inf
    return list(v) if isinstance(v, tuple) else v


def machine_text(df: pd.DataFrame, fmt: str) -> str:
    """CSV or JSON records, every float at full precision (pandas' to_json keeps only 10 digits)."""
    if fmt == "csv":
        return df.to_csv(index=False)
    records = [{k: _json_cell(v) for k, v in row.items()} for row in df.to_dict(orient="records")]
    return json.dumps(records, indent=1, default=str) + "\n"


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Parquet through DuckDB (already a dependency; pyarrow is not). Tuple cells become lists."""
    import duckdb

    plain = df.apply(lambda s: s.map(lambda v: list(v) if isinstance(v, tuple) else v) if s.dtype == object else s)
    con = duckdb.connect()
    con.register("t", plain)
    con.execute(f"COPY t TO '{str(path).replace(chr(39), chr(39) * 2)}' (FORMAT PARQUET)")


def emit(df: pd.DataFrame, fmt: str, out_file: Path | None, console: Console, title: str = "") -> None:
    """Write `df` as `fmt` to `out_file` (or stdout); `table` only to a terminal-sized console."""
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "table":
        if out_file is not None:
            raise ValueError("--out writes csv, json or parquet; add --format csv (or json, parquet)")
        return human_table(df, console, title)
    if fmt == "parquet":
        if out_file is None and sys.stdout.isatty():
            raise ValueError("parquet is binary: give --out FILE.parquet, or redirect stdout to a file")
        if out_file is not None:
            from genlab.outfiles import write_with

            write_with(out_file, lambda tmp: write_parquet(df, tmp), "--out")
            return None
        with tempfile.TemporaryDirectory() as d:
            write_parquet(df, Path(d) / "t.parquet")
            sys.stdout.flush()
            sys.stdout.buffer.write((Path(d) / "t.parquet").read_bytes())
            sys.stdout.buffer.flush()
        return None
    text = machine_text(df, fmt)
    if out_file is not None:
        from genlab.outfiles import write_out

        write_out(out_file, text, "--out")  # checked (no symlink), atomic (no 0-byte file on a full disk)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return None
