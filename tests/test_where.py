"""`--where`: the spec's expression language (genlab.expr; parsed, never evaluated) over results tables."""

import pandas as pd
import pytest

from genlab.expr import parse
from genlab.tables import where

DF = pd.DataFrame({"run_id": ["a", "b", "c", "d"], "optim.lr": [0.1, 0.01, 0.1, 0.001],
                   "model.name": ["mlp", "mlp", "linear", "mlp"], "model.bias": [True, False, True, True],
                   "test_error": [0.2, 0.5, None, 0.1]})


def ids(text):
    return list(where(DF, text)["run_id"])


def test_comparisons_and_conjunctions():
    assert ids("optim.lr == 0.1") == ["a", "c"]
    assert ids("`optim.lr` < 0.1 and model.name == 'mlp'") == ["b", "d"]
    assert ids("test_error >= 0.2") == ["a", "b"]  # a missing value never satisfies a comparison
    assert ids("model.name != 'mlp'") == ["c"]
    assert ids('model.name in ["linear", "x"]') == ["c"] and ids("model.name in ['linear',]") == ["c"]
    assert ids('model.name in ["linear,mlp"]') == []  # a comma inside quotes is part of the value
    assert ids("optim.lr in [0.01, 0.001]") == ["b", "d"]
    assert ids("model.bias == false") == ["b"]
    assert ids("optim.lr > 1e-2 and optim.lr <= 0.1 and test_error < 0.3") == ["a"]
    assert ids("") == ["a", "b", "c", "d"] and ids(None) == ["a", "b", "c", "d"]


def test_parse():
    assert parse("a.b<-1e-3 and c == 'x y'").columns == ("a.b", "c")
    assert ids("optim.lr == 0.1 or test_error < 0.15") == ["a", "c", "d"]  # the whole language: or, not, ( )
    assert ids("not (model.name == 'mlp')") == ["c"]


@pytest.mark.parametrize("text, msg", [
    ("optim.lr = 0.1", "unexpected character '='"), ("optim.lr 0.1", "unexpected token"),
    ("optim.lr == 0.1 and", "expected a column"),
    ("__import__('os').system('x')", "unexpected character|not columns"), ("optim.lr in 0.1", "needs a \\[list\\]"),
    ("lr == 0.1", "no column 'lr'"), ("model.name == mlp", "no column 'mlp'.*text values need quotes: 'mlp'"),
    ("optim.lr in [0.1 0.01]", "expected ','"), ("optim.lr in [[0.1]]", "a list holds numbers"),
    ("optim.lr + 1", "a bool is needed"),
])
def test_errors_name_the_problem(text, msg):
    with pytest.raises(ValueError, match=msg):
        where(DF, text)


def test_a_mistyped_column_gets_a_did_you_mean():
    import pandas as pd

    from genlab.expr import ExprError, evaluate

    df = pd.DataFrame({"init.std": [0.1], "optim.lr": [0.01], "test_error": [0.2]})
    with pytest.raises(ExprError, match=r"no column 'init.sdt'; did you mean 'init.std'\?"):
        evaluate("init.sdt > 0", df)
    with pytest.raises(ExprError, match=r"no column 'lr'; did you mean 'optim.lr'\?"):
        evaluate("lr == 0.01", df)
