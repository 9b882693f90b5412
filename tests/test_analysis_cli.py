"""`genlab analyze` and the report's analysis section, end to end on a tiny trained sweep: the CLI prints
what `genlab.analysis.analyze` computes from Python, and the report carries the sortable ranking."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genlab.analysis import analyze
from genlab.cli import app
from genlab.store import Store

SPEC = """
name = "rank"
seeds = [0, 1]
[data]
name = "separable"
dim = 3
n_train = 48
n_test = 64
[model]
name = "linear"
[optim]
lr = 0.1
[train]
epochs = 3
batch_size = 8
[record]
measures = ["dist_from_init", "log_prod_frobenius"]
[sweep]
"init.scale" = [0.5, 2.0]
"optim.lr" = [0.05, 0.2]
[analysis]
n_test = 64
figure_measures = 2
"""


@pytest.fixture
def trained(write_spec, tmp_path):
    path, store = write_spec(SPEC), tmp_path / "runs"
    r = CliRunner().invoke(app, ["run", str(path), "--store", str(store)])
    assert r.exit_code == 0, r.output
    return path, store


def test_analyze_json_is_what_python_computes(trained):
    _, store = trained
    r = CliRunner().invoke(app, ["analyze", "rank", "--store", str(store), "--format", "json", "--n-test", "64"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["runs"] == 8 and got["excluded"] == {} and set(got["axes"]) == {"init.scale", "optim.lr"}
    want = analyze(Store(store).results("rank"), n_test=64).table
    assert [m["measure"] for m in got["measures"]] == list(want["measure"])
    assert {m["measure"] for m in got["measures"]} == {"dist_from_init", "log_prod_frobenius"}
    for row, (_, w) in zip(got["measures"], want.iterrows()):
        assert row["tau"] == pytest.approx(w["tau"], nan_ok=True) and row["n"] == 8


def test_analyze_table_and_csv_with_a_gap_formula(trained):
    _, store = trained
    runner = CliRunner()
    r = runner.invoke(app, ["analyze", "rank", "--store", str(store), "-m", "dist_from_init",
                            "--gap", "test_loss - train_loss", "--statistics", "kendall_tau,granulated_psi"])
    assert r.exit_code == 0, r.output
    assert "dist_from_init" in r.stdout and "psi" in r.stdout
    narrow = runner.invoke(app, ["analyze", "rank", "--store", str(store), "-m", "dist_from_init"],
                           env={"COLUMNS": "40"})
    assert "hidden" in narrow.stdout  # the hint names only options analyze has (no --columns, no parquet)
    hint = " ".join(narrow.stdout.split("hidden", 1)[1].split())
    assert "--format csv|json" in hint and "--columns" not in hint and "parquet" not in hint
    csv = runner.invoke(app, ["analyze", "rank", "--store", str(store), "-m", "dist_from_init", "--format", "csv",
                              "--statistics", "granulated_psi"])
    header = csv.stdout.splitlines()[0].split(",")
    assert header[:3] == ["measure", "n", "psi"] and "psi[optim.lr]" in header


@pytest.mark.parametrize("args, match", [
    (["--gap", "test_loss ** 2"], "gap formula"),
    (["--format", "xml"], "--format must be one of"),
    (["-m", "nope"], "measure 'nope' is not a column"),
    (["--statistics", "cmi"], "unknown statistic 'cmi'"),
])
def test_analyze_bad_input_is_one_clear_error(trained, args, match):
    from genlab.cli import main  # noqa: F401  (the same error path as the console script)

    _, store = trained
    r = CliRunner().invoke(app, ["analyze", "rank", "--store", str(store), *args])
    assert r.exit_code != 0 and match in str(r.exception)


def test_every_run_records_its_set_sizes_so_sign_error_needs_no_flag(trained):
    """Each run stores data_info.n_train / n_test (synthetic sets too), the test size sign-error weighs by."""
    _, store = trained
    r = CliRunner().invoke(app, ["analyze", "rank", "--store", str(store), "-m", "dist_from_init", "--format", "csv",
                                 "--statistics", "sign_error"])
    assert r.exit_code == 0, r.output
    header, row = r.stdout.splitlines()[:2]
    got = dict(zip(header.split(","), row.split(",")))
    assert float(got["sign_envs"]) + float(got["sign_envs_noise"]) > 0  # environments weighed with n_test = 64
    from genlab.spec import loader as experiment

    path, _ = trained
    exp = experiment.load(path, None)
    res = Store(store).results(exp.name)
    assert set(res["data_info.n_test"]) == {exp.runs[0].config.data.options["n_test"]}
    assert set(res["data_info.n_train"]) == {exp.runs[0].config.data.options["n_train"]}


def test_report_has_the_sortable_ranking_and_a_figure_per_top_measure(trained, tmp_path):
    path, store = trained
    out = tmp_path / "r.html"
    r = CliRunner().invoke(app, ["report", str(path), "--store", str(store), "--out", str(out)])
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert "Which measure predicts the gap" in page and "function glSort" in page
    assert page.count("onclick='glSort(this)'") >= 10  # measure, n, τ, p, Ψ, CMI ×4, sign-error ...
    assert "<td>dist_from_init</td>" in page and "<td>log_prod_frobenius</td>" in page
    assert page.count("data:image/png;base64,") == 2  # figure_measures = 2 (the spec lists no other figure)


def test_analysis_table_in_a_spec_is_checked(write_spec):
    from genlab.spec.loader import load
    from genlab.spec import SpecError

    with pytest.raises(SpecError, match="analysis.gapp"):
        load(write_spec(SPEC.replace("[analysis]\nn_test = 64", "[analysis]\ngapp = 'x'")))
    with pytest.raises(KeyError, match="unknown statistic"):
        load(write_spec(SPEC.replace("[analysis]\nn_test = 64", "[analysis]\nstatistics = ['tau']")))
    assert load(write_spec(SPEC)).analysis["n_test"] == 64
