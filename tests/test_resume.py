"""Resume after a kill: SIGKILL a `genlab run` midway, run again, and every run finishes exactly once."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from genlab import spec
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
    exp = spec.load(path, profile=None)
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
