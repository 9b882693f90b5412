"""The generalization gap of each run, from a formula of result columns: `test_error - train_error` by default.

The formula is text in genlab's safe expression language (`genlab.expr`: column names, numbers, + - * /,
parentheses and a few functions; never `eval`, `DataFrame.query` or `DataFrame.eval`), the same language as
every `where` of a spec; here it must give a number and name at least one column.

    gap_values(results, "test_error - train_error")     # (n,) float Series
    gap_values(results, "`test_loss` / train_loss")      # backticks quote any column name
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genlab.expr import ExprError, check, evaluate
from genlab.spec.analysis import DEFAULT_GAP  # noqa: F401  (test_error - train_error, PGDL's gap)


def gap_values(df: pd.DataFrame, text: str = DEFAULT_GAP) -> pd.Series:
    """The formula `text` over the columns of `df`, as a (n,) float Series (non-numbers and ±inf become NaN).

    Raises ExprError (a ValueError) naming the formula, the position and the bad token or unknown column.
    """
    if not text.strip():
        raise ExprError("gap formula is empty; e.g. 'test_error - train_error'")
    try:
        e = check(text, "number")
    except ExprError as err:
        raise ExprError(f"gap formula: {err}") from None
    if not e.columns:  # a formula of numbers only: the same for every run
        raise ExprError(f"gap formula {text!r} names no column; it must depend on the runs")
    numeric = df.copy()
    for c in e.columns:
        if c in numeric.columns:  # text columns become NaN, never code
            numeric[c] = pd.to_numeric(numeric[c], errors="coerce").astype(float)
    try:
        value = evaluate(e, numeric).astype(float)
    except ExprError as err:
        raise ExprError(f"gap formula: {err}") from None
    return value.replace([np.inf, -np.inf], np.nan).rename("gap")
