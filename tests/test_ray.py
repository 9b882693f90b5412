"""The Ray executor: a local Ray cluster (2 CPUs) runs a sweep into the store with the same numbers as the local
executor; the store's claims make it skip what another worker finished."""

import pandas as pd
import pytest

from genlab import spec
from genlab.executors import pending
from genlab.executors.local import run_local
from genlab.store import Store

from conftest import TINY

ray = pytest.importorskip("ray", reason="the ray extra (CI installs it: .ci/run)")


def test_ray_local_cluster_matches_the_local_executor(write_spec, tmp_path):
    from genlab.executors.ray import RayOptions, run_ray

    exp = spec.load(write_spec(TINY.replace("[0.01, 0.1]", "[0.01, 0.1, 0.3]")), profile=None)
    local, remote = Store(tmp_path / "local"), Store(tmp_path / "ray")
    run_local(pending(exp, local), local)
    jobs = pending(exp, remote)
    run_local(jobs[:1], remote)  # one run finished by another worker: the Ray task for it skips it
    reports = []
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run_ray(jobs, remote, options=RayOptions(cpus=1), device="cpu",
                on_done=lambda job, res, err: reports.append((job.run.run_id, res, err)))
    finally:
        ray.shutdown()
    assert not [err for _, _, err in reports if err], reports
    states = sorted(res["status"] for _, res, _ in reports)
    assert states == ["completed", "completed", "skipped"]
    a, b = (s.history("tiny").sort_values(["run_id", "epoch"]).reset_index(drop=True) for s in (local, remote))
    cols = [c for c in a.columns if c != "epoch_s"]
    pd.testing.assert_frame_equal(a[cols], b[cols])  # the same numbers, bit for bit
    ra, rb = (s.results("tiny").set_index("run_id").drop(columns="wall_s").sort_index() for s in (local, remote))
    pd.testing.assert_frame_equal(ra, rb)


def test_cli_cluster_ray_without_ray_says_how_to_install(monkeypatch, tmp_path):
    import sys

    from genlab.executors.ray import run_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(ValueError, match=r"pip install 'genlab\[ray\]'"):
        run_ray([], Store(tmp_path))
