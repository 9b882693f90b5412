"""Resume after a kill: SIGKILL a `genlab run` midway, run again, and every run finishes exactly once."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from genlab.spec import loader as experiment
from genlab.store import DONE, Store

SPEC = """
name = "killme"
seeds = [0, 1]
[data]
name = "separable"
dim = 5
n_train = 800
n_test = 100
[model]
name = "linear"
[optim]
lr = 0.01
[train]
epochs = 4
batch_size = 1
[sweep]
"init.scale" = [1.0, 2.0]
"""


def _state(store: Store, exp):
    done = [r.run_id for r in exp.runs if store.is_done("killme", r.run_id)]
    started = [r.run_id for r in exp.runs if (store.run_dir("killme", r.run_id) / "metrics.jsonl").exists()]
    return done, [r for r in started if r not in done]


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_midway_then_rerun_finishes_each_run_once(write_spec, tmp_path, workers):
    path, st = write_spec(SPEC), Store(tmp_path / "store")
    exp = experiment.load(path, profile=None)
    cmd = [sys.executable, "-m", "genlab", "run", str(path), "--store", str(st.root), "-j", str(workers),
           "--ensemble", "off"]  # runs finish one by one, so a kill can land between them
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until some runs are finished and another is midway
        done, midway = _state(st, exp)
        if done and midway:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole job: the CLI and its workers
    proc.wait()
    done, midway = _state(st, exp)
    assert done and midway and len(done) < len(exp.runs), "the kill did not land midway"
    finished_at = {r: (st.run_dir("killme", r) / DONE).stat().st_mtime_ns for r in done}

    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{len(done)} done, {len(exp.runs) - len(done)} to run" in r.stderr
    for run in exp.runs:
        d = st.run_dir("killme", run.run_id)
        assert (d / DONE).exists()
        epochs = [json.loads(x)["epoch"] for x in (d / "metrics.jsonl").read_text().splitlines()]
        assert epochs == [0, 1, 2, 3, 4]  # one clean history: nothing appended twice
    assert {r: (st.run_dir("killme", r) / DONE).stat().st_mtime_ns for r in done} == finished_at  # not redone
    assert not list(st.root.rglob("*.tmp"))


def test_store_resume_api_keeps_the_folder_of_the_run_it_continues(tmp_path):
    """save_resume → (killed) → the next holder's start() continues: rows logged after the save are cut, the
    saved object comes back; finish removes resume.pt and the manifest leaves it out."""
    st = Store(tmp_path)
    cfg = '{"a": 1}'
    w = st.start(cfg, "e", "r", {})
    for e in range(3):
        w.log({"epoch": e})
    w.save_state("init", {"w": __import__("torch").zeros(2)})
    w.save_resume({"epoch": 2, "rng": [1, 2, 3]})
    w.log({"epoch": 3})  # logged after the last resume point: will be logged again
    w._metrics.write('{"epoch": 4, "trunc')  # a torn last line, as a SIGKILL leaves it
    w.close()
    assert st.load_resume("e", "r") == {"epoch": 2, "rng": [1, 2, 3]}
    w = st.start(cfg, "e", "r", {"again": True})
    assert w.resumed == {"epoch": 2, "rng": [1, 2, 3]} and (st.run_dir("e", "r") / "init.pt").exists()
    assert [json.loads(x)["epoch"] for x in (st.run_dir("e", "r") / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2]
    w.log({"epoch": 3})
    w.finish({"status": "completed"})
    d = st.run_dir("e", "r")
    assert not (d / "resume.pt").exists() and "resume.pt" not in json.loads((d / DONE).read_text())["manifest"]
    assert st.load_resume("e", "r") is None

    w = st.start(cfg, "e", "r2", {})
    w.save_resume({"epoch": 0})
    w.close()
    w = st.start('{"a": 2}', "e", "r2", {})  # another config under that folder: not resumed, wiped
    assert w.resumed is None and not (st.run_dir("e", "r2") / "resume.pt").exists()
    w.close()


SLOW_SPEC = """
name = "resumeme"
seeds = [0]
[data]
name = "separable"
dim = 5
n_train = 400
n_test = 100
[model]
name = "mlp"
widths = [16]
[optim]
lr = 0.01
momentum = 0.9
[train]
epochs = 200
batch_size = 1
[record]
resume_every = 1
save_init = true
"""  # 200 epochs: long enough to be killed 20 times (at 100 a faster solo step let it finish after 19)


@pytest.mark.slow  # 21 process starts: ~6 min on 2 busy cores
def test_a_run_sigkilled_20_times_resumes_to_the_uninterrupted_numbers(write_spec, tmp_path):
    import random

    import torch

    from genlab.executors import pending
    from genlab.executors.local import run_local

    path = write_spec(SLOW_SPEC)
    exp = experiment.load(path, profile=None)
    ref, st = Store(tmp_path / "ref"), Store(tmp_path / "killed")
    run_local(pending(exp, ref), ref)
    rid = exp.runs[0].run_id
    cmd = [sys.executable, "-m", "genlab", "run", str(path), "--profile", "none", "--store", str(st.root)]
    rng, kills = random.Random(0), 0
    while kills < 20 and not st.is_done("resumeme", rid):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        metrics = st.run_dir("resumeme", rid) / "metrics.jsonl"
        rows = len(metrics.read_text().splitlines()) if metrics.exists() else 0
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None and (
                not metrics.exists() or len(metrics.read_text().splitlines()) <= rows):
            time.sleep(0.02)  # until it has made progress (so every kill lands mid-training) ...
        time.sleep(rng.uniform(0, 0.3))  # ... then at a random moment
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills == 20, f"the run finished after {kills} kills: make it longer"
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    a, b = (s.history("resumeme").drop(columns=["epoch_s"]) for s in (ref, st))
    assert a.equals(b)  # bit-identical history, each epoch once
    wa, wb = (torch.load(s.run_dir("resumeme", rid) / "final.pt") for s in (ref, st))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
