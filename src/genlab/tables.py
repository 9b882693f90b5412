"""Small pure helpers over the results tables, shared by figures and findings.

`select` filters rows with a pandas query (dotted config columns in backticks: "`init.std` > 0.01"); `where`
filters with the command line's small grammar (`init.std > 0.01 and model.name == mlp`), parsed, never evaluated;
`require` checks that columns exist; `numeric` reads one as floats; `fmt` and `hue_labels` name values.
Errors are ValueErrors that name the query or the column and list what is present.
"""

from __future__ import annotations

import math
import operator
import re

import numpy as np
import pandas as pd


def select(df: pd.DataFrame, where: str | None, what: str = "rows", allow_empty: bool = True) -> pd.DataFrame:
    """`df` filtered by the pandas query `where` (None: all rows)."""
    if not where:
        return df
    try:
        out = df.query(where)
    except Exception as e:  # pandas raises many types for a bad query string
        raise ValueError(f"where = {where!r}: {e}") from None
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


# ---- `--where`: a tiny filter grammar, parsed (never evaluated) ----------------------------------------------
# expr := cond ("and" cond)* ;  cond := column OP value | column "in" [v, ...]
# column: a name, dotted allowed (optim.lr), or `backquoted`; OP: == != < <= > >= ; value: a number, true/false or
# "quoted"/'quoted' text. Example: optim.lr == 0.01 and model.name == 'mlp'. A subset of the spec's expression
# grammar (genlab.expr, when it lands): whatever this accepts means the same there.
_TOKEN = re.compile(r"""\s*(?:(?P<bq>`[^`]+`)|(?P<op>==|!=|<=|>=|<|>)|(?P<str>"[^"]*"|'[^']*')|(?P<list>\[[^\]]*\])
                        |(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<word>[A-Za-z_][\w.]*)|(?P<comma>,))""", re.X)
_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"where {text!r}: cannot read {text[pos:].strip()!r} (expected column OP value [and ...])")
        out.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    return out


def _value(kind: str, tok: str, text: str):
    """A literal: number, quoted text, true/false, or a [list] of those."""
    if kind == "num":
        return float(tok) if any(c in tok for c in ".eE") else int(tok)
    if kind == "str":
        return tok[1:-1]
    if kind == "list":
        items = _tokens(tok[1:-1])
        values, commas = items[::2], items[1::2]
        if any(k in ("comma", "list") for k, _ in values) or any(k != "comma" for k, _ in commas):
            raise ValueError(f"where {text!r}: a list holds literals separated by commas, got {tok}")
        return [_value(k, t, text) for k, t in values]
    if tok in ("true", "false", "True", "False"):
        return tok.lower() == "true"
    raise ValueError(f"where {text!r}: {tok!r} is not a value; quote text (model.name == 'mlp')")


def parse_where(text: str) -> list[tuple[str, str, object]]:
    """"a.b < 0.1 and c == x" → [("a.b", "<", 0.1), ("c", "==", "x")]; a ValueError names what it cannot read."""
    toks, conds = _tokens(text), []
    while toks:
        if len(toks) < 3 or toks[0][0] not in ("bq", "word") or not (toks[1][0] == "op" or toks[1] == ("word", "in")):
            raise ValueError(f"where {text!r}: expected `column OP value` at {' '.join(t for _, t in toks[:3])!r} "
                             f"(OP: {', '.join(_OPS)}, in)")
        (ck, col), (_, op), (vk, val) = toks[:3]
        if (op == "in") != (vk == "list"):
            raise ValueError(f"where {text!r}: `in` takes a [list] and only `in` does, at {col} {op} {val}")
        conds.append((col.strip("`") if ck == "bq" else col, op, _value(vk, val, text)))
        toks = toks[3:]
        if toks and toks[0] != ("word", "and"):
            raise ValueError(f"where {text!r}: expected `and` between conditions, got {toks[0][1]!r}")
        if toks[:1] and not toks[1:]:
            raise ValueError(f"where {text!r}: nothing after the last `and`")
        toks = toks[1:]
    return conds


def _compare(col: pd.Series, op: str, value) -> pd.Series:
    if op == "in":
        return pd.concat([_compare(col, "==", v) for v in value], axis=1).any(axis=1) if value else col != col
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _OPS[op](pd.to_numeric(col, errors="coerce"), value)  # text cells become NaN: never selected
    if isinstance(value, bool):
        return _OPS[op](col.map(lambda v: v if isinstance(v, (bool, np.bool_)) else None), value)
    return _OPS[op](col.map(lambda v: None if missing(v) else fmt(v)), value)  # text: compare as shown


def where(df: pd.DataFrame, text: str | None) -> pd.DataFrame:
    """The rows of `df` that satisfy `text` (see the grammar above; None or "": all rows)."""
    if not text or not text.strip():
        return df
    mask = pd.Series(True, index=df.index)
    for col, op, value in parse_where(text):
        require(df, [col], f"where {text!r}: column")
        mask &= _compare(df[col], op, value).fillna(False).astype(bool)
    return df[mask]
