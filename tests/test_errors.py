"""Issue 13: one error path. Full or read-only stores, missing data files, bad specs and failing runs each give
one red line naming the file and what to do — never a traceback per run — and the rest of the work goes on
where it can. (Damaged store files are genlab.store.integrity's: skipped with a warning, tests/test_integrity.py.)"""

from __future__ import annotations

import errno
import sys
import urllib.error
from pathlib import Path

import pytest
import torch

from genlab.cli import main
from genlab.store import Store

from conftest import TINY


def run_cli(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    """`genlab ARGS` through `main` (the one error path): (exit status, stderr, stdout)."""
    monkeypatch.setattr(sys, "argv", ["genlab", *map(str, args)])
    monkeypatch.delenv("GENLAB_DEBUG", raising=False)
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.err, out.out


def one_error_line(err: str, *needles: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store with tiny's two finished runs (trained once for this module)."""
    root = tmp_path_factory.mktemp("trained")
    spec = root / "tiny.toml"
    spec.write_text(TINY)
    store = root / "runs"
    from typer.testing import CliRunner

    from genlab.cli import app

    r = CliRunner().invoke(app, ["run", str(spec), "--profile", "none", "--store", str(store)])
    assert r.exit_code == 0, r.output
    return spec, store


def test_a_full_disk_stops_the_sweep_with_one_line(trained, tmp_path, capsys, monkeypatch):
    spec, _ = trained
    import genlab.store.store

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(genlab.store.store, "atomic_write", full)  # the Store's own writes: config, meta
    code, err, _ = run_cli(capsys, monkeypatch, "run", spec, "--profile", "none", "--store", tmp_path / "s")
    assert code == 2
    one_error_line(err, "the disk is full", "GENLAB_DEBUG=1")
    assert err.count("failed") == 0  # not one failure per run


def test_a_read_only_store_fails_once_before_any_run(trained, tmp_path, capsys, monkeypatch):
    spec, _ = trained
    import tempfile

    def denied(*a, **k):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    code, err, _ = run_cli(capsys, monkeypatch, "run", spec, "--profile", "none", "--store", tmp_path / "ro")
    assert code == 2
    one_error_line(err, str(tmp_path / "ro"), "not writable", "--store")
    assert not list((tmp_path / "ro").glob("tiny/*"))


def test_a_failed_run_writes_its_error_and_the_sweep_goes_on(trained, tmp_path, capsys, monkeypatch):
    spec, _ = trained
    import genlab.train.loop as loop

    real = loop.train

    def flaky(config, **kw):
        if config.init.options["std"] == 0.01:
            raise RuntimeError("boom in this run")
        return real(config, **kw)

    monkeypatch.setattr(loop, "train", flaky)
    root = tmp_path / "s"
    code, err, _ = run_cli(capsys, monkeypatch, "run", spec, "--profile", "none", "--store", root,
                           "--ensemble", "off")
    assert code == 2
    one_error_line(err, "1 of 2 runs failed", "error.json")
    assert "RuntimeError: boom in this run" in err and "Traceback" not in err
    st = Store(root)
    assert len(st.run_ids("tiny")) == 1  # the other run finished
    failed = [d for d in (root / "tiny").iterdir() if not d.name.startswith(".") and not (d / "DONE").exists()]
    assert len(failed) == 1 and "RuntimeError: boom in this run" in (failed[0] / "error.json").read_text()


def test_a_failed_ensemble_writes_its_error_into_every_member(trained, tmp_path, capsys, monkeypatch):
    spec, _ = trained
    import genlab.train.ensemble as ens

    def broken(*a, **k):
        raise RuntimeError("boom in the ensemble")

    monkeypatch.setattr(ens, "train_ensemble", broken)
    root = tmp_path / "s"
    code, err, _ = run_cli(capsys, monkeypatch, "run", spec, "--profile", "none", "--store", root,
                           "--ensemble", "2")
    assert code == 2
    one_error_line(err, "2 of 2 runs failed")
    folders = [d for d in (root / "tiny").iterdir() if not d.name.startswith(".")]
    assert len(folders) == 2 and all("boom in the ensemble" in (d / "error.json").read_text() for d in folders)


def fill_disk_at_result_json(monkeypatch) -> None:
    """Every run trains, then writing its result.json fails as on a full disk."""
    import genlab.store.runfiles

    real = genlab.store.runfiles.write_json

    def full(path, obj):
        if path.name == "result.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, obj)

    monkeypatch.setattr(genlab.store.runfiles, "write_json", full)


def test_a_full_disk_in_an_ensemble_stops_the_sweep_with_one_line(trained, tmp_path, capsys, monkeypatch):
    spec, _ = trained
    fill_disk_at_result_json(monkeypatch)
    code, err, _ = run_cli(capsys, monkeypatch, "run", spec, "--profile", "none", "--store", tmp_path / "s",
                           "--ensemble", "2")
    assert code == 2
    one_error_line(err, "the disk is full")
    assert err.count("failed") == 0


def test_a_full_disk_in_a_pool_worker_stops_the_sweep_with_one_line(trained, tmp_path, capsys, monkeypatch):
    """`-j 2`: a worker whose store refuses a write answers with the StoreError; the pool cancels what is queued
    and stops the sweep with one line. (The workers are threads here, so the full disk reaches them.)"""
    from concurrent.futures import ThreadPoolExecutor

    import genlab.executors.pool as pool

    spec, _ = trained

    def threads(n, mp_context, initializer, initargs):  # _init_worker's progress queue, without the process
        return ThreadPoolExecutor(n, initializer=lambda: setattr(pool, "_progress_q", initargs[2]))

    fill_disk_at_result_json(monkeypatch)
    monkeypatch.setattr(pool, "ProcessPoolExecutor", threads)
    code, err, _ = run_cli(capsys, monkeypatch, "run", spec, "--profile", "none", "--store", tmp_path / "s",
                           "-j", "2", "--ensemble", "off")
    assert code == 2
    one_error_line(err, "the disk is full", "cannot write run")
    assert err.count("failed") == 0  # not one failure per run


def test_a_missing_data_file_stops_the_sweep_once_before_the_first_run(tmp_path, capsys, monkeypatch):
    from genlab.data import files

    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    calls = []

    def offline(url, dest):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(files, "download", offline)
    spec = tmp_path / "m.toml"
    spec.write_text(TINY.replace('name = "separable"\ndim = 3\nn_train = 64\nn_test = 64',
                                 'name = "mnist"\nn_train = 100').replace("data.n_train = 32", ""))
    code, err, _ = run_cli(capsys, monkeypatch, "run", spec, "--profile", "none", "--store", tmp_path / "s")
    assert code == 2
    one_error_line(err, "mnist: data file train-images-idx3-ubyte.gz is missing", "Download")
    assert len(calls) == 1  # stopped at the first missing file, once for the sweep
    assert not (tmp_path / "s" / "tiny").exists()  # no empty run folders


def test_fetches_fail_fast(monkeypatch, tmp_path):
    from genlab.data import files

    seen = {}

    def urlopen(url, timeout=None):
        seen["timeout"] = timeout
        raise TimeoutError("timed out")

    monkeypatch.setattr(files.urllib.request, "urlopen", urlopen)
    with pytest.raises(files.DataFileError, match="TimeoutError"):
        files.fetch_file("mnist", files.sources("mnist")[0], tmp_path)
    assert seen["timeout"] <= 10


def test_dry_run_lists_every_problem(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "bad.toml"
    spec.write_text(TINY.replace('name = "tiny"', 'name = ".."').replace("lr = 0.1", "lr = inf")
                    .replace('name = "curves"', 'name = "curvez"'))
    code, err, _ = run_cli(capsys, monkeypatch, "run", spec, "--dry-run", "--store", tmp_path / "s")
    assert code == 2
    problems = [ln for ln in err.splitlines() if ln.startswith("problem:")]
    assert len(problems) == 3 and all(str(spec) in p for p in problems), err
    assert {": name:", ": optim.lr:", ": figures[0].name:"} <= {f for f in (": name:", ": optim.lr:",
                                                                       ": figures[0].name:") if f in err}
    one_error_line(err, "3 problems in 1 spec; nothing was run")


@pytest.mark.parametrize("args, needle", [
    (("results", ".."), "experiment name '..' is not allowed"),
    (("results", "nothing"), "no experiment 'nothing'"),
    (("run", "missing.toml"), "missing.toml: no such spec file"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch, args, needle):
    (tmp_path / "s" / "x").mkdir(parents=True)
    code, err, _ = run_cli(capsys, monkeypatch, *args, "--store", tmp_path / "s")
    assert code == 2
    one_error_line(err, needle)


def test_non_utf8_spec_names_the_file(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "latin1.toml"
    spec.write_bytes(TINY.encode().replace(b"tiny", b"t\xe9ny", 1))
    code, err, _ = run_cli(capsys, monkeypatch, "run", spec, "--store", tmp_path / "s")
    assert code == 2
    one_error_line(err, str(spec), "not UTF-8", "offset")


def test_diverged_outputs_score_nan_not_argmax():
    """Outside the training loop: the 0-1 loss and per-class accuracy of non-finite outputs are NaN."""
    from genlab.data import Dataset
    from genlab.data.labels import per_class_accuracy
    from genlab.measures.objective import error_rate

    out = torch.tensor([[float("nan"), 1.0], [2.0, 1.0], [float("inf"), 0.0]])
    err = error_rate(out, torch.tensor([0, 1, 0]))
    assert torch.isnan(err[0]) and err[1] == 1.0 and torch.isnan(err[2])
    x = torch.randn(6, 2)
    data = Dataset("d", x, torch.tensor([0, 1, 0, 1, 0, 1]), x, torch.tensor([0, 1, 0, 1, 0, 1]), num_classes=2)
    net = torch.nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.fill_(float("nan"))
    assert torch.isnan(per_class_accuracy(net, data, data.x_test, data.y_test)).all()


def test_an_unreadable_or_foreign_folder_does_not_stop_ls(tmp_path, capsys, monkeypatch):
    root = tmp_path / "s"
    for name in ("broken", "tiny", "has space"):
        (root / name).mkdir(parents=True)
    real = Path.iterdir

    def iterdir(self):
        if self.name == "broken":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    code, err, out = run_cli(capsys, monkeypatch, "ls", "--store", root)
    text = " ".join(out.split())
    assert code == 0, err
    assert "tiny" in text and "broken" in text and "has space" in text and text.count("?") >= 4  # both marked
