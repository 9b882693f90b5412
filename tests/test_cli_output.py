"""Output helpers of the command line: columns that fit, the human view of results, plain formats."""

import io
import json
import math

import pandas as pd
from rich.console import Console

from genlab.cli.output import CONFIG_FIELDS, cell, fit_columns, human_table, machine_text, results_view
from genlab.spec.loader import RUN_FIELDS


def test_config_fields_are_the_run_configs():
    assert set(CONFIG_FIELDS) == {"experiment", "seed", *RUN_FIELDS}  # RUN_FIELDS: the run's tables


def test_fit_columns():
    assert fit_columns([4, 4, 4], 100) == 3
    assert fit_columns([4, 4, 4], 1 + 7 + 7) == 2  # each column costs its width + 3
    assert fit_columns([50, 4], 20) == 1  # the first (row names) always shows


def test_results_view_orders_and_drops_constant_config():
    df = pd.DataFrame({"run_id": ["a", "b", "c"], "experiment": ["e"] * 3, "seed": [0] * 3, "optim.lr": [0.2, 0.1, 0.05],
                       "data.n": [5] * 3, "status": ["ok"] * 3, "test_loss": [1.0, 2.0, 3.0], "sharpness.z": [1] * 3,
                       "test_error": [0.1, 0.2, 0.3], "tags": ["", "", ""], "note": ["", "odd", ""]})
    view = results_view(df)
    assert list(view.columns) == ["run_id", "optim.lr", "test_error", "test_loss", "note", "status", "sharpness.z"]
    assert list(view["run_id"]) == ["c", "b", "a"]  # sorted by what varies (as numbers)


def test_human_table_names_hidden_columns_and_shows_markup_as_text():
    df = pd.DataFrame({"run_id": ["[bold]x[/bold]"], "a_long_column_name": [1.0], "another_long_one": [math.nan]})
    buf = io.StringIO()
    human_table(df, Console(file=buf, width=40), "t")
    text = buf.getvalue()
    assert "[bold]x[/bold]" in text and "a_long_column_name" in text
    assert "1 columns hidden to fit 40 characters: another_long_one" in " ".join(text.split())


def test_machine_text_is_full_precision_and_valid_json():
    df = pd.DataFrame({"x": [0.1234567890123456789, math.nan], "t": [(1, 2), (3, 4)]})
    rows = json.loads(machine_text(df, "json"))
    assert rows[0]["x"] == df["x"][0] and rows[1]["x"] is None and rows[0]["t"] == [1, 2]
    assert pd.read_csv(io.StringIO(machine_text(df, "csv")))["x"][0] == df["x"][0]
    assert cell((0.123456, 1)) == "(0.1235, 1)" and cell(None) == "-"
