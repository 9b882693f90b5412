"""`genlab status`: done / running (host, pid, epoch, heartbeat age) / stale / damaged / failed (error) / pending;
failed runs keep their error and traceback in the run folder and are redone only with --retry-failed."""

import json
import os
import socket
import time

from typer.testing import CliRunner

from genlab.store import claims
from genlab.cli import app
from genlab.store import Store

from conftest import TINY

runner = CliRunner()


def cli(*args, store):
    return runner.invoke(app, [*args, "--store", str(store)])


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def test_status_shows_every_state(write_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # every column whole
    wide = TINY.replace("[0.01, 0.1]", "[0.01, 0.1, 0.2, 0.3, 0.4]")
    path, store = write_spec(wide), tmp_path / "store"
    from genlab.spec import loader as experiment

    exp = experiment.load(path, profile=None)
    done, running, stale, damaged, pending = (r.run_id for r in exp.runs)
    st = Store(store)
    from genlab.executors import Job, experiment_meta
    from genlab.executors.local import run_local

    run_local([Job(exp.runs[0], experiment_meta(exp)), Job(exp.runs[3], experiment_meta(exp))], st)
    (st.run_dir("tiny", damaged) / "final.pt").write_bytes(b"")
    live = st.start(exp.runs[1].config.canonical_json(), "tiny", running, {})  # a live worker at epoch 2
    for e in range(3):
        live.log({"epoch": e})
    dead = st.start(exp.runs[2].config.canonical_json(), "tiny", stale, {})  # one whose host went silent
    dead.log({"epoch": 0})
    dead.lease._stop.set()
    lease = claims.lease_path(store, "tiny", stale)
    lease.write_text(json.dumps({"host": "gone", "pid": 7, "token": "t", "start": 0, "heartbeat": time.time() - 999}))

    r = cli("status", str(path), "--profile", "none", store=store)
    text = flat(r.stdout)
    assert r.exit_code == 0, r.output
    assert "tiny: 5 runs: 1 done, 1 running, 1 stale, 1 damaged, 1 pending" in text
    assert f"{running} running 2/4" in text  # epoch k of n
    assert f"{socket.gethostname()} pid {os.getpid()} (heartbeat 0 s ago)" in text
    assert f"{stale} stale 0/4" in text
    assert "gone pid 7 (heartbeat 999 s ago)" in text or "gone pid 7 (heartbeat 1000 s ago)" in text
    assert f"{damaged} damaged" in text and "final.pt: 0 bytes" in text and f"{pending} pending" in text
    assert done not in text
    by_name = flat(cli("status", "tiny", store=store).stdout)  # without the spec: the runs the store has
    assert "tiny: 4 runs: 1 done, 1 running, 1 stale, 1 damaged" in by_name
    live.close()
    dead.close()


def test_failed_run_keeps_its_traceback_and_is_retried_only_when_asked(write_spec, tmp_path, monkeypatch):
    # the run itself must fail here: without this, the data preflight stops the sweep before any run
    # (a missing data file is one line, once: tests/test_errors.py)
    monkeypatch.setattr("genlab.data.preflight", lambda *a, **k: None)
    path = write_spec(TINY.replace('name = "separable"', 'name = "cifar10"').replace("dim = 3\n", "")
                      .replace("n_test = 64\n", "").replace("[0.01, 0.1]", "[0.01]"))
    store = tmp_path / "store"
    r = cli("run", str(path), "--profile", "none", store=store)
    assert r.exit_code == 2 and "1 of 1 runs failed" in r.output and "--retry-failed" in r.output
    st = Store(store)
    rid = st.run_ids("tiny", done_only=False)[0]
    err = json.loads((st.run_dir("tiny", rid) / "error.json").read_text())
    assert "cifar10" in err["error"] and "Traceback (most recent call last)" in err["traceback"]
    assert err["host"] == socket.gethostname() and st.holder("tiny", rid) is None  # lease released
    s = flat(cli("status", "tiny", store=store).stdout)
    assert "1 failed" in s and f"{rid} failed" in s and "cifar10" in s

    again = cli("run", str(path), "--profile", "none", store=store)
    assert again.exit_code == 0 and "0 to run, 1 failed (--retry-failed redoes them)" in again.output
    retry = cli("run", str(path), "--profile", "none", "--retry-failed", store=store)
    assert retry.exit_code == 2 and "1 to run, 1 failed (retried)" in retry.output and "1 of 1 runs failed" in retry.output
