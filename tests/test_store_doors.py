"""Issue 24: the doors out of the store. `genlab sql` reads the store's tables and nothing else; every file genlab
writes goes through one check (no symlink followed, nothing outside the store) and is written whole or not at
all (a full disk leaves no 0-byte file, and the message names the path)."""

from __future__ import annotations

import errno
import re
import json
import os
from pathlib import Path

import pytest

from test_errors import one_error_line, run_cli, trained  # noqa: F401 (the fixture)


@pytest.mark.parametrize("query,refused", [
    ("COPY (SELECT 42) TO '{out}/x.csv'", "COPY"),
    ("ATTACH '{out}/x.duckdb' AS x", "ATTACH"),
    ("INSTALL httpfs", "LOAD"),  # DuckDB's parser names INSTALL a LOAD statement
    ("LOAD httpfs", "LOAD"),
    ("SET enable_external_access = true", "SET"),
    ("SELECT 1; COPY results TO '{out}/x.csv'", "COPY"),
    ("SELECT * FROM read_text('/etc/hostname')", "file system operations are disabled"),
    ("SELECT * FROM read_csv('{out}/../secret.csv')", "file system operations are disabled"),
    ("SELECT * FROM glob('/*')", "file system operations are disabled"),
])
def test_sql_opens_only_onto_the_store(trained, tmp_path, capsys, monkeypatch, query, refused):  # noqa: F811
    _, store = trained
    (tmp_path / "secret.csv").write_text("a\n1\n")
    code, err, out = run_cli(capsys, monkeypatch, "sql", "tiny", query.format(out=tmp_path / "o"),
                             "--store", store)
    assert code == 2 and "42" not in out and "secret" not in out
    one_error_line(err, refused)
    assert not (tmp_path / "o").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["secret.csv"]


def test_sql_still_answers_selects_over_results_and_history(trained, tmp_path, capsys, monkeypatch):  # noqa: F811
    _, store = trained
    code, err, out = run_cli(capsys, monkeypatch, "sql", "tiny", 'SELECT count(*) AS n, max(h.epoch) AS e FROM '
                             'results r JOIN history h USING (run_id)', "--store", store, "--format", "json")
    assert code == 0, err
    assert json.loads(out) == [{"n": 10, "e": 4}]  # 2 runs × epochs 0..4


def _link_to(tmp_path: Path) -> tuple[Path, Path]:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "out" / "link.html"
    link.parent.mkdir()
    link.symlink_to(victim)
    return link, victim


@pytest.mark.parametrize("cmd", ["report", "results", "sql"])
def test_outputs_never_follow_a_symlink(trained, tmp_path, capsys, monkeypatch, cmd):  # noqa: F811
    spec, store = trained
    link, victim = _link_to(tmp_path)
    args = {"report": ["report", spec, "--profile", "none", "--out", link],
            "results": ["results", "tiny", "--format", "csv", "-o", link],
            "sql": ["sql", "tiny", "SELECT 1 AS one", "--format", "csv", "-o", link]}[cmd]
    code, err, _ = run_cli(capsys, monkeypatch, *args, "--store", store)
    assert code == 2
    one_error_line(err, str(link), "symlink")
    assert victim.read_text() == "precious" and link.is_symlink()


def _fill_disk(monkeypatch):
    """Writing any file under the outputs' folder fails as a full disk fails: the file is created, then write()
    raises ENOSPC (with no file name, as the OS gives it)."""
    real_text, real_bytes = Path.write_text, Path.write_bytes

    def full(self, *a, **k):
        if "outputs" in str(self):
            open(self, "wb").close()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return (real_text if isinstance(a[0], str) else real_bytes)(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full)
    monkeypatch.setattr(Path, "write_bytes", full)


@pytest.mark.parametrize("cmd", ["report", "results"])
def test_a_full_disk_names_the_output_and_leaves_no_empty_file(trained, tmp_path, capsys, monkeypatch, cmd):  # noqa: F811
    spec, store = trained
    target = tmp_path / "outputs" / "r.out"
    args = {"report": ["report", spec, "--profile", "none", "--out", target],
            "results": ["results", "tiny", "--format", "csv", "-o", target]}[cmd]
    _fill_disk(monkeypatch)
    code, err, _ = run_cli(capsys, monkeypatch, *args, "--store", store)
    assert code == 2
    one_error_line(err, str(target), "the disk is full")
    assert not target.exists() and not list(target.parent.glob(".*tmp*"))  # no 0-byte output, no temp left


