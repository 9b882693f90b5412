"""Resume snapshots are independent of the trainer, plain data, hash-checked, and never block a run for good.

A run interrupted under one trainer (solo, an ensemble of 4) continues under another (an ensemble, solo, an
ensemble of 2) and ends at the uninterrupted numbers: bit-identical where the arithmetic is the same (an
ensemble of 4 → 2 on the bmm path, solo → solo), to float tolerance where it is not (solo ↔ ensemble, the
tolerance that separates a solo run from its ensemble member).
"""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from genlab.spec import loader as experiment
from genlab.executors import pending
from genlab.executors.local import run_local
from genlab.store.runfiles import RESUME, BadResume, pack_resume, unpack_resume
from genlab.store import DONE, Store

SPEC = """
name = "switch"
seeds = [0, 1, 2, 3]
[data]
name = "separable"
dim = 6
n_train = 96
n_test = 64
[model]
name = "mlp"
widths = [12]
[optim]
name = "{optim}"
lr = 0.02
momentum = 0.9
[train]
epochs = 6
batch_size = 16
[record]
resume_every = 1
"""
KILL_AT = 3  # the interruption lands when epoch 3 is logged: the snapshot of epoch 2 is the one resumed


class Killed(KeyboardInterrupt):
    """What a kill looks like from inside: no DONE, no error, whatever was written stays."""


def _interrupt_at(epoch):
    def progress(run_id, row, epochs):
        if row.get("epoch") == epoch:
            raise Killed
    return progress


def _run(exp, store, k, progress=None):
    run_local(pending(exp, store), store, progress=progress, ensemble=(k, False))


def _finals(store, exp):
    return {r.run_id: torch.load(store.run_dir("switch", r.run_id) / "final.pt", weights_only=True) for r in exp.runs}


def _history(store):
    return store.history("switch").drop(columns=["epoch_s"]).sort_values(["run_id", "epoch"]).reset_index(drop=True)


@pytest.mark.parametrize("optim", ["sgd", "adam"])
@pytest.mark.parametrize("before,after", [(1, 4), (4, 1), (4, 2), (1, 1)], ids=["solo->ens4", "ens4->solo",
                                                                                 "ens4->ens2", "solo->solo"])
def test_a_run_interrupted_under_one_trainer_finishes_under_another_at_the_uninterrupted_numbers(
        write_spec, tmp_path, before, after, optim):
    exp = experiment.load(write_spec(SPEC.format(optim=optim)), profile=None)
    ref, st = Store(tmp_path / "ref"), Store(tmp_path / "cut")
    _run(exp, ref, before)  # uninterrupted, under the first trainer
    with pytest.raises(Killed):
        _run(exp, st, before, _interrupt_at(KILL_AT))
    cut = [r.run_id for r in exp.runs if (st.run_dir("switch", r.run_id) / RESUME).exists()]
    assert cut and not any(st.has_done("switch", r) for r in cut)
    snap = st.load_resume("switch", cut[0])
    assert snap["epoch"] == KILL_AT - 1 and snap["optim"]["name"] == optim
    _run(exp, st, after)
    assert all(st.is_done("switch", r.run_id) for r in exp.runs)
    for r in cut:
        meta = json.loads((st.run_dir("switch", r) / "meta.json").read_text())
        assert meta["resumed_at_row"] == KILL_AT  # resumed, not redone
    a, b = _history(ref), _history(st)
    assert list(a["epoch"]) == list(b["epoch"])  # every epoch once
    wa, wb = _finals(ref, exp), _finals(st, exp)
    if before == after or {before, after} == {4, 2}:  # the same arithmetic: bit-identical
        assert a.equals(b)
        assert all(torch.equal(wa[r][k], wb[r][k]) for r in wa for k in wa[r])
    else:  # solo ↔ ensemble: the float tolerance between a solo run and its ensemble member
        num = [c for c in a.columns if c.endswith(("_loss", "_error")) and a[c].dtype.kind == "f"]
        assert (a[num] - b[num]).abs().max().max() < 1e-4
        assert all(torch.allclose(wa[r][k], wb[r][k], atol=1e-5, rtol=1e-4) for r in wa for k in wa[r])


def test_the_snapshot_is_plain_data_read_with_weights_only(write_spec, tmp_path):
    exp = experiment.load(write_spec(SPEC.format(optim="sgd")), profile=None)
    st = Store(tmp_path)
    with pytest.raises(Killed):
        _run(exp, st, 4, _interrupt_at(KILL_AT))
    rid = exp.runs[0].run_id
    data = (st.run_dir("switch", rid) / RESUME).read_bytes()
    head, _, body = data.partition(b"\n")
    saved = torch.load(io.BytesIO(body), weights_only=True)  # no global beyond tensors and plain containers
    state = saved["state"]
    assert saved["rows"] == KILL_AT == len(state["history"])
    assert set(state["optim"]) == {"name", "t", "bufs", "sq"} and state["optim"]["bufs"][0] is not None
    assert isinstance(state["rng"]["numpy"]["key"], torch.Tensor) and state["rng"]["numpy"]["key"].numel() == 624
    assert isinstance(state["rng"]["python"]["state"], torch.Tensor)


def test_resume_file_hash_is_checked_before_use(tmp_path):
    data = pack_resume(3, {"x": torch.arange(4)})
    assert unpack_resume(data)[0] == 3
    flipped = bytearray(data)
    flipped[-10] ^= 1
    with pytest.raises(BadResume, match="SHA-256 differs"):
        unpack_resume(bytes(flipped))
    with pytest.raises(BadResume, match="not a genlab resume file"):
        unpack_resume(data.partition(b"\n")[2])  # a bare torch.save: the format before, or a forgery


class Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _evil_resume(path, flag, with_header):
    buf = io.BytesIO()
    torch.save({"rows": 1, "state": Evil(flag)}, buf)
    body = buf.getvalue()
    if with_header:  # a hostile writer re-computes the hash: the hash stops accidents, weights_only stops code
        import hashlib

        body = b"genlab-resume 2 sha256=" + hashlib.sha256(body).hexdigest().encode() + b"\n" + body
    path.write_bytes(body)


@pytest.mark.parametrize("damage", ["pickle", "pickle-rehashed", "random", "empty", "foreign"])
def test_a_damaged_or_hostile_snapshot_is_set_aside_and_the_run_starts_over(write_spec, tmp_path, damage,
                                                                             capfd):
    exp = experiment.load(write_spec(SPEC.format(optim="sgd")), profile=None)
    st = Store(tmp_path / "s")
    with pytest.raises(Killed):
        _run(exp, st, 1, _interrupt_at(KILL_AT))
    rid = exp.runs[0].run_id
    f = st.run_dir("switch", rid) / RESUME
    flag = tmp_path / "PWNED"
    if damage.startswith("pickle"):
        _evil_resume(f, flag, damage == "pickle-rehashed")
    elif damage == "random":
        f.write_bytes(os.urandom(4096))
    elif damage == "empty":
        f.write_bytes(b"")
    else:  # well-formed, hash-correct, but another run's shapes
        rows, state = unpack_resume(f.read_bytes())
        state["model"] = {k: torch.zeros(3, 3) for k in state["model"]}
        f.write_bytes(pack_resume(rows, state))
    capfd.readouterr()
    _run(exp, st, 1)
    err = capfd.readouterr().err
    assert not flag.exists()  # no code ran
    assert st.is_done("switch", rid) and not (st.run_dir("switch", rid) / "error.json").exists()
    aside = list((st.root / "switch" / ".set-aside").iterdir())
    assert len(aside) == 1 and aside[0].name.startswith(rid)
    assert err.count("set it aside") == 1 and str(aside[0]) in err and "starts over" in err
    meta = json.loads((st.run_dir("switch", rid) / "meta.json").read_text())
    assert "resumed_at_row" not in meta  # started over, from epoch 0
    epochs = [json.loads(x)["epoch"] for x in (st.run_dir("switch", rid) / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(7))


def test_a_foreign_snapshot_in_an_ensemble_member_restarts_only_that_member(write_spec, tmp_path, capfd):
    exp = experiment.load(write_spec(SPEC.format(optim="sgd")), profile=None)
    st = Store(tmp_path / "s")
    with pytest.raises(Killed):
        _run(exp, st, 4, _interrupt_at(KILL_AT))
    bad = exp.runs[1].run_id
    f = st.run_dir("switch", bad) / RESUME
    rows, state = unpack_resume(f.read_bytes())
    state["optim"]["bufs"] = state["optim"]["bufs"][:1]  # one parameter's buffer: another model's optimizer
    f.write_bytes(pack_resume(rows, state))
    _run(exp, st, 4)
    assert all(st.is_done("switch", r.run_id) for r in exp.runs)
    metas = {r.run_id: json.loads((st.run_dir("switch", r.run_id) / "meta.json").read_text()) for r in exp.runs}
    assert "resumed_at_row" not in metas[bad]
    assert all(metas[r]["resumed_at_row"] == KILL_AT for r in metas if r != bad)
    assert capfd.readouterr().err.count("set it aside") == 1


ZIP_SPEC = """
name = "zipkill"
seeds = [0]
[data]
name = "separable"
dim = 5
n_train = 400
n_test = 100
[model]
name = "linear"
[optim]
lr = 0.01
momentum = 0.9
[train]
batch_size = 1
[record]
resume_every = 1
[[sweep.zip]]
"train.epochs" = [1, 60]
"""


def test_sigkill_in_an_ensemble_then_resume_solo(write_spec, tmp_path):
    """The issue's case: a zip sweep whose short run finished before the kill leaves one run, resumed solo."""
    path, st = write_spec(ZIP_SPEC), Store(tmp_path / "store")
    exp = experiment.load(path, profile=None)
    long = [r for r in exp.runs if r.config.train.epochs == 60][0].run_id
    cmd = [sys.executable, "-m", "genlab", "run", str(path), "--store", str(st.root), "--ensemble", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    f = st.run_dir("zipkill", long) / RESUME
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not f.exists():
        time.sleep(0.05)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert f.exists() and not st.has_done("zipkill", long), "the kill did not land midway"
    assert unpack_resume(f.read_bytes())[1]["optim"]["name"] == "sgd"
    r = subprocess.run([*cmd[:-2], "--ensemble", "off"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "set it aside" not in r.stderr
    assert st.is_done("zipkill", long)
    assert json.loads((st.run_dir("zipkill", long) / "meta.json").read_text())["resumed_at_row"] > 1
    assert not (st.run_dir("zipkill", long) / DONE).read_text().count(RESUME)


@pytest.mark.parametrize("k", [1, 4])
def test_a_run_that_fails_before_training_still_gets_its_error_json(write_spec, tmp_path, monkeypatch, k):
    exp = experiment.load(write_spec(SPEC.format(optim="sgd")), profile=None)
    st = Store(tmp_path / "s")

    def boom(self, d, config_text):
        raise RuntimeError(f"cannot open {d.name}")

    monkeypatch.setattr(Store, "_resumable", boom)
    errors = []
    run_local(pending(exp, st), st, ensemble=(k, False), on_done=lambda job, res, err: errors.append(err))
    assert len(errors) == 4 and all(e and "cannot open" in e for e in errors)
    for r in exp.runs:
        state = st.state("switch", r.run_id)
        assert state.kind == "failed" and state.detail == f"RuntimeError: cannot open {r.run_id}"
