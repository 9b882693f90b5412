"""genlab.expr: the safe expression grammar — values it computes, errors it names, code it never runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from genlab.expr import MAX_CHARS, MAX_DEPTH, ExprError, check, evaluate, parse, select


@pytest.fixture
def df():
    return pd.DataFrame({"init.std": [0.0, 0.1, 1.0], "data.flips": [(), ("vertical",), ()],
                         "init.name": ["normal", "constant", "uniform"], "model.batch_norm": [True, False, True],
                         "epoch": [1, 2, 3], "test_error": [0.5, 0.4, None], "train_error": [0.1, 0.1, 0.2]})


@pytest.mark.parametrize("text, expected", [
    ("`init.std` > 0.01", [False, True, True]),
    ("init.std > 0.01", [False, True, True]),
    ("init.std == 0 and epoch == 1", [True, False, False]),
    ("init.std == 0 or epoch == 3", [True, False, True]),
    ("not (epoch == 2)", [True, False, True]),
    ("len(`data.flips`) == 0", [True, False, True]),
    ("`init.name` != 'constant'", [True, False, True]),
    ('init.name == "normal"', [True, False, False]),
    ("`model.batch_norm` == True", [True, False, True]),
    ("model.batch_norm", [True, False, True]),
    ("not model.batch_norm", [False, True, False]),
    ("init.name in ['normal', 'uniform']", [True, False, True]),
    ("epoch not in [1, 2]", [False, False, True]),
    ("epoch in [-1, 3]", [False, False, True]),
    ("epoch * 2 - 1 >= 3", [False, True, True]),
    ("-epoch < -1.5", [False, True, True]),
    ("test_error > 0.45", [True, False, False]),  # NaN compares false
    ("1 == 1", [True, True, True]),
])
def test_filters(df, text, expected):
    assert evaluate(parse(text), df).tolist() == expected
    assert select(df, text).index.tolist() == [i for i, x in enumerate(expected) if x]


def test_formulas(df):
    gap = evaluate("test_error - train_error", df)
    assert gap.iloc[:2].round(12).tolist() == [0.4, 0.3] and math.isnan(gap.iloc[2])
    assert evaluate("abs(0 - epoch) / 2", df).tolist() == [0.5, 1.0, 1.5]
    assert np.allclose(evaluate("exp(log(epoch))", df), [1, 2, 3])
    assert evaluate("epoch / 0", df).tolist() == [math.inf] * 3
    assert evaluate("(1 + 2) * 3", df).tolist() == [9.0] * 3
    assert parse("test_error - train_error").columns == ("test_error", "train_error")
    assert parse("`a.b` > 1 and c < a.b").columns == ("a.b", "c")


def test_kinds_and_check():
    assert parse("a > 1").kind == "bool" and parse("a - b").kind == "number" and parse("a").kind == "any"
    check("a - b", "number")
    check("a", "bool")
    with pytest.raises(ExprError, match="gives a number, but a bool is needed"):
        check("a - b", "bool")
    with pytest.raises(ExprError, match="gives a bool, but a number is needed"):
        check("a > b", "number")


@pytest.mark.parametrize("text, match", [
    ("@pd.io.common.os.system('touch /tmp/x') == 0", r"unexpected character '@' at position 0"),
    ("__import__('os').system('x')", "unexpected character '.' at position 16"),
    ("__import__('os')", "names with '__' are not columns"),
    ("epoch.__class__ == 1", "names with '__' are not columns"),
    ("open('/etc/passwd')", r"unknown function \(known: len, abs, log, exp\), got 'open'"),
    ("epoch = 1", "unexpected character '='"),
    ("epoch == 1; 2", "unexpected character ';'"),
    ("epoch == ", "expected a column, a number"),
    ("", "empty expression"),
    ("a < b < c", "chained comparisons"),
    ("(epoch == 1", r"expected '\)'"),
    ("epoch == 1)", "unexpected token"),
    ("[1, epoch]", "a list holds numbers"),
    ("epoch == 1 epoch", "unexpected token"),
    ("'unterminated", "unexpected character"),
    ("x" * (MAX_CHARS + 1), f"longer than {MAX_CHARS}"),
    ("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH}"),
    (" and ".join(["a == 1"] * (MAX_DEPTH + 1)), f"nests more than {MAX_DEPTH}"),
    ("not " * 100 + "a", f"nested deeper than {MAX_DEPTH}"),
    ("1e999 > 1", "not finite"),
])
def test_parse_errors_name_the_token(text, match):
    with pytest.raises(ExprError, match=match):
        parse(text)


@pytest.mark.parametrize("text, match", [
    ("nope == 1", r"no column 'nope' \(\d+ present: .*init.std.*\); text values need quotes: 'nope'"),
    ("`init.name` < 3", "needs numbers, but column 'init.name' holds 'normal'"),
    ("epoch + 'a'", r"`\+` needs numbers, got 'a'"),
    ("epoch and model.batch_norm", "`and` needs true/false values"),
    ("epoch == [1, 2]", "by `in`"),
    ("epoch in 3", r"needs a \[list\]"),
    ("model.batch_norm * 2", "got a true/false column"),
])
def test_evaluation_errors_name_the_column(df, text, match):
    with pytest.raises(ExprError, match=match):
        evaluate(text, df)


def test_select_refuses_a_formula(df):
    with pytest.raises(ExprError, match="a bool is needed"):
        select(df, "epoch + 1")
    assert select(df, None) is df and select(df, "") is df


def test_no_query_or_eval_on_spec_text_anywhere():
    """grep: the package never hands text to DataFrame.query/eval, eval or exec."""
    import re
    from pathlib import Path

    import genlab

    root = Path(genlab.__file__).parent
    hits = [f"{p.relative_to(root)}:{i + 1}" for p in root.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines())
            if re.search(r"\.query\(|(?<![\w.])eval\(|\bexec\(|\.eval\(['\"a-z]", line)]
    assert hits == []
