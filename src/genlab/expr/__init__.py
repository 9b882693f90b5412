"""A small safe expression language for spec text (`where`, and any option that names a formula of columns).

Spec text is data: nothing here calls `eval`, `DataFrame.query` or `DataFrame.eval`. A tokenizer and a
recursive-descent parser build a tree of a few node kinds; `evaluate` walks it over a pandas DataFrame with
whitelisted operations only.

    parse("`init.std` > 0.01 and data.corrupt_prob in [0.0, 1.0]")    # an Expr
    evaluate(parse("test_error - train_error"), results)               # (n,) float Series
    select_mask = evaluate(parse("not model.batch_norm"), results)     # (n,) bool Series

Grammar (lowest precedence first; keywords are lower case, `True`/`False` also accepted):

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") sum]
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | STRING | "true" | "false" | list | "(" expr ")" | FUNC "(" expr ")" | column
    list    := "[" [literal ("," literal)* [","]] "]"          (literals: numbers, strings, true/false)
    column  := NAME ("." NAME)* | `any text but a backtick`   (e.g. init.std, `data.flips`)
    FUNC    := len | abs | log | exp                          (len of a tuple/list/string column)

Text is limited to MAX_CHARS characters and MAX_DEPTH levels of nesting, so no input can recurse deeply.
Errors are `ExprError` (a ValueError) naming the expression, the position and the bad token or column.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from genlab.expr.grammar import FUNCS, MAX_CHARS, MAX_DEPTH, Expr, ExprError, parse
from genlab.expr.types import check
from genlab.expr.values import evaluate, select

__all__ = ["Expr", "ExprError", "parse", "check", "evaluate", "select", "Where", "Formula", "FUNCS", "MAX_CHARS",
           "MAX_DEPTH"]


def _checked(kind: str):
    def check_text(text: str) -> str:
        check(text, kind)
        return text

    return check_text


# Option types for registered functions: the options validator parses the text at spec load, so a bad
# expression is refused before anything runs. `where: Where | None = None` in a figure or finding signature.
Where = Annotated[str, AfterValidator(_checked("bool"))]  # a filter: true/false per row
Formula = Annotated[str, AfterValidator(_checked("number"))]  # a value per row, e.g. "test_error - train_error"
