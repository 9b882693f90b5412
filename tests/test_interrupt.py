"""Ctrl-C keeps the work (genlab.interrupt): SIGINT mid-epoch stops every run in flight after its epoch with a
resume snapshot, names each with its epoch, exits 130; the re-run resumes each where it stopped and ends with
the numbers of a sweep never interrupted. The resume cadence never enters the run id."""

import os
import re
import signal
import threading
import time

import pytest
import torch
from typer.testing import CliRunner

from genlab import interrupt
from genlab.spec import loader as experiment
from genlab.cli import app
from genlab.spec import RunConfig
from genlab.store import Store

runner = CliRunner()

SPEC = """
name = "ctrlc"
seeds = [0, 1]
[data]
name = "separable"
dim = 5
n_train = 120
n_test = 50
[model]
name = "linear"
[optim]
lr = 0.01
momentum = 0.9
[train]
epochs = 30
batch_size = 4
[sweep]
"init.scale" = [1.0, 2.0]
"""

LINE = re.compile(r"^ctrlc/([0-9a-f]{12}): stopped at epoch (\d+)/30, resumes there$", re.M)


def _rows(store: Store, exp) -> int:
    """The most epochs any run of `exp` has logged so far."""
    most = 0
    for r in exp.runs:
        m = store.run_dir("ctrlc", r.run_id) / "metrics.jsonl"
        if m.exists():
            most = max(most, len(m.read_bytes().split(b"\n")) - 1)
    return most


def _sigint_when(store: Store, exp, rows: int, timeout: float = 120) -> threading.Thread:
    """A thread that sends this process SIGINT once some run has logged `rows` rows (so mid-training)."""
    def watch() -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and _rows(store, exp) < rows:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def _snapshot_epoch(st: Store, rid: str):
    """The epoch of a run's resume snapshot (whatever object `Store.load_resume` returns for it)."""
    obj = st.load_resume("ctrlc", rid)
    return obj.get("epoch") if isinstance(obj, dict) else getattr(obj, "epoch", None)


def _run(path, store: Store, *args):
    return runner.invoke(app, ["run", str(path), "--store", str(store.root), "--profile", "none", *args])


@pytest.mark.parametrize("args", [["-j", "1", "--ensemble", "off"], ["-j", "2", "--ensemble", "off"],
                                  ["-j", "1", "--ensemble", "auto"]], ids=["in_process", "pool", "ensemble"])
def test_sigint_mid_epoch_stops_each_run_with_a_snapshot_and_the_rerun_matches_an_uninterrupted_sweep(
        write_spec, tmp_path, args):
    path = write_spec(SPEC)
    exp = experiment.load(path, profile=None)
    ref, st = Store(tmp_path / "ref"), Store(tmp_path / "stopped")
    solo = ["-j", "1", *args[2:]]  # a pool's runs are this process's runs (one thread each): the same numbers
    assert _run(path, ref, *solo).exit_code == 0

    watcher = _sigint_when(st, exp, rows=4)  # epoch 0 (at init) and 3 trained epochs logged
    r = _run(path, st, *args)
    watcher.join()
    assert r.exit_code == interrupt.EXIT_CODE, r.output
    stopped = {rid: int(e) for rid, e in LINE.findall(r.output)}
    assert stopped, r.output  # at least the run(s) in flight
    assert max(stopped.values()) >= 3  # the run that had logged 3 epochs went on to the end of one more
    for rid, e in stopped.items():
        assert 1 <= e < 30  # a run that had not finished an epoch yet finishes one
        state = st.state("ctrlc", rid)
        assert (state.kind, state.epoch) == ("pending", e)  # claim released; metrics end at the epoch named
        assert _snapshot_epoch(st, rid) == e  # the snapshot is of that epoch
    assert not list((st.root / "ctrlc" / ".leases").glob("*.json"))  # every claim released
    started = {r.run_id for r in exp.runs if st.run_dir("ctrlc", r.run_id).exists()}
    assert started - set(stopped) == {r.run_id for r in exp.runs if st.is_done("ctrlc", r.run_id)}

    again = _run(path, st, *args)
    assert again.exit_code == 0, again.output
    for rid, e in stopped.items():  # resumed at its epoch: the rows after it were logged once, by the re-run
        meta = (st.run_dir("ctrlc", rid) / "meta.json").read_text()
        assert f'"resumed_at_row": {e + 1}' in meta
    a, b = (s.history("ctrlc").drop(columns=["epoch_s"]).sort_values(["run_id", "epoch"]).reset_index(drop=True)
            for s in (ref, st))
    assert a.equals(b)  # bit-identical history, each epoch once
    for r in exp.runs:
        wa, wb = (torch.load(s.run_dir("ctrlc", r.run_id) / "final.pt") for s in (ref, st))
        assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_request_before_training_starts_nothing(write_spec, tmp_path):
    """The executors start no unit once a stop was asked for (a second sweep in a Ctrl-C'd process resets)."""
    from genlab.executors import pending
    from genlab.executors.local import run_local

    path = write_spec(SPEC)
    exp = experiment.load(path, profile=None)
    st = Store(tmp_path / "s")
    interrupt.request()
    try:
        run_local(pending(exp, st), st)
    finally:
        interrupt.reset()
    assert not (st.root / "ctrlc").exists() or not any(st.run_dir("ctrlc", r.run_id).exists() for r in exp.runs)


