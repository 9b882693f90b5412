"""`--where`: the small filter grammar (parsed, never evaluated) over results tables."""

import pandas as pd
import pytest

from genlab.tables import parse_where, where

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
    assert parse_where("a.b<-1e-3 and c == 'x y'") == [("a.b", "<", -0.001), ("c", "==", "x y")]


@pytest.mark.parametrize("text, msg", [
    ("optim.lr = 0.1", "cannot read"), ("optim.lr 0.1", "expected `column OP value`"),
    ("optim.lr == 0.1 or test_error < 1", "expected `and`"), ("optim.lr == 0.1 and", "nothing after"),
    ("__import__('os').system('x')", "cannot read|expected"), ("optim.lr in 0.1", "takes a \\[list\\]"),
    ("lr == 0.1", "column 'lr' is not a column"), ("model.name == mlp", "'mlp' is not a value; quote text"),
    ("optim.lr in [0.1 0.01]", "separated by commas"), ("optim.lr in [[0.1]]", "cannot read|separated"),
])
def test_errors_name_the_problem(text, msg):
    with pytest.raises(ValueError, match=msg):
        where(DF, text)