def test_leases_under_a_symlinked_leases_folder_are_refused(trained, tmp_path, capsys, monkeypatch):  # noqa: F811
    spec, _ = trained
    store, outside = tmp_path / "s", tmp_path / "outside"
    (store / "tiny").mkdir(parents=True)
    outside.mkdir()
    (store / "tiny" / ".leases").symlink_to(outside)
    code, err, _ = run_cli(capsys, monkeypatch, "run", spec, "--profile", "none", "--store", store)
    assert code != 0 and list(outside.iterdir()) == []
    assert "outside" in err and "Traceback" not in err


def test_a_write_error_in_the_store_names_the_file(tmp_path, monkeypatch):
    from genlab.store import files

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "write", full, raising=True)
    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode: _Full(fd))
    with pytest.raises(OSError) as e:
        files.write_json(tmp_path / "result.json", {"a": 1})
    assert e.value.filename == str(tmp_path / "result.json") and e.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


class _Full:
    def __init__(self, fd):
        self.fd = fd

    def __enter__(self):
        return self

    def __exit__(self, *a):
        os.close(self.fd)

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# ---- store files that are not what they should be: the message names the file and the cause -----------------

def _copy(store: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(store, tmp_path / "copy"))


def _restamp(d: Path) -> None:
    from genlab.store.runfiles import write_done

    write_done(d)  # as a careless tool would: the manifest agrees, the content is wrong


@pytest.mark.parametrize("content,cause", [(b"[]", "holds list \\[\\], not a JSON object"),
                                           (b'{"status": "completed", "measures": [1]}', "measures holds list, not an object"),
                                           (b'{"status": "completed"\xff}', "not UTF-8 text \\(byte 0xff")])
@pytest.mark.parametrize("cmd", ["results", "report", "figures", "measure"])
def test_a_malformed_result_json_is_named(trained, tmp_path, capsys, monkeypatch, cmd, content, cause):  # noqa: F811
    spec, store = trained
    store = _copy(store, tmp_path)
    d = sorted(p for p in (store / "tiny").iterdir() if not p.name.startswith("."))[0]
    (d / "result.json").write_bytes(content)
    _restamp(d)
    args = {"results": ["results", "tiny"], "report": ["report", spec, "--profile", "none", "--out", tmp_path / "r.html"],
            "figures": ["figures", spec, "--profile", "none", "--out", tmp_path / "f"],
            "measure": ["measure", "tiny", "-m", "num_params"]}[cmd]
    code, err, _ = run_cli(capsys, monkeypatch, *args, "--store", store)
    assert "internal error" not in err and "Traceback" not in err
    assert code != 0
    assert re.search(re.escape(str(d / "result.json")) + ": " + cause, " ".join(err.split())), err


def test_invalid_utf8_in_metrics_names_the_file_and_line(trained, tmp_path, capsys, monkeypatch):  # noqa: F811
    spec, store = trained
    store = _copy(store, tmp_path)
    d = sorted(p for p in (store / "tiny").iterdir() if not p.name.startswith("."))[0]
    m = d / "metrics.jsonl"
    lines = m.read_bytes().split(b"\n")
    lines[1] = lines[1][:-1] + b'\xfe}'
    m.write_bytes(b"\n".join(lines))
    _restamp(d)
    code, err, _ = run_cli(capsys, monkeypatch, "results", "tiny", "--history", "--store", store)
    assert code == 2
    one_error_line(err, f"{m}: line 2 is not UTF-8 text (byte 0xfe)")


def test_a_stray_folder_is_listed_as_such_not_as_a_pending_run(trained, tmp_path, capsys, monkeypatch):  # noqa: F811
    _, store = trained
    store = _copy(store, tmp_path)
    (store / "tiny" / "my-notes").mkdir()
    code, err, out = run_cli(capsys, monkeypatch, "status", "tiny", "--store", store)
    assert code == 0, err
    text = " ".join(out.split())
    assert "tiny: 2 runs: 2 done" in text and "pending" not in text
    assert f"1 stray folder in {store / 'tiny'}, not runs (ignored): my-notes" in text
