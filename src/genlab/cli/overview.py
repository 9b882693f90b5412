"""`genlab status` with no target: the whole store at a glance, read from its files (no torch, no pandas).

    per experiment   runs: done / running / stale / failed / damaged / pending (counts)
    per run not done state, epoch k of n, ETA (running: mean seconds of its last epochs × epochs left), last
                     train and test loss, age of its last row, and the detail (holder, error, damage, resume)

The store holds the runs it has seen: runs of a spec never started are not listed (`genlab status SPEC` counts
them as pending). `--watch` redraws it every few seconds until Ctrl-C.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from genlab.store.claims import LEASES
from genlab.store import RESUME, Store

KINDS = ("done", "running", "stale", "failed", "damaged", "pending")
RECENT = 5  # rows whose epoch_s give the ETA


@dataclass
class RunLine:
    experiment: str
    run_id: str
    kind: str
    epoch: int | None  # epochs logged (the last row's epoch)
    epochs: int | None  # train.epochs from config.json
    eta_s: float | None  # running only
    train_loss: float | None
    test_loss: float | None
    age_s: float | None  # seconds since the last row was written
    detail: str


def last_rows(folder: Path, n: int = RECENT) -> list[dict[str, Any]]:
    """The last `n` complete rows of a run's metrics.jsonl ([] if none)."""
    try:
        with open(folder / "metrics.jsonl", "rb") as f:
            f.seek(max(f.seek(0, os.SEEK_END) - 65536, 0))
            lines = f.read().split(b"\n")[:-1]  # after the last newline: maybe half-written
        return [json.loads(x) for x in lines[-n:] if x.strip()]
    except (OSError, ValueError):
        return []


def _epochs(folder: Path) -> int | None:
    try:
        return int(json.loads((folder / "config.json").read_text())["train"]["epochs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def eta(rows: list[dict[str, Any]], epoch: int | None, epochs: int | None) -> float | None:
    """Seconds left: the mean `epoch_s` of the recent rows × epochs left (None without timed rows)."""
    times = [r["epoch_s"] for r in rows if isinstance(r.get("epoch_s"), (int, float)) and not r.get("event")]
    if not times or epoch is None or epochs is None:
        return None
    return sum(times) / len(times) * max(epochs - epoch, 0)


def run_line(st: Store, experiment: str, run_id: str, state=None) -> RunLine:
    """What `status` shows of one run (`state`: its RunState, if already read)."""
    s = state or st.state(experiment, run_id)
    folder = st.run_dir(experiment, run_id)
    if s.kind == "done":
        return RunLine(experiment, run_id, "done", None, None, None, None, None, None, "")
    rows, n = last_rows(folder), _epochs(folder)
    last = next((r for r in reversed(rows) if not r.get("event")), rows[-1] if rows else {})
    try:
        age = time.time() - (folder / "metrics.jsonl").stat().st_mtime
    except OSError:
        age = None
    detail = s.detail
    if s.kind == "pending" and (folder / RESUME).exists():
        detail = f"interrupted; resumes from its snapshot{' (' + detail + ')' if detail else ''}"
    return RunLine(experiment, run_id, s.kind, s.epoch, n, eta(rows, s.epoch, n) if s.kind == "running" else None,
                   last.get("train_loss"), last.get("test_loss"), age, detail)


def scan(st: Store) -> dict[str, list[RunLine]]:
    """experiment → one RunLine per run folder or lease it has."""
    out = {}
    for e in st.experiments():
        leased = {p.stem for p in (st.root / e / LEASES).glob("*.json")}
        ids = sorted(set(st.run_ids(e, done_only=False)) | leased)
        out[e] = [run_line(st, e, rid) for rid in ids]
    return out


def epochs_cell(r: RunLine) -> str:
    """`51/200` (epochs logged of train.epochs), `51` when the total is unknown, "" before any row."""
    return "" if r.epoch is None else f"{r.epoch}/{r.epochs}" if r.epochs is not None else str(r.epoch)


def _dur(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return ""
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) and math.isfinite(v) else ""


def render(st: Store, show_done: bool = False) -> Group:
    """The summary table (one row per experiment) and the table of runs not done."""
    lines = scan(st)
    head = Table(title=f"store {st.root}", pad_edge=False)
    head.add_column("experiment")
    for k in ("runs", *KINDS):
        head.add_column(k, justify="right")
    for e, runs in lines.items():
        n = Counter(r.kind for r in runs)
        head.add_row(Text(e), str(len(runs)), *(str(n[k]) if n[k] else "" for k in KINDS))
    order = {k: i for i, k in enumerate(KINDS)}
    tables = []
    for e, rs in lines.items():
        t = Table(title=f"{e}: {'runs' if show_done else 'runs not done'} (train, test: last loss)",
                  title_justify="left", pad_edge=False)
        for c in ("run", "state", "epoch", "eta", "train", "test", "detail"):
            t.add_column(c, overflow="fold", no_wrap=c != "detail")
        for r in sorted(rs, key=lambda r: (order[r.kind], r.run_id)):
            if r.kind == "done" and not show_done:
                continue
            k = epochs_cell(r)
            age = f"last row {_dur(r.age_s)} ago; " if r.age_s is not None and r.kind in ("running", "stale") else ""
            t.add_row(r.run_id, r.kind, k, _dur(r.eta_s), _num(r.train_loss), _num(r.test_loss),
                      Text(age + r.detail))
        if t.row_count:
            tables.append(t)
    parts: list[Any] = [head] if lines else [Text(f"store {st.root}: no experiments")]
    return Group(*parts, *tables)


def watch_store(st: Store, console, every: float = 2.0, show_done: bool = False) -> None:
    """Redraw `render` every `every` seconds until Ctrl-C (which ends it quietly)."""
    from rich.live import Live

    try:
        with Live(render(st, show_done), console=console, refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(every)
                live.update(render(st, show_done))
    except KeyboardInterrupt:
        pass
