"""The command line: run/ls/results/plot/figures, clear errors with exit status 2, a --help without torch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genlab.cli import app

runner = CliRunner()


def cli(*args, store):
    """`genlab ARGS --store STORE` in process (CliRunner calls the app; `main` adds the exit-2 error lines)."""
    return runner.invoke(app, [*args, "--store", str(store)], catch_exceptions=True)


GENLAB = str(Path(sys.executable).parent / "genlab")  # the console script (`genlab = genlab.cli:main`)
MAIN = """import sys
from importlib.metadata import entry_points
main = entry_points(group="console_scripts")["genlab"].load()  # what the console script calls
sys.argv = ["genlab", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
assert "torch" not in sys.modules, "torch imported"
"""


def imported(args, env=None):
    """The modules `genlab ARGS` imports, run as the console script (python -X importtime lists them)."""
    r = subprocess.run([GENLAB, *args], capture_output=True, text=True,
                       env={**os.environ, **(env or {}), "PYTHONPROFILEIMPORTTIME": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    return r, {ln.rsplit("|", 1)[1].strip() for ln in r.stderr.splitlines() if ln.startswith("import time:")}


@pytest.mark.parametrize("args", [["--help"], ["ls"], ["results", "tiny", "--format", "csv"], ["results", "tiny"]])
def test_console_script_starts_without_torch(args, tmp_path):
    store = tmp_path / "runs"
    d = store / "tiny" / "0123456789ab"  # a finished run folder, written by hand: no torch here either
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"experiment": "tiny", "seed": 0, "init": {"std": 0.1}}))
    (d / "metrics.jsonl").write_text('{"epoch": 0, "train_loss": 0.5}\n')
    (d / "result.json").write_text(json.dumps({"status": "completed", "final": {"train_loss": 0.5}}))
    (d / "DONE").write_text("")
    env = {"GENLAB_STORE": str(store)}
    r, modules = imported(args, env)
    assert "typer" in modules  # the import list is real: it sees what was imported
    assert ("pandas" in modules) == (args[0] == "results")  # only a table needs pandas (0.3 s of start-up)
    assert not {m for m in modules if m == "torch" or m.startswith("torch.")}, "torch imported"
    if args == ["--help"]:
        assert "run" in r.stdout and "results" in r.stdout and "plot" in r.stdout
    r = subprocess.run([sys.executable, "-c", MAIN, *args], capture_output=True, text=True, env={**os.environ, **env})
    assert r.returncode == 0, r.stderr[-2000:]


def test_run_results_plot_figures(write_spec, tmp_path):
    spec_path, store = write_spec(), tmp_path / "runs"
    r = cli("run", str(spec_path), "--profile", "none", store=store)
    assert r.exit_code == 0, r.output
    assert "2 to run" in r.output and "finished runs" in r.output
    again = cli("run", str(spec_path), "--profile", "none", store=store)
    assert "2 done, 0 to run" in again.output
    js = cli("results", "tiny", "--format", "json", store=store)
    rows = json.loads(js.stdout)
    assert len(rows) == 2 and {row["init.std"] for row in rows} == {0.01, 0.1}
    csv = cli("results", "tiny", "--format", "csv", "--columns", "init.std,test_error", store=store)
    assert csv.stdout.splitlines()[0] == "init.std,test_error" and len(csv.stdout.splitlines()) == 3
    ls = cli("ls", store=store)
    assert "tiny" in ls.stdout
    out = tmp_path / "fig"
    p = cli("plot", "tiny", "--by", "init.std", "--out", str(out / "c.png"), store=store)
    assert p.exit_code == 0 and (out / "c.png").stat().st_size > 1000
    f = cli("figures", str(spec_path), "--profile", "none", "--out", str(out), store=store)
    assert f.exit_code == 0, f.output
    assert (out / "tiny_curves.png").exists() and (out / "tiny_curves.pdf").exists()


def test_errors_are_one_line_and_exit_2(write_spec, tmp_path):
    bad = write_spec(open(write_spec()).read().replace("epochs = 4", "epochs = 'x'"), "bad.toml")
    env = {**os.environ, "GENLAB_STORE": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "genlab", "run", str(bad)], capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert "error:" in r.stderr and "train.epochs" in r.stderr and "bad.toml" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "genlab", "results", "nothing"], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "no experiment 'nothing'" in r.stderr


def test_figures_before_run_says_what_to_do(write_spec, tmp_path):
    r = cli("figures", str(write_spec()), store=tmp_path)
    assert r.exit_code != 0
    assert "not finished" in str(r.exception) and "genlab run" in str(r.exception)


def test_measures_in_spec_and_from_the_cli(write_spec, tmp_path):
    from conftest import TINY
    from genlab.store import Store

    text = TINY.replace("[sweep]", '[record]\nmeasures = ["num_params", "log_prod_frobenius"]\nmeasure_epochs = [2]\n[sweep]')
    path, store = write_spec(text), tmp_path / "runs"
    assert cli("run", str(path), "--profile", "none", store=store).exit_code == 0
    st = Store(store)
    res = st.results("tiny")
    assert (res["num_params"] == 8).all() and res["log_prod_frobenius"].notna().all()
    hist = st.history("tiny")
    assert hist.loc[hist["epoch"] == 2, "num_params"].eq(8).all() and hist.loc[hist["epoch"] == 3, "num_params"].isna().all()
    r = cli("measure", "tiny", "--measures", "margin_q10", store=store)
    assert r.exit_code == 0, r.output
    assert st.results("tiny")["margin_q10"].notna().all()
    bad = write_spec(TINY.replace("[sweep]", '[record]\nmeasures = ["frobenius"]\n[sweep]'), "bad.toml")
    from genlab.spec import loader as spec_mod
    from genlab.spec import SpecError
    import pytest as _pytest
    with _pytest.raises(SpecError, match=r"record.measures.0: unknown measure 'frobenius'"):
        spec_mod.load(bad, None)


def test_measure_options_from_the_spec(write_spec, tmp_path):
    from conftest import TINY
    from genlab.spec import loader as spec_mod
    from genlab.spec import SpecError
    from genlab.store import Store

    opts = '[record]\nmeasures = ["sharpness"]\nmeasure_options = { sharpness = { cfg = { alpha = 0.01, iterations = 3 } } }\n'
    path = write_spec(TINY.replace("[sweep]", opts + "[sweep]"))
    cfg = spec_mod.load(path, None).runs[0].config
    resolved = cfg.record.measure_options["sharpness"]["cfg"]
    assert resolved["alpha"] == 0.01 and resolved["iterations"] == 3 and "restarts" in resolved  # defaults filled
    store = tmp_path / "runs"
    assert cli("run", str(path), "--profile", "none", store=store).exit_code == 0
    assert (Store(store).results("tiny")["sharpness.zeta"] >= 0).all()
    bad = write_spec(TINY.replace("[sweep]", opts.replace("iterations", "iters") + "[sweep]"), "bad.toml")
    with pytest.raises(SpecError, match=r"record.measure_options.sharpness.cfg.iters"):
        spec_mod.load(bad, None)
    other = write_spec(TINY.replace("[sweep]", opts.replace('measures = ["sharpness"]', 'measures = ["num_params"]')
                                    + "[sweep]"), "other.toml")
    with pytest.raises(SpecError, match=r"'sharpness' is not in record.measures"):
        spec_mod.load(other, None)


def test_registry_lists_every_kind_with_docs():
    r = runner.invoke(app, ["registry", "measures"])
    assert r.exit_code == 0 and "log_l2_path_norm" in r.stdout and "sharpness" in r.stdout
    everything = runner.invoke(app, ["registry"]).stdout
    for name in ("separable", "convnet3", "he_normal", "exp", "curves", "slope"):
        assert name in everything
    assert runner.invoke(app, ["registry", "widgets"]).exit_code != 0


def test_same_numbers_in_process_and_in_worker_processes(write_spec, tmp_path):
    from genlab.store import Store

    path = write_spec()
    for store, workers in ((tmp_path / "one", "1"), (tmp_path / "two", "2")):
        r = cli("run", str(path), "--profile", "none", "-j", workers, store=store)
        assert r.exit_code == 0 and "[2/2] std=" in r.output  # a line per finished run, from either executor
    cols = ["run_id", "train_loss", "test_loss", "train_error", "test_error"]
    a = Store(tmp_path / "one").results("tiny")[cols].sort_values("run_id").reset_index(drop=True)
    b = Store(tmp_path / "two").results("tiny")[cols].sort_values("run_id").reset_index(drop=True)
    assert a.equals(b)  # bit-for-bit: same spec and seed, same numbers, whatever the executor


@pytest.mark.parametrize("args, option", [(["run", "x.toml", "-j", "0"], "'--workers'"),
                                          (["run", "x.toml", "--threads", "0"], "'--threads'"),
                                          (["measure", "e", "-m", "margin_q5", "-j", "0"], "'--workers'"),
                                          (["measure", "e", "-m", "margin_q5", "--threads", "-1"], "'--threads'")])
def test_worker_and_thread_counts_below_one_are_refused_naming_the_option(tmp_path, args, option):
    r = cli(*args, store=tmp_path)  # before: -j 0 ran in process, --threads -1 was an internal error
    text = " ".join(r.output.replace("│", " ").split())  # the message, unwrapped from its box
    assert r.exit_code == 2 and option in text and "greater than or equal to 1" in text
