"""What `genlab run` shows while runs train, read off the rows the store's writer receives (genlab.executors).

On a terminal: one rich bar per running run (epochs done, current train/test loss, time left) under a bar of
finished runs. Not a terminal (a log file, a pipe, CI): one plain line per finished run, written as it finishes.
`--quiet`: nothing but failures.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else "-"


def losses(row: dict[str, Any]) -> str:
    """`train 0.123 test 0.456` from an epoch's row (a perturbation row is marked)."""
    mark = f" ({row['event']})" if row.get("event") else ""
    return f"train {_num(row.get('train_loss'))} test {_num(row.get('test_loss'))}{mark}"


def finished_line(i: int, n: int, name: str, run_id: str, result: dict | None, err: str | None,
                  seconds: float) -> str:
    """`[3/12] fig3_4 std=0.1 (a1b2c3d4): completed, 50 epochs, train_loss 0.01 test_loss 0.02 test_error 0.1,
    4.2 s` — one line per finished run for logs."""
    head = f"[{i}/{n}] {name} ({run_id[:8]})"
    if err is not None:
        return f"{head}: FAILED, {err.strip().splitlines()[-1]}"
    if result.get("status") == "skipped":  # another worker has it (genlab.store.claims), or it finished or failed before
        return f"{head}: skipped, {result['state']}{' ' + result['detail'] if result.get('detail') else ''}"
    if result.get("status") == "interrupted":  # Ctrl-C (genlab.interrupt)
        return f"{head}: stopped at epoch {result['epoch']}/{result['epochs']}"
    final = result.get("final", {})
    metrics = " ".join(f"{k} {_num(final.get(k))}" for k in ("train_loss", "test_loss", "test_error") if k in final)
    return f"{head}: {result.get('status')}, {result.get('epochs_run')} epochs, {metrics}, {seconds:.1f} s"


def run_labels(jobs) -> dict[str, str]:
    """run id → `std=0.1 seed=2 fig3_5`: the sweep values that differ between the runs of its experiment first
    (a bar's label is cut at 40 characters: what tells two bars apart must come first), then the experiment."""
    by_exp: dict[str, list] = {}
    for j in jobs:
        by_exp.setdefault(j.run.config.experiment, []).append(j.run.point)
    differ = {e: [k for k in dict.fromkeys(k for p in pts for k in p)
                  if len({repr(p.get(k)) for p in pts}) > 1] for e, pts in by_exp.items()}
    out = {}
    for j in jobs:
        e, point = j.run.config.experiment, j.run.point
        keys = differ[e] or list(point)
        vals = " ".join(f"{k.rsplit('.', 1)[-1]}={point.get(k)}" for k in keys)
        out[j.run.run_id] = f"{vals} {e}" if vals else e
    return out


class PlainLines:
    """One line per finished run on `stream`, flushed at once (so `tail -f` and CI logs see it)."""

    def __init__(self, names: dict[str, str], stream: TextIO | None = None):
        self.names, self.n, self.i = names, len(names), 0
        self.stream = stream or sys.stderr
        self.started: dict[str, float] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def progress(self, run_id: str, row: dict, total: int) -> None:
        self.started.setdefault(run_id, time.perf_counter())

    def done(self, run_id: str, result: dict | None, err: str | None) -> None:
        self.i += 1
        seconds = result.get("wall_s", 0.0) if result else time.perf_counter() - self.started.get(run_id, 0.0)
        print(finished_line(self.i, self.n, self.names[run_id], run_id, result, err, seconds), file=self.stream,
              flush=True)


class Quiet(PlainLines):
    """Nothing while running (failures are still reported by the caller)."""

    def done(self, run_id: str, result: dict | None, err: str | None) -> None:
        self.i += 1


class LiveBars:
    """Rich bars: the finished-run count with elapsed time and time left, and one bar per running run."""

    def __init__(self, names: dict[str, str], console: Console):
        self.names = names
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                            TextColumn("{task.fields[losses]}"), TimeElapsedColumn(), TextColumn("eta"),
                            TimeRemainingColumn(), console=console, transient=False)
        self.tasks: dict[str, Any] = {}

    def __enter__(self):
        self.bar.__enter__()
        self.overall = self.bar.add_task("runs", total=len(self.names), losses="")
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def progress(self, run_id: str, row: dict, total: int) -> None:
        if run_id not in self.tasks:
            self.tasks[run_id] = self.bar.add_task(f"  {self.names[run_id][:40]}", total=total, losses="")
        self.bar.update(self.tasks[run_id], completed=row.get("epoch", 0), losses=losses(row))

    def done(self, run_id: str, result: dict | None, err: str | None) -> None:
        if (task := self.tasks.pop(run_id, None)) is not None:
            self.bar.remove_task(task)
        self.bar.advance(self.overall)


def make_display(names: dict[str, str], console: Console, quiet: bool = False):
    """The display for this output: Quiet, LiveBars on a terminal, PlainLines otherwise."""
    if quiet:
        return Quiet(names)
    return LiveBars(names, console) if console.is_terminal else PlainLines(names, console.file)
