"""Issue 24's remaining bad inputs, each answered at load (or by its command) with one line naming the cause:
deep or huge --set values, typed expressions (len of a number, text arithmetic, unknown columns), data sets that
cannot be built (n_train far beyond memory, dim = 0), empty and BOM specs."""

from __future__ import annotations

import pytest

from conftest import TINY
from genlab.spec import loader as experiment
from genlab.expr import ExprError, check
from genlab.spec.overrides import OverrideError, parse_sets
from genlab.spec import SpecError


@pytest.mark.parametrize("value", ["[" * 600 + "1" + "]" * 600, "{a=" * 600 + "1" + "}" * 600])
def test_a_deep_set_value_is_refused_naming_the_item(value):
    with pytest.raises(OverrideError, match="--set optim.lr: a value nested more than 32 levels"):
        parse_sets([f"optim.lr={value}"])


def test_a_huge_set_value_is_refused_and_brackets_in_strings_do_not_count():
    with pytest.raises(OverrideError, match="--set seeds: a value of 200,00[0-9] characters is longer"):
        parse_sets(["seeds=[" + "1," * 100_000 + "1]"])
    assert parse_sets(['model.name="[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["']) == {"model.name": "[" * 37}


@pytest.mark.parametrize("text,msg", [
    ("'a' * 2 == 'a'", "`\\*` needs numbers, but 'a' is text"),
    ("len(3) == 1", "`len` needs a \\[list\\] or text, but 3 is a number"),
    ("-'x' < 0", "`-` needs numbers"),
    ("'a' < 1", "orders numbers or text, not one with the other"),
])
def test_literal_type_clashes_are_refused_when_checked(text, msg):
    with pytest.raises(ExprError, match=msg):
        check(text, "bool")


def _spec(write_spec, where: str, extra: str = ""):
    return write_spec(TINY + extra + f'\n[[figures]]\nname = "scatter"\nx = "init.std"\ny = "test_error"\n'
                      f'file = "w"\nwhere = "{where}"\n')


@pytest.mark.parametrize("where,msg", [
    ("len(init.std) == 0", "`len` needs a \\[list\\] or text, but column 'init.std' holds numbers"),
    ("'a' * 2 == 'a'", "`\\*` needs numbers, but 'a' is text"),
    ("nosuch > 1", "no column 'nosuch'"),
    ("test_error * init.name > 0", "`\\*` needs numbers, but column 'init.name' holds text"),
])
def test_figure_where_is_typed_against_the_runs_columns_at_load(write_spec, where, msg):
    with pytest.raises(SpecError, match=r"figures\[1\]\.where: expression .*" + msg):
        experiment.load(_spec(write_spec, where), profile=None)


@pytest.mark.parametrize("where", ["test_error < 0.5 and init.std > 0", "epoch == 2 or abs(test_error) < 1",
                                   "train_loss < 1 and n_params > 1 and status == 'completed'"])
def test_good_where_still_loads(write_spec, where):
    assert len(experiment.load(_spec(write_spec, where), profile=None).runs) == 2


def test_len_of_a_numeric_column_is_an_error_not_zero_rows():
    import pandas as pd

    from genlab.tables import where

    df = pd.DataFrame({"init.std": [0.1, 0.2], "data.flips": [(), ("vertical",)]})
    with pytest.raises(ExprError, match="`len` needs lists or text, but column 'init.std' holds 0.1"):
        where(df, "len(`init.std`) == 0")
    assert list(where(df, "len(`data.flips`) == 1").index) == [1]


@pytest.mark.parametrize("edit,msg", [
    (("n_train = 64", "n_train = 10000000000"), "separable: dim = 3, n_train = 10,000,000,000, n_test = 64 make "
                                                "[0-9,]+ GiB of data, more than this machine's"),
    (("dim = 3", "dim = 0"), "separable: dim must be at least 1 \\(got 0\\)"),
])
def test_data_that_cannot_be_built_is_refused_at_load(write_spec, edit, msg):
    with pytest.raises(SpecError, match="data: " + msg):
        experiment.load(write_spec(TINY.replace(*edit)), profile=None)


def test_an_empty_spec_says_so(write_spec):
    for text in ("", "# only a comment\n"):
        with pytest.raises(SpecError, match=r"spec.toml: name: the spec is empty"):
            experiment.load(write_spec(text), profile=None)


def test_a_bom_is_read_as_nothing(write_spec, tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + TINY.encode())
    plain = experiment.load(write_spec(TINY), profile=None)
    assert experiment.load(path, profile=None).run_ids == plain.run_ids


def test_gaussian_regression_and_train_flipped_sizes_are_checked():
    from genlab.data import get_dataset_fn

    gr = get_dataset_fn("gaussian_regression").check
    assert gr(n_train=500, n_test=500, p=1000) is None
    assert gr(n_train=0) == "gaussian_regression: n_train must be at least 1 (got 0)"
    assert "GiB of data, more than this machine's" in gr(n_train=10 ** 6, p=10 ** 7)
    tf = get_dataset_fn("train_flipped").check
    assert tf(base="digits", base_options={"n_train": 1000}) is None
    assert tf(base="digits", base_options={"n_train": 10 ** 9}).startswith("train_flipped: base_options: n_train")
