"""`genlab tag` (tags and a note on runs, beside the store's files: genlab.notes) and `genlab rm` (delete runs:
a dry run with a count unless --yes; a run a live worker holds is never touched)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from genlab.cli import NameOpt, ProfileOpt, StoreOpt, UserError, WhereOpt, app, load_spec, open_store, out


def all_runs(st, experiment: str) -> list[str]:
    """Every run the store has of `experiment`: folders (finished or not) and claims without a folder yet."""
    from genlab.store.claims import LEASES

    if experiment not in st.experiments():
        raise UserError(f"no experiment {experiment!r} in store {st.root} "
                        f"(present: {', '.join(st.experiments()) or 'none'})")
    leased = {p.stem for p in (st.root / experiment / LEASES).glob("*.json")}
    return sorted(set(st.run_ids(experiment, done_only=False)) | leased)


def resolve(ids: list[str], prefix: str, experiment: str) -> str:
    """The one run id starting with `prefix` (at least 4 characters)."""
    hits = [r for r in ids if r.startswith(prefix)] if len(prefix) >= 4 else []
    if len(hits) != 1:
        what = "no run" if not hits else f"{len(hits)} runs ({', '.join(hits[:4])})"
        raise UserError(f"{experiment}: {what} with an id starting {prefix!r}" +
                        (" (give at least 4 characters)" if len(prefix) < 4 else ""))
    return hits[0]


@app.command()
def tag(experiment: str, runs: list[str] = typer.Argument(..., help="Run ids, or their first characters (4+)."),
        add: list[str] = typer.Option([], "--add", "-a", metavar="TAG", help="Add a tag (repeatable)."),
        remove: list[str] = typer.Option([], "--remove", "-r", metavar="TAG", help="Remove a tag (repeatable)."),
        note: Optional[str] = typer.Option(None, "--note", help="Set the runs' note (\"\" clears it)."),
        store: Optional[Path] = StoreOpt):
    """Tag and annotate runs. Kept beside the run (EXP/.notes/), outside its checked files: `genlab verify`
    never sees them; `ls`, `results`, `compare` and `report` show them. Without options: print them."""
    from genlab import notes

    st = open_store(store)
    ids = all_runs(st, experiment)
    chosen = [resolve(ids, p, experiment) for p in runs]
    for rid in chosen:
        ann = notes.update(st.root, experiment, rid, add, remove, note) if add or remove or note is not None \
            else notes.read(st.root, experiment, rid)
        tags = " ".join(ann.get("tags", [])) or "-"
        out.print(Text(f"{experiment}/{rid}: tags {tags}" + (f"; note: {ann['note']}" if ann.get("note") else "")),
                  soft_wrap=True)


def _candidates(st, experiment: str) -> list[dict[str, Any]]:
    """One row per run of the experiment: run_id, state, tags, and its config as dotted columns."""
    import json

    from genlab import notes
    from genlab.store.defaults import with_omitted_defaults
    from genlab.tables import flatten

    rows = []
    for rid in all_runs(st, experiment):
        try:
            cfg = flatten(with_omitted_defaults(json.loads((st.run_dir(experiment, rid) / "config.json").read_text())))
        except (OSError, ValueError):
            cfg = {}  # a claim without a folder yet, or an unreadable config: only state filters match it
        ann = notes.read(st.root, experiment, rid)
        rows.append({"run_id": rid, "state": st.state(experiment, rid).kind, "tags": " ".join(ann.get("tags", [])),
                     **cfg})
    return rows


@app.command("rm")
def rm(target: str = typer.Argument(..., help="An experiment in the store, or a spec file (needed by --orphans)."),
       where: Optional[str] = WhereOpt,
       failed: bool = typer.Option(False, "--failed", help="Only runs that failed."),
       name: Optional[str] = NameOpt,
       orphans: bool = typer.Option(False, "--orphans", help="Only runs the spec (under --profile) no longer "
                                    "expands to."),
       profile: str = ProfileOpt,
       yes: bool = typer.Option(False, "--yes", help="Delete. Without it: list what would be deleted, delete "
                                "nothing."),
       store: Optional[Path] = StoreOpt):
    """Delete runs of an experiment (all of them, or those the filters select: they combine with "and").
    `--name VARIANT` selects the variant's runs. Never a run a live worker is training; nothing else touched."""
    import pandas as pd

    from genlab.tables import where as filter_rows

    st = open_store(store)
    keep: set[str] | None = None
    if target.endswith(".toml"):
        exp = load_spec(Path(target), profile, name=name)
        experiment, keep = exp.name, set(exp.run_ids)
    else:
        experiment = name or target
        if orphans:
            raise UserError("--orphans needs the spec file (its runs are the ones kept): genlab rm SPEC.toml --orphans")
    df = pd.DataFrame(_candidates(st, experiment))
    if failed:
        df = df[df["state"] == "failed"]
    if orphans:
        df = df[~df["run_id"].isin(keep)]
    df = filter_rows(df, where) if len(df) else df
    states = dict(zip(df["run_id"], df["state"])) if len(df) else {}
    busy = sorted(r for r, s in states.items() if s == "running")
    chosen = sorted(r for r in states if r not in busy)
    n = Counter(states[r] for r in chosen)
    what = ", ".join(f"{v} {k}" for k, v in sorted(n.items())) or "none"
    if busy:
        out.print(f"{len(busy)} selected runs are being trained and are left alone: {', '.join(busy)}",
                  highlight=False, markup=False, soft_wrap=True)
    if not yes:
        _would_delete(experiment, chosen, states, df, what)
        return
    deleted = _delete(st, experiment, chosen)
    _drop_if_empty(st.root / experiment)
    out.print(f"deleted {len(deleted)} runs of {experiment} ({what})", highlight=False)


def _would_delete(experiment: str, chosen: list[str], states: dict, df, what: str) -> None:
    """The dry run of `genlab rm`: the runs it would delete, as a table."""
    t = Table(title=f"{experiment}: {len(chosen)} runs would be deleted ({what})", title_justify="left")
    for c in ("run", "state", "tags"):
        t.add_column(c)
    for r in chosen:
        t.add_row(r, states[r], Text(df.loc[df["run_id"] == r, "tags"].iloc[0]))
    out.print(t)
    out.print(f"dry run: nothing deleted; add --yes to delete these {len(chosen)} runs", highlight=False)


def _delete(st, experiment: str, chosen: list[str]) -> list[str]:
    """Delete each run under its lease (a stale claim is taken over, a live one left alone); the ids deleted."""
    from genlab import notes
    from genlab.store import claims

    deleted = []
    for rid in chosen:
        try:
            lease = st.claim(experiment, rid, heartbeat=False)  # a stale claim is taken over; a live one is not
        except claims.Busy as e:
            out.print(f"{experiment}/{rid}: left alone, {e}", highlight=False, markup=False)
            continue
        try:
            d = st.run_dir(experiment, rid)
            if d.exists():
                shutil.rmtree(d)
            notes.remove(st.root, experiment, rid)
            deleted.append(rid)
        finally:
            lease.release()
    return deleted


def _drop_if_empty(folder: Path) -> None:
    """Remove an experiment folder with no runs left (its empty .leases and .notes folders with it)."""
    from genlab.store.claims import LEASES
    from genlab.notes import NOTES

    try:
        for sub in (LEASES, NOTES):
            if (folder / sub).is_dir() and not any((folder / sub).iterdir()):
                (folder / sub).rmdir()
        if not any(folder.iterdir()):
            folder.rmdir()
    except OSError:
        pass
