"""The expression language's tokenizer, tree and recursive-descent parser (see genlab.expr for the grammar).

`parse(text) -> Expr` never evaluates anything: the text becomes a tree of a few frozen node kinds, with
limits on length (MAX_CHARS) and depth (MAX_DEPTH) so no input can recurse deeply.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Union


MAX_CHARS = 2000  # longer text is refused before tokenizing
MAX_DEPTH = 40  # nesting of parentheses, `not`, unary minus and operators together
KEYWORDS = {"and", "or", "not", "in", "true", "false", "True", "False"}
FUNCS = ("len", "abs", "log", "exp")
COMPARE = ("==", "!=", "<=", ">=", "<", ">")

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'[^'\\]*'|"[^"\\]*")
  | (?P<quoted>`[^`]*`)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_0-9][A-Za-z0-9_]*)*)
  | (?P<op>==|!=|<=|>=|<|>|\+|-|\*|/|\(|\)|\[|\]|,)
""", re.VERBOSE)


def shown(text: str, limit: int = 80) -> str:
    """The expression for a message: quoted, cut to `limit` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit - 1] + "…")


class ExprError(ValueError):
    """A spec expression that cannot be parsed or evaluated; the message names the text and the token."""


# ---- the tree ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Literal:
    value: Any  # float, int, str or bool


@dataclass(frozen=True)
class ListLit:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class Unary:
    op: str  # "not" | "-"
    arg: "Node"


@dataclass(frozen=True)
class Binary:
    op: str  # "and" "or" "==" "!=" "<" "<=" ">" ">=" "in" "not in" "+" "-" "*" "/"
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Call:
    func: str  # one of FUNCS
    arg: "Node"


Node = Union[Literal, ListLit, Column, Unary, Binary, Call]
BOOL_OPS = ("and", "or", "not", "in", "not in", *COMPARE)


@dataclass(frozen=True)
class Expr:
    """A parsed expression: its source text, its tree, the columns it reads and its kind.

    kind: "bool" (a comparison, and/or/not, in), "number" (arithmetic, len/abs/log/exp, a number) or
    "any" (a bare column or a string, known only when evaluated).
    """

    text: str
    root: Node

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names the expression reads, in order of first use."""
        out: list[str] = []

        def walk(n: Node) -> None:
            if isinstance(n, Column) and n.name not in out:
                out.append(n.name)
            for child in _children(n):
                walk(child)

        walk(self.root)
        return tuple(out)

    @property
    def kind(self) -> str:
        return _kind(self.root)


def _children(n: Node) -> tuple[Node, ...]:
    if isinstance(n, (Unary, Call)):
        return (n.arg,)
    if isinstance(n, Binary):
        return (n.left, n.right)
    return ()


def _kind(n: Node) -> str:
    if isinstance(n, Unary):
        return "bool" if n.op == "not" else "number"
    if isinstance(n, Binary):
        return "bool" if n.op in BOOL_OPS else "number"
    if isinstance(n, Call):
        return "number"
    if isinstance(n, Literal):
        return "bool" if isinstance(n.value, bool) else ("number" if isinstance(n.value, (int, float)) else "any")
    return "any"


