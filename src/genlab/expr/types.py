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

from genlab.expr.grammar import (COMPARE, Binary, Call, Column, Expr, ExprError, ListLit, Literal, Node, Unary,
                                 parse, shown)


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
    return _Typer(expr.text, types or {}, known).walk(expr.root)


class _Typer:
    """The walk of `infer`: each node's type from its operands', raising where an operation refuses them."""

    WORDS = {"number": "numbers", "text": "text", "bool": "true/false", "list": "a [list]"}

    def __init__(self, text: str, types: Mapping[str, str], known: Callable[[str], bool] | None):
        self.text, self.types, self.known = text, types, known

    def bad(self, msg: str) -> ExprError:
        return ExprError(f"expression {shown(self.text)}: {msg}")

    @staticmethod
    def what(n: Node, t: str) -> str:
        if isinstance(n, Column):
            return f"column {n.name!r} holds {'numbers' if t == 'number' else t}"
        if isinstance(n, Literal):
            return f"{n.value!r} is {'a number' if t == 'number' else t}"
        return f"a {t}"

    def need(self, n: Node, t: str, want: tuple[str, ...], op: str) -> None:
        if t not in (*want, "any"):
            raise self.bad(f"`{op}` needs {' or '.join(self.WORDS[w] for w in want)}, but {self.what(n, t)}")

    def walk(self, n: Node) -> str:
        if isinstance(n, Literal):
            return type_of(n.value)
        if isinstance(n, ListLit):
            return "list"
        if isinstance(n, Column):
            return self.column(n)
        if isinstance(n, Call):
            t = self.walk(n.arg)
            self.need(n.arg, t, ("list", "text") if n.func == "len" else ("number",), n.func)
            return "number"
        if isinstance(n, Unary):
            t = self.walk(n.arg)
            self.need(n.arg, t, ("bool",) if n.op == "not" else ("number",), n.op)
            return "bool" if n.op == "not" else "number"
        assert isinstance(n, Binary)
        return self.binary(n, self.walk(n.left), self.walk(n.right))

    def column(self, n: Column) -> str:
        if n.name in self.types:
            return self.types[n.name]
        if self.known is not None and not self.known(n.name):
            from genlab.suggest import close

            hint = close(n.name, self.types)
            raise self.bad(f"no column {n.name!r}" + (f"; did you mean {' or '.join(map(repr, hint))}?" if hint
                                                        else "") + f" (text values need quotes: '{n.name}')")
        return "any"

    def binary(self, n: Binary, a: str, b: str) -> str:
        if n.op in ("and", "or"):
            self.need(n.left, a, ("bool",), n.op)
            self.need(n.right, b, ("bool",), n.op)
            return "bool"
        if n.op in ("in", "not in"):
            self.need(n.right, b, ("list",), n.op)
            return "bool"
        if n.op in COMPARE:
            if "list" in (a, b):
                raise self.bad(f"compare a column with a [list] by `in`, not `{n.op}`")
            if n.op not in ("==", "!=") and {a, b} == {"text", "number"}:
                raise self.bad(f"`{n.op}` orders numbers or text, not one with the other")
            return "bool"
        self.need(n.left, a, ("number",), n.op)
        self.need(n.right, b, ("number",), n.op)
        return "number"


def check(text: str, kind: str = "bool") -> Expr:
    """Parse `text` and refuse it when its kind cannot be `kind` ("bool" for a filter, "number" for a value)."""
    e = parse(text)
    infer(e)  # literal operands typed now: `'a' * 2`, `len(3)`, `-'x'` are refused at load, not when drawn
    if e.kind not in (kind, "any"):
        raise ExprError(f"expression {shown(text)} gives a {e.kind}, but a {kind} is needed here"
                        + (" (compare it: `... > 0`)" if kind == "bool" else ""))
    return e
