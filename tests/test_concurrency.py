"""Many workers on one store: concurrent `genlab run` commands (in process, and pools) finish every run exactly
once with no error; killing a `genlab run` by its pid leaves none of its workers alive or writing."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genlab.spec import loader as experiment
from genlab.store import Store

SWEEP = """
name = "shared"
seeds = [0, 1, 2]
[data]
name = "separable"
dim = 3
n_train = 48
n_test = 32
[model]
name = "linear"
[optim]
lr = 0.1
[train]
epochs = {epochs}
batch_size = 8
[sweep]
"init.scale" = [0.5, 1.0, 2.0, 4.0]
"""


def _genlab(path, store, *args):
    return subprocess.Popen([sys.executable, "-m", "genlab", "run", str(path), "--profile", "none",
                             "--store", str(store), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


MODES = {"two in-process": (("-j", "1", "--ensemble", "off"), ("-j", "1", "--ensemble", "off")),
         "pool and in-process": (("-j", "1", "--ensemble", "off"), ("-j", "2", "--ensemble", "off")),
         "ensembles of 4 and of 3": (("-j", "1", "--ensemble", "4"), ("-j", "2", "--ensemble", "3"))}


def _trained(stderr: str) -> int:
    """Runs a `genlab run` trained, from its last line; a command that found every run done (the other one
    finished all of them before it planned: ensembles are fast) trains none and prints only its plan line."""
    m = re.search(r"(\d+) runs trained here", stderr)
    if m is None:
        assert re.search(r", 0 to run", stderr), stderr[-2000:]
        return 0
    return int(m.group(1))


def concurrent_trials(path, root: Path, a: tuple, b: tuple, trials: int) -> None:
    """`trials` times: two `genlab run` commands on a fresh store at once; every run trained exactly once."""
    exp = experiment.load(path, profile=None)
    for trial in range(trials):
        store = root / f"store{trial}"
        procs = [_genlab(path, store, *a), _genlab(path, store, *b)]
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
        trained = [_trained(o[1]) for o in outs]
        assert sum(trained) == len(exp.runs) == 12, (trial, trained)  # each run trained by exactly one of them
        assert all(re.search(r", 0 failed$|, 0 to run", o[1], re.M) and "Traceback" not in o[1]
                   and "FAILED" not in o[1] for o in outs), outs
        st = Store(store)
        assert all(st.is_done("shared", r.run_id) for r in exp.runs)  # intact: manifests match
        for r in exp.runs:
            rows = (st.run_dir("shared", r.run_id) / "metrics.jsonl").read_text().splitlines()
            assert [json.loads(x)["epoch"] for x in rows] == [0, 1, 2]
        assert not list((store / "shared" / ".leases").iterdir())  # every lease released


@pytest.mark.parametrize("mode", MODES)
def test_concurrent_runs_finish_every_run_exactly_once(write_spec, tmp_path, mode):
    concurrent_trials(write_spec(SWEEP.format(epochs=2)), tmp_path, *MODES[mode], trials=1)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_concurrent_runs_many_trials(write_spec, tmp_path, mode):
    concurrent_trials(write_spec(SWEEP.format(epochs=2)), tmp_path, *MODES[mode], trials=5)


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_the_parent_stops_its_workers(write_spec, tmp_path):
    path = write_spec(SWEEP.format(epochs=400))
    store = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-m", "genlab", "run", str(path), "--profile", "none", "--store",
                             str(store), "-j", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(store.glob("shared/*/metrics.jsonl"))) < 2:
            time.sleep(0.1)
        workers = _children(proc.pid)
        assert len(workers) >= 2, "the workers did not start"
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, as `kill PID` of a user would
        proc.wait()
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)], "workers outlived their parent"
        stamps = {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}
        time.sleep(1.0)
        assert {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()} == stamps  # nothing writes on
    finally:  # a failing check leaves no orphans behind
        for pid in [proc.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
