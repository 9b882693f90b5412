"""The expression checker's types: what each node of a parsed expression gives, found before any row is read.

    number   int/float columns and literals, arithmetic, len/abs/log/exp
    text     'strings' and text columns
    bool     true/false, comparisons, and/or/not, in
    list     [..] literals and tuple columns (model.widths, per_class.test)
    any      a column whose type is known only from the table (results columns before any run)

`infer(expr, types, known)` walks the tree (no recursion deeper than grammar.MAX_DEPTH) and raises ExprError
naming the expression and what is wrong: a string operation on a number (`'a' * 2`), `len` of a number
(`len(init.std)`), an ordering between text and a number, an unknown column (when `known` says which exist).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from genlab.expr.grammar import COMPARE, Binary, Call, Column, Expr, ExprError, ListLit, Literal, Node, Unary, shown


def type_of(value: Any) -> str:
    """A Python value's expression type."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "list"
    return "any"


def infer(expr: Expr, types: Mapping[str, str] | None = None,
          known: Callable[[str], bool] | None = None) -> str:
    """The type `expr` gives; ExprError when an operation cannot apply to its operands' types, or (with
    `known`) a column is neither in `types` nor known."""
    types = types or {}
    text = expr.text

    def bad(msg: str) -> ExprError:
        return ExprError(f"expression {shown(text)}: {msg}")

    def what(n: Node, t: str) -> str:
        if isinstance(n, Column):
            return f"column {n.name!r} holds {'numbers' if t == 'number' else t}"
        if isinstance(n, Literal):
            return f"{n.value!r} is {'a number' if t == 'number' else t}"
        return f"a {t}"

    def need(n: Node, t: str, want: tuple[str, ...], op: str) -> None:
        if t not in (*want, "any"):
            words = {"number": "numbers", "text": "text", "bool": "true/false", "list": "a [list]"}
            raise bad(f"`{op}` needs {' or '.join(words[w] for w in want)}, but {what(n, t)}")

    def walk(n: Node) -> str:
        if isinstance(n, Literal):
            return type_of(n.value)
        if isinstance(n, ListLit):
            return "list"
        if isinstance(n, Column):
            if n.name in types:
                return types[n.name]
            if known is not None and not known(n.name):
                from genlab.suggest import close

                hint = close(n.name, types)
                raise bad(f"no column {n.name!r}" + (f"; did you mean {' or '.join(map(repr, hint))}?" if hint else "")
                          + f" (text values need quotes: '{n.name}')")
            return "any"
        if isinstance(n, Call):
            t = walk(n.arg)
            if n.func == "len":
                need(n.arg, t, ("list", "text"), "len")
            else:
                need(n.arg, t, ("number",), n.func)
            return "number"
        if isinstance(n, Unary):
            t = walk(n.arg)
            need(n.arg, t, ("bool",) if n.op == "not" else ("number",), n.op)
            return "bool" if n.op == "not" else "number"
        assert isinstance(n, Binary)
        a, b = walk(n.left), walk(n.right)
        if n.op in ("and", "or"):
            need(n.left, a, ("bool",), n.op)
            need(n.right, b, ("bool",), n.op)
            return "bool"
        if n.op in ("in", "not in"):
            need(n.right, b, ("list",), n.op)
            return "bool"
        if n.op in COMPARE:
            if "list" in (a, b):
                raise bad(f"compare a column with a [list] by `in`, not `{n.op}`")
            if n.op not in ("==", "!=") and {a, b} == {"text", "number"}:
                raise bad(f"`{n.op}` orders numbers or text, not one with the other")
            return "bool"
        need(n.left, a, ("number",), n.op)
        need(n.right, b, ("number",), n.op)
        return "number"

    return walk(expr.root)