# ---- tokenizer and parser ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Tok:
    kind: str  # number | string | quoted | name | op | keyword | end
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ExprError(f"expression {shown(text)}: unexpected character {text[pos]!r} at position {pos} "
                            "(allowed: columns, numbers, 'strings', [lists], == != < <= > >= in, and or not, "
                            f"+ - * /, {', '.join(FUNCS)})")
        kind = m.lastgroup
        if kind != "ws":
            word = m.group()
            out.append(_Tok("keyword" if kind == "name" and word in KEYWORDS else kind, word, pos))
        pos = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str):
        self.text, self.toks, self.i, self.depth = text, _tokens(text), 0, 0

    # helpers
    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def at(self, *texts: str) -> bool:
        t = self.peek()
        return t.kind in ("op", "keyword") and t.text in texts

    def fail(self, what: str, tok: _Tok | None = None) -> ExprError:
        tok = tok or self.peek()
        got = "the end" if tok.kind == "end" else repr(tok.text)
        return ExprError(f"expression {shown(self.text)}: {what}, got {got} at position {tok.pos}")

    def expect(self, text: str) -> None:
        if not self.at(text):
            raise self.fail(f"expected {text!r}")
        self.take()

    def nest(self) -> None:
        """Count one level of recursion (parentheses, not, unary minus, calls); refuse past MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels")

    # grammar
    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.fail("empty expression")
        node = self.or_()
        if self.peek().kind != "end":
            raise self.fail("unexpected token (a missing `and`/`or`, or a stray symbol?)")
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.at("or"):
            self.take()
            node = Binary("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.at("and"):
            self.take()
            node = Binary("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.at("not"):
            self.take()
            self.nest()
            node = Unary("not", self.not_())
            self.depth -= 1
            return node
        return self.compare()

    def compare(self) -> Node:
        node = self.sum_()
        if self.at(*COMPARE, "in") or (self.at("not") and self.toks[self.i + 1].text == "in"):
            op = self.take().text
            if op == "not":
                self.take()
                op = "not in"
            node = Binary(op, node, self.sum_())
            if self.at(*COMPARE, "in"):
                raise self.fail("chained comparisons are not supported; join them with `and`")
        return node

    def sum_(self) -> Node:
        node = self.product()
        while self.at("+", "-"):
            op = self.take().text
            node = Binary(op, node, self.product())
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.at("*", "/"):
            op = self.take().text
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.at("-"):
            self.take()
            self.nest()
            node = Unary("-", self.unary())
            self.depth -= 1
            return node
        return self.atom()

    def atom(self) -> Node:
        tok = self.peek()
        if tok.kind == "number":
            self.take()
            return Literal(_number(tok.text))
        if tok.kind == "string":
            self.take()
            return Literal(tok.text[1:-1])
        if tok.kind == "keyword" and tok.text in ("true", "True", "false", "False"):
            self.take()
            return Literal(tok.text.lower() == "true")
        if tok.kind == "quoted":
            self.take()
            if len(tok.text) < 3:
                raise self.fail("an empty `column` name", tok)
            return Column(tok.text[1:-1])
        if tok.kind == "name":
            if "__" in tok.text:
                raise self.fail("names with '__' are not columns", tok)
            self.take()
            if self.at("("):
                if tok.text not in FUNCS:
                    raise self.fail(f"unknown function (known: {', '.join(FUNCS)})", tok)
                self.take()
                self.nest()
                arg = self.or_()
                self.expect(")")
                self.depth -= 1
                return Call(tok.text, arg)
            return Column(tok.text)
        if self.at("("):
            self.take()
            self.nest()
            node = self.or_()
            self.expect(")")
            self.depth -= 1
            return node
        if self.at("["):
            return self.list_()
        raise self.fail("expected a column, a number, a 'string', a [list] or (")

    def list_(self) -> ListLit:
        self.expect("[")
        values: list[Any] = []
        while not self.at("]"):
            neg = self.at("-")
            if neg:
                self.take()
            tok = self.take()
            if tok.kind == "number":
                values.append(-_number(tok.text) if neg else _number(tok.text))
            elif tok.kind == "string" and not neg:
                values.append(tok.text[1:-1])
            elif tok.kind == "keyword" and tok.text in ("true", "True", "false", "False") and not neg:
                values.append(tok.text.lower() == "true")
            else:
                raise self.fail("a list holds numbers, 'strings' or true/false", tok)
            if not self.at("]"):
                self.expect(",")
        self.take()
        return ListLit(tuple(values))


def _number(text: str) -> int | float:
    value = float(text)
    if not math.isfinite(value):
        raise ExprError(f"number {text!r} is not finite")
    return int(text) if re.fullmatch(r"\d+", text) else value


def parse(text: str) -> Expr:
    """Parse spec text into an `Expr`; raise ExprError naming the bad token and its position."""
    if not isinstance(text, str):
        raise ExprError(f"an expression must be a string, got {text!r}")
    if len(text) > MAX_CHARS:
        raise ExprError(f"expression of {len(text)} characters is longer than {MAX_CHARS}")
    root = _Parser(text).parse()
    if _depth(root) > MAX_DEPTH:  # long chains (a and b and ...) nest too: evaluation recurses on the tree
        raise ExprError(f"expression {shown(text)} nests more than {MAX_DEPTH} operations; split it or use `in [...]`")
    return Expr(text, root)


def _depth(root: Node) -> int:
    """The depth of the tree, without recursion."""
    best, stack = 0, [(root, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in _children(n))
    return best
