"""The generalization gap of each run, from a formula of result columns: `test_error - train_error` by default.

`gap_values(df, text)` is the one place that reads user text. It is a tiny recursive-descent parser over
column names, numbers, + - * / and parentheses — never `eval`, `DataFrame.query` or `DataFrame.eval`. The
shared safe grammar (`genlab.expr`, being written on another branch) accepts a superset of this text with the
same meaning; swapping it in is a change to `gap_values` alone.

    gap_values(results, "test_error - train_error")     # (n,) float Series
    gap_values(results, "`test_loss` / train_loss")      # backticks quote any column name
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

DEFAULT_GAP = "test_error - train_error"  # = train accuracy − test accuracy, PGDL's gap, in error-rate units
MAX_CHARS = 500  # longer formulas are refused before tokenizing
MAX_DEPTH = 30  # nested parentheses and unary minus together, so no text can recurse deeply

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<quoted>`[^`]*`)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_0-9][A-Za-z0-9_]*)*)
  | (?P<op>[-+*/()])
""", re.VERBOSE)


def gap_values(df: pd.DataFrame, text: str = DEFAULT_GAP) -> pd.Series:
    """The formula `text` over the columns of `df`, as a (n,) float Series (non-numbers become NaN).

    Grammar: sum := product (("+"|"-") product)*; product := unary (("*"|"/") unary)*;
    unary := "-" unary | NUMBER | column | "(" sum ")"; column := name(.name)* | `any text`.
    Raises ValueError naming the formula, the position and the bad token or unknown column.
    """
    if len(text) > MAX_CHARS:
        raise ValueError(f"gap formula is {len(text)} characters long; at most {MAX_CHARS}")
    tokens = _tokens(text)
    pos = 0

    def fail(msg: str) -> ValueError:
        at = tokens[pos][1] if pos < len(tokens) else len(text)
        return ValueError(f"gap formula {text!r}, at character {at}: {msg}")

    def column(name: str) -> pd.Series:
        if name not in df.columns:
            raise fail(f"no column {name!r}; present: {', '.join(map(str, df.columns))}")
        return pd.to_numeric(df[name], errors="coerce").astype(float)

    def atom(depth: int):
        nonlocal pos
        if depth > MAX_DEPTH:
            raise fail(f"nested more than {MAX_DEPTH} levels")
        if pos >= len(tokens):
            raise fail("the formula ends too early")
        kind, _, tok = tokens[pos]
        pos += 1
        if kind == "op" and tok == "-":
            return -atom(depth + 1)
        if kind == "op" and tok == "(":
            value = expr(depth + 1)
            if pos >= len(tokens) or tokens[pos][2] != ")":
                raise fail("expected ')'")
            pos += 1
            return value
        if kind == "number":
            return float(tok)
        if kind in ("name", "quoted"):
            return column(tok.strip("`") if kind == "quoted" else tok)
        pos -= 1
        raise fail(f"unexpected {tok!r}; expected a column, a number, '-' or '('")

    def binary(depth: int, ops: str, operand):
        nonlocal pos
        value = operand(depth)
        while pos < len(tokens) and tokens[pos][0] == "op" and tokens[pos][2] in ops:
            op = tokens[pos][2]
            pos += 1
            rhs = operand(depth)
            value = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[op](value, rhs)
        return value

    def expr(depth: int):
        return binary(depth, "+-", lambda d: binary(d, "*/", atom))

    value = expr(0)
    if pos != len(tokens):
        raise fail(f"unexpected {tokens[pos][2]!r} after a complete formula")
    if not isinstance(value, pd.Series):  # a formula of numbers only: the same for every run
        raise ValueError(f"gap formula {text!r} names no column; it must depend on the runs")
    return value.replace([np.inf, -np.inf], np.nan).rename("gap")


def _tokens(text: str) -> list[tuple[str, int, str]]:
    """(kind, position, text) per token; whitespace dropped. Unknown characters raise ValueError."""
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"gap formula {text!r}, at character {pos}: unexpected {text[pos]!r}; "
                             "use column names, numbers, + - * / and parentheses")
        if m.lastgroup != "ws":
            out.append((m.lastgroup, pos, m.group()))
        pos = m.end()
    if not out:
        raise ValueError("gap formula is empty; e.g. 'test_error - train_error'")
    return out
