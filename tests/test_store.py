"""The run store: layout, atomic files, resume rule, queries as DataFrames."""

import json

import pytest

from genlab.spec import loader as experiment
from genlab.executors import pending
from genlab.executors.local import run_local
from genlab.store import DONE, Store, atomic_write


def run_all(exp, store):
    failures = []
    run_local(pending(exp, store), store, on_done=lambda j, res, err: err and failures.append(err))
    assert not failures, failures[0]


def test_layout_results_and_history(write_spec, tmp_path):
    exp = experiment.load(write_spec(), profile=None)
    st = Store(tmp_path / "runs")
    run_all(exp, st)
    rid = exp.runs[0].run_id
    d = st.run_dir("tiny", rid)
    assert sorted(p.name for p in d.iterdir()) == sorted(["config.json", "meta.json", "metrics.jsonl", "result.json",
                                                          "init.pt", "final.pt", DONE])
    assert json.loads((d / "config.json").read_text()) == json.loads(exp.runs[0].config.canonical_json())
    meta = json.loads((d / "meta.json").read_text())
    assert meta["spec_text"] == exp.text and meta["point"] == {"init.std": 0.01, "seed": 0} and meta["torch"]
    res = st.results("tiny")
    assert len(res) == 2 and set(res["init.std"]) == {0.01, 0.1}
    assert {"run_id", "data.n_train", "optim.lr", "status", "train_loss", "test_error", "n_params"} <= set(res.columns)
    assert (res["n_params"] == 8).all()  # linear 3 → 2 with bias
    hist = st.history("tiny")
    assert len(hist) == 2 * 5 and set(hist.groupby("run_id")["epoch"].max()) == {4}
    assert st.results("tiny", [rid])["run_id"].tolist() == [rid]
    with pytest.raises(KeyError, match="no experiment 'nope'.*tiny"):
        st.results("nope")


def test_rerun_skips_finished_and_new_sweep_values_run_alone(write_spec, tmp_path):
    st = Store(tmp_path)
    exp = experiment.load(write_spec(), profile=None)
    run_all(exp, st)
    stamps = {r.run_id: (st.run_dir("tiny", r.run_id) / DONE).stat().st_mtime_ns for r in exp.runs}
    assert pending(exp, st) == []
    from conftest import TINY

    wider = experiment.load(write_spec(TINY.replace("[0.01, 0.1]", "[0.01, 0.1, 0.5]"), "w.toml"), profile=None)
    todo = pending(wider, st)
    assert [j.run.point["init.std"] for j in todo] == [0.5]
    run_all(wider, st)
    assert {r: (st.run_dir("tiny", r) / DONE).stat().st_mtime_ns for r in stamps} == stamps  # untouched
    assert len(st.results("tiny")) == 3


def test_unfinished_run_is_redone_from_scratch(write_spec, tmp_path):
    st = Store(tmp_path)
    exp = experiment.load(write_spec(), profile=None)
    r = exp.runs[0]
    w = st.start(r.config.canonical_json(), "tiny", r.run_id, {})
    w.log({"epoch": 0, "train_loss": 9.0})
    w.close()  # killed before DONE
    assert [j.run.run_id for j in pending(exp, st)] == [x.run_id for x in exp.runs]
    run_all(exp, st)
    lines = (st.run_dir("tiny", r.run_id) / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[0])["train_loss"] != 9.0
    with pytest.raises(FileExistsError, match="already finished"):
        st.start(r.config.canonical_json(), "tiny", r.run_id, {})


def test_update_result_and_atomic_write(tmp_path, write_spec):
    st = Store(tmp_path)
    exp = experiment.load(write_spec(), profile=None)
    run_all(exp, st)
    rid = exp.runs[0].run_id
    st.update_result("tiny", rid, "measures", {"log_prod_fro": 1.5})
    st.update_result("tiny", rid, "measures", {"margin": 0.25})
    row = st.results("tiny").set_index("run_id").loc[rid]
    assert row["log_prod_fro"] == 1.5 and row["margin"] == 0.25
    atomic_write(tmp_path / "x.bin", b"abc")
    assert (tmp_path / "x.bin").read_bytes() == b"abc" and not list(tmp_path.glob(".x.bin.*"))


def test_non_finite_values_are_stored_as_null(tmp_path):
    st = Store(tmp_path)
    w = st.start('{"a": 1}', "e", "r1", {})
    w.log({"epoch": 0, "train_loss": float("inf")})
    w.finish({"status": "diverged", "final": {"train_loss": float("nan")}})
    assert json.loads((tmp_path / "e/r1/metrics.jsonl").read_text())["train_loss"] is None


def test_sql_over_results_and_history(write_spec, tmp_path):
    st = Store(tmp_path)
    exp = experiment.load(write_spec(), profile=None)
    run_all(exp, st)
    df = st.sql("tiny", 'SELECT "init.std" AS s, count(*) AS n FROM history GROUP BY 1 ORDER BY 1')
    assert df["s"].tolist() == [0.01, 0.1] and df["n"].tolist() == [5, 5]
    best = st.sql("tiny", "SELECT min(test_loss) AS m FROM results")["m"].iloc[0]
    assert best == st.results("tiny")["test_loss"].min()


def test_per_class_accuracy_and_corruption_mask_are_stored(tmp_path):
    import torch

    raw = {"name": "pc", "data": {"name": "digits", "corrupt_prob": 0.5, "test_flips": ["vertical"]},
           "model": {"name": "linear"}, "train": {"epochs": 1, "batch_size": 64}}
    exp = experiment.parse(raw)
    st = Store(tmp_path)
    run_all(exp, st)
    row = st.results("pc").iloc[0]
    test_acc = row["per_class.test"]
    assert len(test_acc) == 10 and len(row["per_class.test_vflip"]) == 10
    import numpy as np

    from genlab.data import build_dataset

    y_test = build_dataset("digits").y_test.numpy()  # per-class accuracies weighted by class counts → accuracy
    counts = np.bincount(y_test, minlength=10)
    assert np.dot(test_acc, counts) / len(y_test) == pytest.approx(1 - row["test_error"], abs=1e-6)
    info = torch.load(st.run_dir("pc", row["run_id"]) / "data_info.pt")
    mask = info["corrupt_mask"]
    assert row["data_info.n_corrupted"] == int(mask.sum()) and 0.35 < mask.float().mean() < 0.65
