"""The lab at the terminal and in a notebook (issue 16): --set/--name on run, plain CSV/JSON/parquet output at
any terminal width, tables that say what they hid, any-vs-any plots of exactly the filtered rows, progress
lines, compare, registry docstrings verbatim, and the notebook API."""

import inspect
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import genlab
from genlab.cli import app
from genlab.store import Store

from conftest import TINY

runner = CliRunner()
GENLAB = str(Path(sys.executable).parent / "genlab")  # the console script, as a user runs it


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`tiny` with 3 seeds × 2 init.std, a perturbation at epoch 2: 6 finished runs, set from the command line."""
    d = tmp_path_factory.mktemp("lab")
    spec = d / "spec.toml"
    spec.write_text(TINY)
    store = d / "runs"
    r = runner.invoke(app, ["run", str(spec), "--profile", "none", "--store", str(store), "--set", "seeds=[0,1,2]",
                            "--set", "events.perturb_epochs=[2]", "--set", "events.perturb_std=0.2"])
    assert r.exit_code == 0, r.output
    return spec, store, r.output


def test_progress_is_a_plain_line_per_finished_run_when_not_a_terminal(lab):
    _, store, output = lab
    lines = [ln for ln in output.splitlines() if ln.startswith("[")]
    assert [ln.split("]")[0] for ln in lines] == [f"[{i}/6" for i in range(1, 7)]
    res = Store(store).results("tiny").set_index("run_id")
    for ln in lines:  # each line carries its run's final test loss, as stored
        rid8 = ln.split("(")[1][:8]
        rid = next(r for r in res.index if r.startswith(rid8))
        assert "completed, 4 epochs" in ln and f"test_loss {res.at[rid, 'test_loss']:.4g}" in ln


def test_results_csv_redirected_parses_at_20_columns(lab):
    _, store, _ = lab
    want = Store(store).results("tiny")
    assert want.shape[1] >= 40  # a wide table: the one that used to come out hard-wrapped
    env = {**os.environ, "COLUMNS": "20"}
    r = subprocess.run([GENLAB, "results", "tiny", "--format", "csv", "--store", str(store)], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(io.StringIO(r.stdout))
    assert list(got.columns) == list(want.columns) and len(got) == 6
    assert np.array_equal(got["test_loss"].to_numpy(), want["test_loss"].to_numpy())  # full precision
    r = subprocess.run([GENLAB, "results", "tiny", "-f", "json", "--store", str(store)], env=env,
                       capture_output=True, text=True)
    rows = json.loads(r.stdout)
    assert [x["test_loss"] for x in rows] == list(want["test_loss"])
    r = subprocess.run([GENLAB, "sql", "tiny", "SELECT * FROM results ORDER BY run_id", "-f", "csv", "--store",
                        str(store)], env=env, capture_output=True, text=True)
    got = pd.read_csv(io.StringIO(r.stdout))
    assert got.shape == want.shape and list(got["run_id"]) == sorted(want["run_id"])


def test_results_to_files_and_where(lab, tmp_path):
    import duckdb

    _, store, _ = lab
    want = Store(store).results("tiny")
    r = runner.invoke(app, ["results", "tiny", "--store", str(store), "-f", "parquet", "--out",
                            str(tmp_path / "r.parquet"), "--where", "init.std == 0.1 and seed >= 1"])
    assert r.exit_code == 0, r.output
    got = duckdb.sql(f"SELECT * FROM '{tmp_path / 'r.parquet'}' ORDER BY run_id").df()
    sel = want[(want["init.std"] == 0.1) & (want["seed"] >= 1)].sort_values("run_id")
    assert list(got["run_id"]) == list(sel["run_id"]) and len(sel) == 2
    assert np.allclose(got["test_error"], sel["test_error"])
    r = runner.invoke(app, ["results", "tiny", "--store", str(store), "-f", "csv", "-o", str(tmp_path / "r.csv")])
    assert r.exit_code == 0 and pd.read_csv(tmp_path / "r.csv").shape == want.shape
    bad = runner.invoke(app, ["results", "tiny", "--store", str(store), "--where", "lr == 1"])
    assert bad.exit_code != 0 and "'lr' is not a column" in str(bad.exception)


def test_human_table_fits_the_terminal_and_names_what_it_hid(lab):
    _, store, _ = lab
    r = subprocess.run([GENLAB, "results", "tiny", "--store", str(store)], env={**os.environ, "COLUMNS": "70"},
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(map(len, lines)) <= 70 and "…" not in r.stdout  # nothing cut to `mod…`
    header = next(ln for ln in lines if "run_id" in ln)
    note = " ".join(lines[next(i for i, ln in enumerate(lines) if "columns hidden" in ln):])
    assert "init.std" in header and "test_loss" in header  # what varies, then the main metrics
    for col in Store(store).results("tiny").columns:
        if col not in ("experiment", "seed") and "." not in col:
            assert (f" {col} " in header) != (col in note.split(": ", 1)[1]), col  # shown, or named as hidden


def test_plot_x_y_draws_exactly_the_filtered_rows(lab):
    _, store, _ = lab
    res = Store(store).results("tiny")
    fig = genlab.plot("tiny", x="train_loss", y="test_loss", hue="init.std", where="seed >= 1", store=store)
    drawn = np.concatenate([c.get_offsets() for c in fig.axes[0].collections])
    sel = res[res["seed"] >= 1]
    assert len(drawn) == 4
    assert sorted(map(tuple, drawn)) == sorted(zip(sel["train_loss"], sel["test_loss"]))


def test_plot_fits_per_hue_group(lab):
    _, store, _ = lab
    res = Store(store).results("tiny")
    fig = genlab.plot("tiny", x="train_loss", y="test_loss", hue="init.std", fit=True, store=store)
    fits = [ln for ln in fig.axes[0].lines if "fit" in ln.get_label()]
    assert len(fits) == 2  # one line per colour group, not one pooled line
    for line, std in zip(fits, (0.01, 0.1)):
        g = res[res["init.std"] == std]
        slope = np.polyfit(g["train_loss"], g["test_loss"], 1)[0]
        xs, ys = line.get_data()
        assert np.isclose((ys[-1] - ys[0]) / (xs[-1] - xs[0]), slope)
        assert f"init.std={std}" in line.get_label()


def test_plot_at_an_epoch_uses_that_epochs_rows(lab):
    _, store, _ = lab
    hist = Store(store).history("tiny")
    at2 = hist[(hist["epoch"] == 2) & (hist["event"] == "perturb")]  # the last row at epoch 2: after the jump
    fig = genlab.plot("tiny", x="init.std", y="test_loss", epoch=2, store=store)
    drawn = fig.axes[0].collections[0].get_offsets()
    assert sorted(drawn[:, 1]) == sorted(at2["test_loss"])
    with pytest.raises(ValueError, match="no run has a row at that epoch"):
        genlab.plot("tiny", x="init.std", y="test_loss", epoch=99, store=store)


def test_plot_command_writes_the_figure(lab, tmp_path):
    _, store, _ = lab
    out = tmp_path / "p.png"
    r = runner.invoke(app, ["plot", "tiny", "--x", "init.std", "--y", "test_error", "--hue", "seed", "--fit",
                            "--where", "init.std == 0.01", "--out", str(out), "--store", str(store)])
    assert r.exit_code == 0, r.output
    assert "(3 runs)" in r.stdout and out.stat().st_size > 1000
    r = runner.invoke(app, ["plot", "tiny", "--x", "init.std", "--store", str(store)])
    assert r.exit_code != 0 and "both x and y" in str(r.exception)


def test_load_api(lab):
    spec, store, _ = lab
    results, history = genlab.load("tiny", store=store, where="init.std == 0.1")
    assert len(results) == 3 and set(history["run_id"]) == set(results["run_id"])
    assert (history["init.std"] == 0.1).all() and len(history) == 3 * 6  # epochs 0..4 and the perturb row


def test_figures_where_and_name(lab, tmp_path):
    spec, store, _ = lab
    args = ["figures", str(spec), "--profile", "none", "--store", str(store), "--set", "seeds=[0,1,2]",
            "--set", "events.perturb_epochs=[2]", "--set", "events.perturb_std=0.2", "--out", str(tmp_path)]
    r = runner.invoke(app, args + ["--where", "init.std == 0.1"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "tiny_curves.png").exists()
    r = runner.invoke(app, args + ["--where", "init.std == 7"])
    assert r.exit_code != 0 and "no finished runs" in str(r.exception)
    report = ["report", str(spec), "--profile", "none", "--store", str(store), "--out", str(tmp_path / "r.html")]
    r = runner.invoke(app, report + args[6:12])  # the same --set items: the same runs
    assert r.exit_code == 0, r.output
    assert "unfinished" not in r.output and (tmp_path / "r.html").stat().st_size > 1000
    r = runner.invoke(app, report + ["--name", "tiny_other"])
    assert r.exit_code != 0 and "no finished runs" in str(r.exception)


def test_run_set_name_and_dry_run(write_spec, tmp_path):
    path, store = write_spec(), tmp_path / "runs"
    r = runner.invoke(app, ["run", str(path), "--profile", "none", "--store", str(store), "--dry-run",
                            "--set", "optim.lr=[0.1,0.01]", "--name", "tiny_lr"])
    assert r.exit_code == 0, r.output
    assert "tiny_lr profile=none: 4 runs, 0 done, 4 to run" in r.output and r.output.count("pending") == 4
    assert not store.exists()
    r = runner.invoke(app, ["run", str(path), "--profile", "none", "--store", str(store), "--quiet",
                            "--set", "optim.lr=0.05", "--name", "tiny_lr"])
    assert r.exit_code == 0 and r.output == ""  # --quiet: nothing but failures
    st = Store(store)
    assert st.experiments() == ["tiny_lr"] and (st.results("tiny_lr")["optim.lr"] == 0.05).all()
    meta = json.loads((st.run_dir("tiny_lr", st.run_ids("tiny_lr")[0]) / "meta.json").read_text())
    assert meta["sets"] == {"optim.lr": 0.05}  # provenance: the overrides with the spec text
    bad = runner.invoke(app, ["run", str(path), "--store", str(store), "--set", "optim.lrr=1"])
    assert bad.exit_code != 0 and "optim.lrr" in str(bad.exception)


def test_compare_two_runs(lab, tmp_path):
    from genlab.cli.compare import config_diff

    _, store, _ = lab
    res = Store(store).results("tiny").sort_values(["seed", "init.std"])
    a, b = res["run_id"].iloc[0], res["run_id"].iloc[1]  # seed 0: init.std 0.01 and 0.1
    out = tmp_path / "c.png"
    r = runner.invoke(app, ["compare", "tiny", a[:8], b[:6], "--store", str(store), "--out", str(out)])
    assert r.exit_code == 0, r.output
    diff_part = r.stdout.split("results")[0]
    assert "init.std" in diff_part and "0.01" in diff_part and "seed" not in diff_part
    assert out.stat().st_size > 1000
    assert config_diff({"a": 1, "b": (1, 2)}, {"a": 1, "b": (1, 3), "c": 0}) == [("b", (1, 2), (1, 3)),
                                                                                 ("c", None, 0)]
    bad = runner.invoke(app, ["compare", "tiny", a[:8], "zzz", "--store", str(store)])
    assert bad.exit_code != 0 and "no finished run with an id starting 'zzz'" in str(bad.exception)


def test_registry_prints_docstrings_verbatim():
    from genlab.measures import _MEASURES

    r = subprocess.run([GENLAB, "registry", "measures"], env={**os.environ, "COLUMNS": "1000"},
                       capture_output=True, text=True)
    summaries = {n: " ".join((_MEASURES.get(n).__doc__ or "").strip().split("\n\n")[0].split())
                 for n in _MEASURES.names()}
    bracketed = [n for n, s in summaries.items() if "[" in s]
    assert bracketed, "no measure docstring with [brackets] left to check"
    for n, s in summaries.items():
        assert s in r.stdout, n
    one = runner.invoke(app, ["registry", "measures", bracketed[0]])
    assert inspect.getdoc(_MEASURES.get(bracketed[0])) in one.stdout
