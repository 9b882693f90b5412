"""The submitit executor: jobs run (here with submitit's debug and local stand-ins for Slurm), results are
stored like any run, failures are reported and the rest go on, and the CLI reaches it with --cluster."""

import pytest

from genlab.spec import loader as experiment
from genlab.executors import pending
from genlab.executors.slurm import SlurmOptions, run_slurm
from genlab.store import Store

from conftest import TINY


def test_local_cluster_runs_jobs_in_subprocesses_and_reports_failures(write_spec, tmp_path):
    exp = experiment.load(write_spec(), profile=None)
    broken = experiment.parse({"name": "broken", "data": {"name": "cifar10"}, "model": {"name": "linear"}})
    st = Store(tmp_path / "store")
    reports = []
    jobs = pending(exp, st)[:1] + pending(broken, st)  # cifar10's files are absent: that run fails
    run_slurm(jobs, st, options=SlurmOptions(cluster="local", timeout_min=5), device="cpu", poll_s=0.2,
              on_done=lambda job, res, err: reports.append((job.run.config.experiment, res, err)))
    assert sorted(r[0] for r in reports) == ["broken", "tiny"]
    (_, res, err), = [r for r in reports if r[0] == "tiny"]
    assert err is None and res["status"] == "completed" and st.is_done("tiny", jobs[0].run.run_id)
    (_, res, err), = [r for r in reports if r[0] == "broken"]
    assert res is None and "cifar10" in err  # the task's traceback names the missing data set
    assert not st.is_done("broken", jobs[1].run.run_id) and (st.root / ".submitit").is_dir()


def test_cli_cluster_option_and_bad_cluster(write_spec, tmp_path):
    from typer.testing import CliRunner

    from genlab.cli import app

    path = write_spec(TINY)
    r = CliRunner().invoke(app, ["run", str(path), "--profile", "none", "--store", str(tmp_path), "--cluster", "debug"])
    assert r.exit_code == 0, r.output
    assert len(Store(tmp_path).results("tiny")) == 2
    with pytest.raises(ValueError, match="--cluster must be one of slurm, local, debug"):
        run_slurm([], Store(tmp_path), options=SlurmOptions(cluster="pbs"))
