"""The HTML report: self-contained, one section per spec, figures inlined, findings beside the claims."""

from typer.testing import CliRunner

from genlab.cli import app
from conftest import TINY

FINDING = """
[[findings]]
name = "compare"
claim = "a bigger init is slower"
metric = "train_loss"
by = "init.std"
low = 0.01
high = 0.1
[[findings]]
name = "value"
claim = "a broken claim"
metric = "no_such_metric"
"""


def test_report_has_figures_findings_and_results(write_spec, tmp_path):
    path, store, out = write_spec(TINY + FINDING), tmp_path / "runs", tmp_path / "r.html"
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(path), "--store", str(store)]).exit_code == 0
    r = runner.invoke(app, ["report", str(path), "--store", str(store), "--out", str(out)])
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert page.count("data:image/png;base64,") == 1  # the spec's one figure, inlined
    assert "a bigger init is slower" in page and ("agrees" in page or "differs" in page)
    assert "cannot compute: metric &#x27;no_such_metric&#x27;" in page  # shown, not hidden
    assert "<h3>Final results</h3>" in page and page.count("<tr>") >= 2 + 2 + 1
    assert "src=\"http" not in page and "src='http" not in page  # self-contained


def test_report_without_runs_says_what_to_do(write_spec, tmp_path):
    r = CliRunner().invoke(app, ["report", str(write_spec()), "--store", str(tmp_path)])
    assert r.exit_code != 0 and "genlab run" in str(r.exception)


def test_summary_expands_a_swept_table_into_its_varying_columns():
    import pandas as pd

    from genlab.report import Section, summary_table
    from genlab.experiment import parse

    raw = {"name": "x", "data": {"name": "separable"}, "model": {"name": "linear"},
           "sweep": {"init": [{"name": "constant", "value": 0.0}, {"name": "normal", "std": 0.1}]}}
    exp = parse(raw)
    res = pd.DataFrame({"init.name": ["constant", "normal"], "init.value": [0.0, None], "init.std": [None, 0.1],
                        "init.scale": [1.0, 1.0], "train_loss": [2.3, 0.1]})
    table = summary_table(Section(exp, pd.DataFrame(), res))
    assert list(table.columns[:3]) == ["init.name", "init.std", "init.value"] and len(table) == 2
    assert table["train_loss"].tolist() == ["2.3", "0.1"]
