"""Progress while running: read off the rows the store receives; rich bars on a terminal, a plain line per
finished run elsewhere, nothing with --quiet."""

import io
import json

from rich.console import Console

from genlab.spec import loader as experiment
from genlab.cli.progress import LiveBars, PlainLines, Quiet, finished_line, losses, make_display
from genlab.executors import pending
from genlab.executors.local import run_local
from genlab.store import Store

RESULT = {"status": "completed", "epochs_run": 4, "wall_s": 1.25,
          "final": {"train_loss": 0.125, "test_loss": 0.25, "test_error": 0.5}}


def test_progress_rows_are_the_rows_the_store_receives(write_spec, tmp_path):
    exp, store = experiment.load(write_spec(), None), Store(tmp_path)
    seen: list[tuple[str, dict, int]] = []
    run_local(pending(exp, store), store, progress=lambda rid, row, n: seen.append((rid, row, n)))
    for rid in exp.run_ids:
        logged = [json.loads(x) for x in (store.run_dir("tiny", rid) / "metrics.jsonl").read_text().splitlines()]
        assert [row for r, row, _ in seen if r == rid] == logged and all(n == 4 for r, _, n in seen if r == rid)


def test_lines_and_loss_text():
    assert losses({"train_loss": 0.123456, "test_loss": None}) == "train 0.1235 test -"
    assert losses({"train_loss": 1.0, "test_loss": 2.0, "event": "perturb"}) == "train 1 test 2 (perturb)"
    line = finished_line(3, 12, "tiny std=0.1", "0123456789ab", RESULT, None, 1.25)
    assert line == "[3/12] tiny std=0.1 (01234567): completed, 4 epochs, train_loss 0.125 test_loss 0.25 " \
                   "test_error 0.5, 1.2 s"
    failed = finished_line(1, 2, "tiny", "0123456789ab", None, "Traceback ...\nValueError: bad lr\n", 0.5)
    assert failed == "[1/2] tiny (01234567): FAILED, ValueError: bad lr"


def test_plain_lines_one_per_finished_run_as_it_finishes():
    buf = io.StringIO()
    show = PlainLines({"a" * 12: "tiny x=1", "b" * 12: "tiny x=2"}, buf)
    show.progress("a" * 12, {"epoch": 1, "train_loss": 0.5}, 4)
    assert buf.getvalue() == ""  # nothing per epoch
    show.done("a" * 12, RESULT, None)
    assert buf.getvalue().splitlines() == ["[1/2] tiny x=1 (aaaaaaaa): completed, 4 epochs, train_loss 0.125 "
                                           "test_loss 0.25 test_error 0.5, 1.2 s"]


def test_live_bars_show_losses_and_time_left():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=150)
    with LiveBars({"r" * 12: "tiny x=1"}, console) as show:
        show.progress("r" * 12, {"epoch": 2, "train_loss": 0.5, "test_loss": 0.75}, 4)
        show.bar.refresh()
        text = buf.getvalue()
        show.done("r" * 12, RESULT, None)
    assert "tiny x=1" in text and "2/4" in text and "train 0.5 test 0.75" in text and "eta" in text


def test_display_for_the_output():
    names = {"r": "x"}
    assert isinstance(make_display(names, Console(file=io.StringIO()), quiet=True), Quiet)
    assert isinstance(make_display(names, Console(file=io.StringIO(), force_terminal=True)), LiveBars)
    assert type(make_display(names, Console(file=io.StringIO()))) is PlainLines


def test_summary_table_in_a_log_keeps_each_sweep_point_on_one_line(write_spec, tmp_path):
    """stderr not a terminal (CI logs, files): the summary takes the width it needs, not 80 columns, so a long
    sweep point is not folded into a column two characters wide."""
    from typer.testing import CliRunner

    from genlab.cli import app

    spec = write_spec(conftest_tiny().replace('"init.std" = [0.01, 0.1]',
                                              '"init.std" = [0.01, 0.1]\n"optim.lr" = [0.1234567]'))
    r = CliRunner().invoke(app, ["run", str(spec), "--profile", "small", "--store", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    rows = [ln for ln in r.output.splitlines() if "lr=0.1234567" in ln and "│" in ln]
    assert len(rows) == 2 and all("std=0.01" in ln or "std=0.1" in ln for ln in rows)
    assert max(len(ln) for ln in r.output.splitlines()) > 80  # it did take more than 80 columns


def conftest_tiny() -> str:
    from conftest import TINY

    return TINY
