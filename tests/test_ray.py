"""The Ray executor: a local Ray cluster (2 CPUs) runs a sweep into the store with the same numbers as the local
executor; the store's claims make it skip what another worker finished."""

import pandas as pd
import pytest

from genlab.spec import loader as experiment
from genlab.executors import pending
from genlab.executors.local import run_local
from genlab.store import Store

from conftest import TINY

ray = pytest.importorskip("ray", reason="the ray extra (CI installs it: .ci/run)")


def test_ray_local_cluster_matches_the_local_executor(write_spec, tmp_path):
    from typer.testing import CliRunner

    from genlab.cli import app

    path = write_spec(TINY.replace("[0.01, 0.1]", "[0.01, 0.1, 0.3]"))
    exp = experiment.load(path, profile=None)
    local, remote = Store(tmp_path / "local"), Store(tmp_path / "ray")
    run_local(pending(exp, local), local)
    held = remote.claim("tiny", exp.runs[0].run_id)  # another worker holds one run: its Ray task skips it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        r = CliRunner().invoke(app, ["run", str(path), "--profile", "none", "--store", str(remote.root),
                                     "--cluster", "ray", "--device", "cpu"])
    finally:
        ray.shutdown()
        held.release()
    assert r.exit_code == 0, r.output
    assert "2 runs trained here, 1 skipped" in r.output and f"({exp.runs[0].run_id[:8]}): skipped, running" in r.output
    run_local(pending(exp, remote), remote)  # the other worker's run, finished here
    a, b = (s.history("tiny").sort_values(["run_id", "epoch"]).reset_index(drop=True) for s in (local, remote))
    cols = [c for c in a.columns if c != "epoch_s"]
    pd.testing.assert_frame_equal(a[cols], b[cols])  # the same numbers, bit for bit
    ra, rb = (s.results("tiny").set_index("run_id").drop(columns=["wall_s", "members"]).sort_index()
              for s in (local, remote))  # how a run was trained (alone or stacked, how long), not what it computed
    pd.testing.assert_frame_equal(ra, rb)


def test_cli_cluster_ray_without_ray_says_how_to_install(monkeypatch, tmp_path):
    import sys

    from genlab.executors.ray import run_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(ValueError, match=r"pip install 'genlab\[ray\]'"):
        run_ray([], Store(tmp_path))
