"""Claims: an exclusive lease per run; a fresh lease is respected, a stale one (old heartbeat, or a dead holder on
this host) is taken over by exactly one taker; heartbeats renew it; a taken-over holder stops writing."""

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from genlab.store import claims
from genlab.store.claims import Busy, LeaseLost
from genlab.store import FILE_MODE, Store


def _plant(path, host, pid, heartbeat, token="other"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "token": token, "start": heartbeat, "heartbeat": heartbeat}))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_claim_is_exclusive_and_released(tmp_path):
    st = Store(tmp_path)
    with st.claim("e", "r1") as lease:
        held = st.holder("e", "r1")
        assert (held.host, held.pid, held.token) == (socket.gethostname(), os.getpid(), lease.token)
        with pytest.raises(Busy, match=f"{socket.gethostname()} pid {os.getpid()}"):
            st.claim("e", "r1")
        st.claim("e", "r2").release()  # other runs are free
    assert st.holder("e", "r1") is None
    st.claim("e", "r1").release()  # free again after release


@pytest.mark.parametrize("case, stale", [("fresh other host", False), ("old heartbeat", True),
                                         ("dead pid on this host", True), ("live pid on this host", False),
                                         ("unreadable, fresh", False), ("unreadable, old", True)])
def test_stale_lease_is_taken_over_and_fresh_one_is_not(tmp_path, case, stale):
    st = Store(tmp_path, lease_timeout=60)
    path = claims.lease_path(tmp_path, "e", "r")
    now, me = time.time(), socket.gethostname()
    if case == "fresh other host":
        _plant(path, "elsewhere", 123, now - 30)
    elif case == "old heartbeat":
        _plant(path, "elsewhere", 123, now - 61)
    elif case == "dead pid on this host":
        _plant(path, me, _dead_pid(), now)  # killed a second ago: no need to wait out the timeout
    elif case == "live pid on this host":
        _plant(path, me, os.getppid(), now - 59)
    else:
        path.parent.mkdir(parents=True)
        path.write_text("{tor")
        if case == "unreadable, old":
            os.utime(path, (now - 61, now - 61))
    before = path.read_text()
    if stale:
        with st.claim("e", "r") as lease:
            assert json.loads(path.read_text())["token"] == lease.token
    else:
        with pytest.raises(Busy):
            st.claim("e", "r")
        assert path.read_text() == before  # left as it was


def test_many_takers_of_one_stale_lease_exactly_one_wins(tmp_path):
    path = claims.lease_path(tmp_path, "e", "r")
    for trial in range(5):
        _plant(path, "elsewhere", 1, time.time() - 1000)
        won, barrier = [], threading.Barrier(8)

        def take():
            barrier.wait()
            try:
                won.append(claims.acquire(path, timeout=60, heartbeat=False))
            except Busy:
                pass

        threads = [threading.Thread(target=take) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1, (trial, len(won))
        assert json.loads(path.read_text())["token"] == won[0].token
        won[0].release()
        assert not path.exists() and not list(path.parent.glob("*.takeover"))


def test_heartbeat_renews_and_a_taken_over_holder_stops_writing(tmp_path):
    st = Store(tmp_path, lease_timeout=0.5)  # renewals every 0.05 s
    writer = st.start('{"a": 1}', "e", "r", {})
    path = claims.lease_path(tmp_path, "e", "r")
    first = json.loads(path.read_text())["heartbeat"]
    time.sleep(0.3)
    assert json.loads(path.read_text())["heartbeat"] > first  # renewed while we work
    writer.log({"epoch": 0})
    writer.lease._stop.set()  # this worker freezes (no heartbeats) ...
    writer.lease._thread.join()
    time.sleep(0.6)
    taker = st.claim("e", "r")  # ... so after the timeout another takes the run over
    assert not writer.lease.renew() and writer.lease.lost
    with pytest.raises(LeaseLost, match="taken over"):
        writer.log({"epoch": 1})
    with pytest.raises(LeaseLost):
        writer.finish({})
    assert not (st.run_dir("e", "r") / "DONE").exists()
    writer.fail(RuntimeError("boom"))  # a lost holder writes no error.json into the taker's run ...
    assert not (st.run_dir("e", "r") / "error.json").exists()  # ... and releasing leaves the taker's lease alone
    assert json.loads(path.read_text())["token"] == taker.token
    taker.release()


def test_a_run_held_elsewhere_is_not_wiped(tmp_path):
    st = Store(tmp_path)
    w = st.start('{"a": 1}', "e", "r", {})
    w.log({"epoch": 0})
    with pytest.raises(Busy):
        st.start('{"a": 1}', "e", "r", {})  # another worker starting the same run: refused, folder kept
    assert (st.run_dir("e", "r") / "metrics.jsonl").read_text().count("\n") == 1
    w.close()


def test_every_file_of_a_run_has_one_mode(tmp_path, write_spec):
    from genlab.spec import loader as experiment
    from genlab.executors import pending
    from genlab.executors.local import run_local

    exp = experiment.load(write_spec(), profile=None)
    st = Store(tmp_path)
    run_local(pending(exp, st), st)
    files = [p for p in st.root.rglob("*") if p.is_file()]
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
    assert {"metrics.jsonl", "config.json", "final.pt", "DONE"} <= set(modes)
    assert set(modes.values()) == {FILE_MODE}, modes


def test_a_run_held_elsewhere_is_checked_again_when_the_others_are_done(tmp_path, write_spec):
    from genlab.spec import loader as experiment
    from genlab.executors import pending
    from genlab.executors.local import run_local

    exp = experiment.load(write_spec(), profile=None)
    st = Store(tmp_path)
    first, second = exp.runs
    other = st.claim("tiny", first.run_id, heartbeat=False)  # another worker has the first run ...
    reports = []

    def on_done(job, res, err):
        reports.append((job.run.run_id, res["status"]))
        if job.run.run_id == second.run_id:
            other.release()  # ... and lets go of it (finished elsewhere would be skipped; died: taken over)

    run_local(pending(exp, st), st, on_done=on_done, ensemble=(1, False))
    assert reports == [(second.run_id, "completed"), (first.run_id, "completed")]
    assert st.is_done("tiny", first.run_id)
