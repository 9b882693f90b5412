"""Small pure helpers over the results tables, shared by figures and findings.

`select` filters rows with a genlab expression (genlab.expr: "init.std > 0.01 and epoch == 1"; spec text is
never handed to pandas' query/eval); `where` is the command line's `--where`, the same language;
`require` checks that columns exist; `numeric` reads one as floats; `fmt` and `hue_labels` name values.
Errors are ValueErrors that name the query or the column and list what is present.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from genlab.lazy import pd

from genlab import expr


def select(df: pd.DataFrame, where: str | None, what: str = "rows", allow_empty: bool = True) -> pd.DataFrame:
    """`df` filtered by the boolean expression `where` (genlab.expr; None: all rows). ExprError (a ValueError)
    names the expression and the bad token or column."""
    if not where:
        return df
    out = expr.select(df, where)
    if out.empty and not allow_empty:
        raise ValueError(f"where = {where!r} selects no {what}")
    return out


def require(df: pd.DataFrame, cols: list[str], what: str = "column") -> None:
    for c in cols:
        if c not in df.columns:
            raise ValueError(f"{what} {c!r} is not a column; present: {', '.join(map(str, df.columns))}")


def numeric(df: pd.DataFrame, col: str, what: str = "column") -> pd.Series:
    """The column as floats (non-numbers become NaN)."""
    require(df, [col], what)
    return pd.to_numeric(df[col], errors="coerce")


def missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt(v) -> str:
    """A value for a label: numbers with %g, anything else as text."""
    return f"{v:g}" if isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)) else str(v)


def hue_labels(df: pd.DataFrame, hue: list[str], labels: dict[str, str]) -> pd.Series:
    """One legend label per row from its non-missing `hue` values, e.g. "σ=0.05" or "value=1"."""
    def one(row) -> str:
        parts = [f"{labels.get(c, c)}={fmt(row[c])}" for c in hue if not missing(row[c])]
        return ", ".join(parts) or "all"
    return df.apply(one, axis=1) if len(df) else pd.Series([], dtype=str)


def _sort_key(col: pd.Series) -> pd.Series:
    num = pd.to_numeric(col, errors="coerce")
    return num if num.notna().sum() == col.notna().sum() else col.astype(str)


def hue_order(df: pd.DataFrame, hue: list[str], labels: dict[str, str]) -> list[str]:
    """Hue labels in the order of their values (missing values first), each once."""
    keys = df[hue].drop_duplicates().sort_values(hue, na_position="first", key=_sort_key)
    return list(dict.fromkeys(hue_labels(keys, hue, labels)))


# ---- `--where`: the command line's filter, in the spec's expression language (genlab.expr) -----------------

def where(df: pd.DataFrame, text: str | None) -> pd.DataFrame:
    """The rows of `df` where the boolean expression `text` holds (None or "": all rows). The language is
    genlab.expr's (columns, numbers, 'text', [lists], == != < <= > >= in, and or not): parsed, never evaluated."""
    if not text or not text.strip():
        return df
    return expr.select(df, text)


def split(df: pd.DataFrame, require: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows meeting `require`, rows that do not): a claim's precondition (e.g. "train_error == 0"), whose
    failures are left out of a fit or a figure and listed (`describe_rows`), never dropped silently."""
    if not require:
        return df, df.iloc[:0]
    kept = select(df, require)
    return kept, df.loc[~df.index.isin(kept.index)]


CONFIG_SECTIONS = ("data", "model", "init", "optim", "schedule", "train", "events", "record", "constraint")  # RunConfig's


def varying(df: pd.DataFrame, limit: int = 3) -> list[str]:
    """The config columns (dotted names) whose values differ between rows: what tells runs apart. A column
    that splits the rows as an earlier one does (data.corrupt_test beside data.corrupt_prob) adds nothing and
    is skipped."""
    cols, seen = [], set()
    for c in df.columns:
        if str(c).split(".", 1)[0] not in CONFIG_SECTIONS or "." not in str(c):  # a measure's field is no config
            continue
        codes = df[c].astype(str)
        if codes.nunique(dropna=False) < 2:
            continue
        key = tuple(pd.factorize(codes)[0])
        if key not in seen:
            seen.add(key)
            cols.append(c)
    return cols[:limit]


def describe_rows(rows: pd.DataFrame, among: pd.DataFrame, show: tuple[str, ...] = ()) -> str:
    """One short label per row, e.g. "init.std=0.0032 (train_error 0.574)": the config columns that vary
    in `among` (the rows considered), then the `show` columns in brackets; rows joined by "; ", rows with the
    same label once with their count ("init.std=0.1 ×18": the seeds of one point)."""
    keys = varying(among) or ["run_id"]
    counts: dict[str, int] = {}
    for _, r in rows.iterrows():
        head = ", ".join(f"{k}={fmt(r[k])}" for k in keys if k in r.index and not missing(r[k]))
        extra = ", ".join(f"{c} {fmt(r[c])}" for c in show if c in r.index and not missing(r[c]))
        label = head + (f" ({extra})" if extra else "")
        counts[label] = counts.get(label, 0) + 1
    return "; ".join(label + (f" ×{n}" if n > 1 else "") for label, n in counts.items())


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"init": {"std": 0.1}} → {"init.std": 0.1}: the config as dotted columns (lists become tuples, hashable)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out
