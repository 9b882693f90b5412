"""The store at a glance and kept tidy: `genlab status` with no target (every experiment, every state, epoch k
of n, ETA, last loss), `genlab tag` (tags and notes beside a run, outside its manifest) and `genlab rm` (dry
run by default, never a run being trained)."""

import json
import time

import pytest
from typer.testing import CliRunner

from genlab import claims, experiment
from genlab.cli import app
from genlab.executors import Job, experiment_meta
from genlab.store import Store

from conftest import TINY

runner = CliRunner()
WIDE = TINY.replace("[0.01, 0.1]", "[0.01, 0.1, 0.2, 0.3, 0.4, 0.5]")


def cli(*args, store):
    return runner.invoke(app, [*args, "--store", str(store)])


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


@pytest.fixture
def lab(write_spec, tmp_path):
    """A store with one run in each state: done, running (epoch 2 of 4), stale, damaged, failed, pending."""
    from genlab.executors.local import run_local

    path = write_spec(WIDE)
    exp = experiment.load(path, profile=None)
    st = Store(tmp_path / "store")
    ids = dict(zip(("done", "running", "stale", "damaged", "failed", "pending"), (r.run_id for r in exp.runs)))
    run_local([Job(exp.runs[i], experiment_meta(exp)) for i in (0, 3)], st)
    (st.run_dir("tiny", ids["damaged"]) / "final.pt").write_bytes(b"")
    live = st.start(exp.runs[1].config.canonical_json(), "tiny", ids["running"], {})
    for e in range(3):
        live.log({"epoch": e, "train_loss": 0.5 - 0.1 * e, "test_loss": 0.7, "epoch_s": 2.0})
    dead = st.start(exp.runs[2].config.canonical_json(), "tiny", ids["stale"], {})
    dead.log({"epoch": 0})
    dead.lease._stop.set()
    claims.lease_path(st.root, "tiny", ids["stale"]).write_text(json.dumps(
        {"host": "gone", "pid": 7, "token": "t", "start": 0, "heartbeat": time.time() - 999}))
    bad = st.start(exp.runs[4].config.canonical_json(), "tiny", ids["failed"], {})
    bad.log({"epoch": 0})
    bad.fail(RuntimeError("boom"))
    half = st.start(exp.runs[5].config.canonical_json(), "tiny", ids["pending"], {})
    half.log({"epoch": 0})
    half.log({"epoch": 1})
    half.close()  # killed after epoch 1: no lease, no DONE
    yield st, ids, path
    live.close()
    dead.close()


def test_status_without_target_summarizes_every_experiment(lab, monkeypatch):
    st, ids, _ = lab
    narrow = flat(cli("status", store=st.root).stdout)  # 80 columns: ids and states whole
    assert f"{ids['running']} running 2/4" in narrow and f"{ids['failed']} failed 0/4" in narrow
    monkeypatch.setenv("COLUMNS", "200")
    r = cli("status", store=st.root)
    assert r.exit_code == 0, r.output
    text = flat(r.stdout)
    assert "tiny 6 1 1 1 1 1 1" in text  # runs, then done running stale failed damaged pending
    # running: epoch 2 of 4, ETA = 2 s per epoch × 2 epochs left, last losses
    assert f"{ids['running']} running 2/4 4s 0.3 0.7 last row" in text
    assert f"{ids['stale']} stale 0/4" in text and "gone pid 7" in text
    assert f"{ids['failed']} failed 0/4" in text and "RuntimeError: boom" in text
    assert f"{ids['damaged']} damaged" in text and "final.pt: 0 bytes" in text
    assert f"{ids['pending']} pending 1/4" in text and "interrupted after epoch 1" in text
    assert ids["done"] not in text
    assert ids["done"] in flat(cli("status", "--all", store=st.root).stdout)
    empty = cli("status", store=st.root / "nothing")
    assert empty.exit_code == 0 and "no experiments" in empty.stdout


def test_status_watch_needs_no_target(lab):
    st, _, _ = lab
    r = cli("status", "tiny", "--watch", store=st.root)
    assert r.exit_code == 2 and "--watch" in r.output