def test_resume_cadence_never_changes_the_run_id():
    base = {"experiment": "x", "data": {"name": "separable", "dim": 3}, "model": {"name": "linear"}}
    ids = {RunConfig(**base, record={"resume_every": k}).run_id for k in (0, 1, 10)}
    assert len(ids) == 1
    assert RunConfig(**base, record={"resume_every": 7}).canonical_json() == RunConfig(**base).canonical_json()
    assert RunConfig(**base, record={"save_init": False}).run_id not in ids  # what changes the files still does


def test_tensorboard_shows_finished_epochs_while_the_run_still_trains(write_spec, tmp_path):
    """`genlab run --tensorboard DIR`: event files, named by sweep point, hold each finished epoch's scalars
    (the store's values) while the sweep is still training; a SIGINT then stops it with exit 130."""
    pytest.importorskip("tensorboard")
    import json
    import subprocess
    import sys

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path, st, tb = write_spec(SPEC.replace("epochs = 30", "epochs = 3000")), Store(tmp_path / "s"), tmp_path / "tb"
    exp = experiment.load(path, profile=None)
    proc = subprocess.Popen([sys.executable, "-m", "genlab", "run", str(path), "--profile", "none", "--store",
                             str(st.root), "--ensemble", "off", "--tensorboard", str(tb)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, seen = time.time() + 180, {}
        while time.time() < deadline and proc.poll() is None:
            for folder in (tb / "ctrlc").glob("*") if (tb / "ctrlc").exists() else []:
                acc = EventAccumulator(str(folder))
                acc.Reload()
                if "train_loss" in acc.Tags()["scalars"]:
                    seen[folder.name] = [(e.step, e.value) for e in acc.Scalars("train_loss")]
            if seen and max(len(v) for v in seen.values()) >= 4:
                break
            time.sleep(0.2)
        still_training = proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=120)[0]
    assert still_training and seen, output
    assert proc.returncode == interrupt.EXIT_CODE, output
    names = {run_name: r for r in exp.runs for run_name in seen if run_name.endswith("_" + r.run_id[:6])}
    assert set(names) == set(seen)  # every folder names its run ...
    for name, r in names.items():
        assert name.startswith(f"scale={r.point['init.scale']}_seed={r.point['seed']}_")  # ... and its point
        rows = [json.loads(x) for x in (st.run_dir("ctrlc", r.run_id) / "metrics.jsonl").read_text().splitlines()]
        store_loss = {row["epoch"]: row["train_loss"] for row in rows}
        got = seen[name]
        assert [s for s, _ in got] == list(range(len(got)))  # epochs 0, 1, 2, ... in order
        assert all(abs(v - store_loss[s]) <= 1e-6 * abs(store_loss[s]) for s, v in got)
        assert len(got) < 3000  # read mid-run


def _popen_run(path, st, *args):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "genlab", "run", str(path), "--profile", "none", "--store",
                             str(st.root), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_a_terminals_ctrl_c_reaches_the_whole_group_and_a_second_one_exits_at_once(write_spec, tmp_path):
    """SIGINT to the process group (what a terminal's Ctrl-C does: the CLI and its pool workers): the runs
    stop after their epoch as above; a second SIGINT right after the first exits at once, with 130."""
    for twice in (False, True):
        # twice: epochs of ~1 s (20,000 points), so that the second signal, 50 ms after the first, lands before
        # the epoch ends (with short epochs the first stop may finish and the process exit before it arrives)
        text = SPEC.replace("epochs = 30", "epochs = 3000")
        path = write_spec(text.replace("n_train = 120", "n_train = 20000") if twice else text, f"spec{twice}.toml")
        exp = experiment.load(path, profile=None)
        st = Store(tmp_path / f"s{twice}")
        proc = _popen_run(path, st, "-j", "1" if twice else "2", "--ensemble", "off")
        deadline = time.time() + 180
        while time.time() < deadline and _rows(st, exp) < 3:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        if twice:
            time.sleep(0.05)
            os.killpg(proc.pid, signal.SIGINT)
        t0 = time.time()
        output = proc.communicate(timeout=120)[0]
        assert proc.returncode == interrupt.EXIT_CODE, output
        stopped = {rid: int(e) for rid, e in LINE.findall(output.replace("/3000,", "/30,"))}
        if twice:  # no lines, no waiting for an epoch: the claims are left to go stale (their pid is gone)
            assert not stopped and time.time() - t0 < 10, output
            assert all(st.state("ctrlc", r.run_id).kind in ("pending", "stale") for r in exp.runs
                       if st.run_dir("ctrlc", r.run_id).exists())
        else:
            assert len(stopped) == 2, output  # both workers' runs, each at an epoch it finished
            for rid, e in stopped.items():
                assert _snapshot_epoch(st, rid) == e and st.state("ctrlc", rid).kind == "pending"


def test_wandb_offline_runs_are_written_as_runs_finish(write_spec, tmp_path, monkeypatch):
    """`--wandb DIR`: each run, once finished, becomes one offline W&B run with every row (a stand-in module
    records the calls: the real wandb is an optional extra)."""
    import sys
    import types

    from genlab.executors import pending
    from genlab.executors.local import run_local
    from genlab.live import LiveLog

    calls = []

    class Run:
        def __init__(self, **kw):
            self.kw, self.rows, self.summary = kw, [], {}
            calls.append(self)

        def log(self, row, step):
            self.rows.append((step, row))

        def finish(self):
            self.finished = True

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=lambda **kw: Run(**kw)))
    path = write_spec(SPEC.replace("epochs = 30", "epochs = 3"))
    exp = experiment.load(path, profile=None)
    st = Store(tmp_path / "s")
    jobs = pending(exp, st)
    with LiveLog(st, jobs, wandb=tmp_path / "wb", interval=0.05) as live:
        run_local(jobs[:2], st)
        deadline = time.time() + 30
        while len(live.finished) < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert len(calls) == 2  # the two finished runs, while the block still runs; the others not yet
    assert {c.kw["name"] for c in calls} == {f"scale={r.point['init.scale']}_seed={r.point['seed']}_{r.run_id[:6]}"
                                             for r in exp.runs[:2]}  # named by sweep point
    for c in calls:
        assert c.kw["mode"] == "offline" and c.finished and [s for s, _ in c.rows] == [0, 1, 2, 3]
        assert "final/test_loss" in c.summary
