"""The gap formula: genlab.expr text that gives a number (columns, numbers, + - * /, parentheses), never\nevaluated as Python."""

from __future__ import annotations

import pandas as pd
import pytest

from genlab.analysis.gap import DEFAULT_GAP, gap_values

DF = pd.DataFrame({"test_error": [0.3, 0.5], "train_error": [0.1, 0.0], "test_loss": [2.0, 3.0],
                   "train_loss": [1.0, 0.5], "data_info.n_test": [100, 100], "status": ["completed", "x"]})


@pytest.mark.parametrize("text, want", [
    (DEFAULT_GAP, [0.2, 0.5]),
    ("test_loss - train_loss", [1.0, 2.5]),
    ("`test_loss` / train_loss", [2.0, 6.0]),
    ("-(test_error - train_error) * 2 + 1", [0.6, 0.0]),
    ("test_error - train_error - -1", [1.2, 1.5]),
    ("data_info.n_test * test_error", [30.0, 50.0]),
    ("(((test_error)))", [0.3, 0.5]),
])
def test_formulas(text, want):
    assert gap_values(DF, text).tolist() == pytest.approx(want)


@pytest.mark.parametrize("text, match", [
    ("test_error - nope", "no column 'nope'"),
    ("__import__('os').system('true')", "unexpected character '.' at position 16"),
    ("test_error ** 2", "got '\\*' at position 12"),
    ("test_error - ", "got the end at position 13"),
    ("(test_error", "expected '\\)'"),
    ("test_error train_error", "got 'train_error' at position 11"),
    ("1 + 2", "names no column"),
    ("", "empty"),
    ("   ", "empty"),
    ("test_error; train_error", "unexpected character ';'"),
    ("-" * 40 + "test_error", "nests more than"),
    ("test_error" + " + test_error" * 100, "nests more than"),
    ("test_error > 0", "gives a bool, but a number is needed"),
])
def test_bad_formulas_name_the_fault(text, match):
    with pytest.raises(ValueError, match=match):
        gap_values(DF, text)


def test_text_columns_become_nan_not_code():
    assert gap_values(DF, "status").isna().all()
