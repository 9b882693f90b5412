"""Integrity: each kind of damage to a finished run is reported (ls, status, verify: which file, why), skipped with
a one-line warning by results/figures/report/measure, and redone by `genlab run`."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from genlab.spec import loader as experiment
from genlab.cli import app
from genlab.executors import pending
from genlab.executors.local import run_local
from genlab.store import DONE, Store

from conftest import TINY

runner = CliRunner()


def cli(*args, store):
    return runner.invoke(app, [*args, "--store", str(store)])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store with the two TINY runs finished (copied by each test)."""
    root = tmp_path_factory.mktemp("trained")
    (root / "spec.toml").write_text(TINY)
    exp = experiment.load(root / "spec.toml", profile=None)
    st = Store(root / "store")
    run_local(pending(exp, st), st)
    return root


def _double_rows(p):
    p.write_text(p.read_text() * 2)


def _edit_config(p):
    cfg = json.loads(p.read_text())
    cfg["optim"]["lr"] = 0.5
    p.write_text(json.dumps(cfg, indent=1, sort_keys=True) + "\n")


def _flip_digit(p):  # same size, other content
    text = p.read_text()
    i = next(i for i, c in enumerate(text) if c.isdigit())
    p.write_text(text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:])


DAMAGE = {  # kind → (file touched, how, what the report says)
    "config edited": ("config.json", _edit_config, "config.json: hashes to"),
    "final.pt truncated": ("final.pt", lambda p: p.write_bytes(p.read_bytes()[:100]), "final.pt: 100 bytes, the manifest"),
    "rows doubled": ("metrics.jsonl", _double_rows, "metrics.jsonl:"),
    "result edited": ("result.json", _flip_digit, "result.json: SHA-256 differs"),
    "file deleted": ("init.pt", lambda p: p.unlink(), "init.pt: missing"),
    "file added": ("notes.txt", lambda p: p.write_text("x"), "notes.txt: not in the manifest"),
    "no manifest": (DONE, lambda p: p.write_text(""), "DONE: has no manifest"),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_damage_is_reported_skipped_and_redone(trained, tmp_path, kind):
    shutil.copytree(trained, tmp_path / "t")
    store, path = tmp_path / "t" / "store", tmp_path / "t" / "spec.toml"
    st = Store(store, warn=lambda *a: None)
    good, bad = st.run_ids("tiny")
    fname, damage, says = DAMAGE[kind]
    damage(st.run_dir("tiny", bad) / fname)

    r = cli("ls", store=store)
    assert f"damaged tiny/{bad}: {says}" in " ".join(r.stdout.split()), r.stdout
    r = cli("status", "tiny", store=store)
    assert "1 done, 1 damaged" in r.stdout and bad in r.stdout and good not in r.stdout
    r = cli("verify", store=store)
    assert r.exit_code == 1 and f"damaged tiny/{bad}: {says}" in r.stdout and "1 intact, 1 damaged" in r.stdout

    r = cli("results", "tiny", "--format", "json", store=store)
    assert r.exit_code == 0 and [row["run_id"] for row in json.loads(r.stdout)] == [good]
    assert f"skipping damaged run tiny/{bad}: {says}" in " ".join(r.stderr.split())
    assert Store(store, warn=lambda *a: None).history("tiny")["run_id"].unique().tolist() == [good]

    r = cli("run", str(path), "--profile", "none", store=store)
    assert r.exit_code == 0 and "1 done, 1 to run, 1 damaged (redone)" in r.stderr, r.stderr
    assert cli("verify", store=store).exit_code == 0
    assert sorted(Store(store).results("tiny")["run_id"]) == sorted([good, bad])


def test_figures_report_and_measure_skip_a_damaged_run_with_a_warning(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "t")
    store, path = tmp_path / "t" / "store", tmp_path / "t" / "spec.toml"
    good, bad = Store(store).run_ids("tiny")
    _double_rows(Store(store).run_dir("tiny", bad) / "metrics.jsonl")
    warning = f"skipping damaged run tiny/{bad}: metrics.jsonl"
    r = cli("figures", str(path), "--profile", "none", "--out", str(tmp_path / "figs"), store=store)
    assert r.exit_code == 0 and warning in r.stderr and (tmp_path / "figs" / "tiny_curves.png").exists()
    r = cli("report", str(path), "--profile", "none", "--out", str(tmp_path / "r.html"), store=store)
    assert r.exit_code == 0 and warning in r.stderr and r.stderr.count("skipping damaged") >= 1
    r = cli("measure", "tiny", "-m", "margin_q10", store=store)
    assert r.exit_code == 0 and warning in r.stderr and "measures on 1 runs" in r.stdout
    res = Store(store, warn=lambda *a: None).results("tiny")
    assert res["margin_q10"].notna().all() and res["run_id"].tolist() == [good]
    assert cli("verify", store=store).exit_code == 1  # measure did not touch the damaged run


def test_a_measured_run_stays_intact_and_uses_its_own_measure_options(tmp_path, write_spec):
    opts = '[record]\nmeasures = ["sharpness"]\nmeasure_options = { sharpness = { cfg = { alpha = 0.5, iterations = 2 } } }\n'
    path = write_spec(TINY.replace("[sweep]", opts + "[sweep]"))
    store = tmp_path / "store"
    assert cli("run", str(path), "--profile", "none", store=store).exit_code == 0
    before = Store(store).results("tiny").set_index("run_id")["sharpness.zeta"]
    r = cli("measure", "tiny", "-m", "sharpness", store=store)
    assert r.exit_code == 0, r.output
    after = Store(store).results("tiny").set_index("run_id")["sharpness.zeta"]
    assert after.to_dict() == pytest.approx(before.to_dict())  # α = 0.5 again, not the default α = 5e-4
    assert cli("verify", store=store).exit_code == 0  # result.json changed, and so did the manifest


def test_measure_skips_diverged_runs(tmp_path, write_spec):
    path = write_spec(TINY.replace("lr = 0.1", "lr = 1e6").replace("std = 0.1", "std = 10.0")
                      .replace("batch_size = 8", 'batch_size = 8\nloss = "exp"').replace("[0.01, 0.1]", "[10.0, 20.0]"))
    store = tmp_path / "store"
    assert cli("run", str(path), "--profile", "none", store=store).exit_code == 0
    assert set(Store(store).results("tiny")["status"]) == {"diverged"}
    r = cli("measure", "tiny", "-m", "margin_q10", store=store)
    assert r.exit_code == 0 and r.stderr.count("diverged: no measures") == 2 and "on 0 runs" in r.stdout
