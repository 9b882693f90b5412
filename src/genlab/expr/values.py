"""Evaluating a parsed expression over a pandas DataFrame: whitelisted operations on columns, nothing else."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from genlab.lazy import pd

from genlab.expr.grammar import COMPARE, Binary, Call, Column, Expr, ExprError, ListLit, Literal, Node, Unary, \
    parse, shown
from genlab.expr.types import check


def evaluate(expr: Expr | str, df: pd.DataFrame) -> pd.Series:
    """The value of `expr` on each row of `df`: a Series on df.index (boolean for filters, float for formulas).

    A column that is absent raises ExprError listing the columns present; comparing a string with a number
    (or any other type clash) raises ExprError naming the expression.
    """
    e = parse(expr) if isinstance(expr, str) else expr
    missing = [c for c in e.columns if c not in df.columns]
    if missing:
        from genlab.suggest import unknown

        raise ExprError(f"expression {shown(e.text)}: " + unknown("no column", missing[0], df.columns)
                        + f"; text values need quotes: '{missing[0]}'")
    try:
        with np.errstate(all="ignore"):
            out = _walk(e.root, df, e.text)
    except ExprError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as err:
        raise ExprError(f"expression {shown(e.text)} cannot be computed on these columns: {err}") from None
    if not isinstance(out, pd.Series):
        out = pd.Series([out] * len(df), index=df.index)
    return out


def _is_bool(s: Any) -> bool:
    return isinstance(s, (bool, np.bool_)) or (isinstance(s, pd.Series) and s.dtype == bool)


def _as_bool(v: Any, op: str, text: str) -> Any:
    if _is_bool(v):
        return v
    if isinstance(v, pd.Series) and v.dtype == object and v.map(lambda x: isinstance(x, (bool, np.bool_))).all():
        return v.astype(bool)
    raise ExprError(f"expression {shown(text)}: `{op}` needs true/false values (a comparison such as `x > 0`)")


def _num(v: Any, op: str, text: str) -> Any:
    if isinstance(v, pd.Series):
        if v.dtype == bool:
            raise ExprError(f"expression {shown(text)}: `{op}` needs numbers, got a true/false column")
        out = pd.to_numeric(v, errors="coerce").astype(float)
        bad = out.isna() & v.notna()
        if bad.any():
            raise ExprError(f"expression {shown(text)}: `{op}` needs numbers, but column {v.name!r} holds "
                            f"{v[bad].iloc[0]!r}")
        return out
    if isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)):
        return float(v)
    raise ExprError(f"expression {shown(text)}: `{op}` needs numbers, got {v!r}")


def _length(x: Any) -> float:
    return float(len(x)) if isinstance(x, (tuple, list, str)) else math.nan


def _walk(n: Node, df: pd.DataFrame, text: str) -> Any:
    if isinstance(n, Literal):
        return n.value
    if isinstance(n, ListLit):
        return list(n.values)
    if isinstance(n, Column):
        return df[n.name]
    if isinstance(n, Call):
        v = _walk(n.arg, df, text)
        if n.func == "len":
            if isinstance(v, pd.Series):
                odd = v[v.notna() & ~v.map(lambda x: isinstance(x, (tuple, list, str)))]
                if len(odd):  # len of a number would match nothing, silently
                    x = odd.iloc[0]
                    raise ExprError(f"expression {shown(text)}: `len` needs lists or text, but column "
                                    f"{v.name!r} holds {x.item() if isinstance(x, np.generic) else x!r}")
                return v.map(_length).astype(float)
            if not isinstance(v, (tuple, list, str)):
                raise ExprError(f"expression {shown(text)}: `len` needs a list or text, got {v!r}")
            return _length(v)
        x = _num(v, n.func, text)
        return {"abs": np.abs, "log": np.log, "exp": np.exp}[n.func](x)
    if isinstance(n, Unary):
        v = _walk(n.arg, df, text)
        if n.op == "-":
            return -_num(v, "-", text)
        v = _as_bool(v, "not", text)
        return ~v if isinstance(v, pd.Series) else not v
    assert isinstance(n, Binary)
    a, b = _walk(n.left, df, text), _walk(n.right, df, text)
    if n.op in ("and", "or"):
        a, b = _as_bool(a, n.op, text), _as_bool(b, n.op, text)
        return (a & b) if n.op == "and" else (a | b)
    if n.op in ("in", "not in"):
        if not isinstance(b, list):
            raise ExprError(f"expression {shown(text)}: `{n.op}` needs a [list] on its right")
        inside = a.isin(b) if isinstance(a, pd.Series) else a in b
        return (~inside if isinstance(inside, pd.Series) else not inside) if n.op == "not in" else inside
    if n.op in COMPARE:
        return _compare(n.op, a, b, text)
    x, y = _num(a, n.op, text), _num(b, n.op, text)
    if n.op == "/":
        if not isinstance(x, pd.Series) and not isinstance(y, pd.Series):
            return x / y if y != 0 else (math.nan if x == 0 else math.copysign(math.inf, x))
        return x / y  # float Series: x / 0 is ±inf or NaN, as numpy has it
    return {"+": lambda: x + y, "-": lambda: x - y, "*": lambda: x * y}[n.op]()


def _compare(op: str, a: Any, b: Any, text: str) -> Any:
    if isinstance(a, list) or isinstance(b, list):
        raise ExprError(f"expression {shown(text)}: compare a column with a [list] by `in`, not `{op}`")
    if op in ("<", "<=", ">", ">=") and not (isinstance(a, str) and isinstance(b, str)):
        a, b = _num(a, op, text), _num(b, op, text)  # ordering needs numbers (or two strings)
    fn = {"==": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b, "<=": lambda: a <= b,
          ">": lambda: a > b, ">=": lambda: a >= b}[op]
    out = fn()
    if isinstance(out, pd.Series):
        return out.fillna(False).astype(bool) if out.dtype != bool else out
    return bool(out)


def select(df: pd.DataFrame, where: str | None) -> pd.DataFrame:
    """The rows of `df` where the boolean expression `where` holds (all rows for None or "")."""
    if not where:
        return df
    mask = evaluate(check(where, "bool"), df)
    if mask.dtype != bool:
        raise ExprError(f"where = {where!r} gives values, not true/false (compare it: `... > 0`)")
    return df[mask]
