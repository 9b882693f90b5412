"""Tags and notes on runs, kept beside the store's run folders, never in them.

    <root>/<experiment>/.notes/<run_id>.json   {"tags": ["best", ...], "note": "lr too high?", "updated": "..."}

A run folder's files are certified by its manifest (DONE, integrity.py): a file added there would make the
run damaged, and a tag is no part of what the run computed. So annotations live in `.notes/` (a dot folder:
never listed as a run), written atomically, and `genlab verify` never sees them. `genlab rm` removes a run's
annotation with the run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from genlab.paths import check_name, under
from genlab.store.runfiles import atomic_write

NOTES = ".notes"


def path(root: Path, experiment: str, run_id: str) -> Path:
    return under(Path(root), check_name(experiment, "experiment name"), NOTES,
                 check_name(run_id, "run id") + ".json")


def read(root: Path, experiment: str, run_id: str) -> dict[str, Any]:
    """{"tags": [...], "note": "..."} of a run ({} if it has none; an unreadable file counts as none)."""
    try:
        d = json.loads(path(root, experiment, run_id).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(d, dict):
        return {}
    tags = d.get("tags")
    return {"tags": [str(t) for t in tags] if isinstance(tags, list) else [], "note": str(d.get("note") or "")}


def check_tag(tag: str) -> str:
    """A tag is one word: letters, digits and - _ . : / (so `--where`-like filters and shells keep it whole)."""
    if not tag or any(not (c.isalnum() or c in "-_.:/") for c in tag) or len(tag) > 64:
        raise ValueError(f"tag {tag!r}: use 1-64 letters, digits or - _ . : / (no spaces)")
    return tag


def update(root: Path, experiment: str, run_id: str, add: list[str] = (), remove: list[str] = (),
           note: str | None = None) -> dict[str, Any]:
    """Add and remove tags, set the note (None: keep it; "": clear it); returns the run's annotation."""
    cur = read(root, experiment, run_id)
    tags = [t for t in cur.get("tags", []) if t not in remove]
    tags += [check_tag(t) for t in add if t not in tags]
    new = {"tags": tags, "note": cur.get("note", "") if note is None else note}
    p = path(root, experiment, run_id)
    if not new["tags"] and not new["note"]:
        p.unlink(missing_ok=True)
        return new
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(p, (json.dumps({**new, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=1) + "\n").encode())
    return new


def remove(root: Path, experiment: str, run_id: str) -> None:
    path(root, experiment, run_id).unlink(missing_ok=True)


def of_experiment(root: Path, experiment: str) -> dict[str, dict[str, Any]]:
    """run id → annotation, for every annotated run of the experiment."""
    d = under(Path(root), check_name(experiment, "experiment name"), NOTES)
    if not d.is_dir():
        return {}
    return {p.stem: a for p in sorted(d.glob("*.json")) if (a := read(root, experiment, p.stem))}


def columns(root: Path, experiment: str, run_ids: list[str]) -> dict[str, list[str]]:
    """{"tags": [...], "note": [...]} aligned with `run_ids` (space-separated tags; "" for none)."""
    ann = of_experiment(root, experiment)
    return {"tags": [" ".join(ann.get(r, {}).get("tags", [])) for r in run_ids],
            "note": [ann.get(r, {}).get("note", "") for r in run_ids]}


def annotate(df, root: Path, experiment: str):
    """`df` (a results or history table with run_id) with `tags` and `note` columns, when any run has them."""
    if not len(df) or "run_id" not in df.columns or not of_experiment(root, experiment):
        return df
    cols = columns(root, experiment, list(df["run_id"]))
    return df.assign(**cols)
