"""Executors take jobs (planned runs with their experiment's provenance) and a store, and nothing else.

`pending(exp, store)` is the resume rule: a run whose folder has DONE is skipped; any other is (re)done.
`local.run_local` runs jobs one after another in this process; `pool.run_pool` in worker processes. Both
report progress through `(run_id, row, epochs_total)`, with each row the store's writer logs (epoch,
train_loss, test_loss, ...), and each finished job through
`on_done(job, result | None, traceback | None)`: a run that fails leaves the others going.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from genlab.spec import Experiment, PlannedRun
from genlab.store import Store

RunProgress = Callable[[str, dict, int], None]  # (run_id, an epoch's logged row, epochs total)
PROGRESS_KEYS = ("epoch", "event", "train_loss", "test_loss", "train_error", "test_error")  # sent across processes


@dataclass(frozen=True)
class Job:
    run: PlannedRun
    meta: dict[str, Any]  # the experiment's provenance: name, profile, spec path and text


OnDone = Callable[[Job, "dict | None", "str | None"], None]


def experiment_meta(exp: Experiment) -> dict[str, Any]:
    return {"experiment": exp.name, "profile": exp.profile, "spec_path": str(exp.path) if exp.path else None,
            "spec_text": exp.text, **({"sets": exp.sets} if exp.sets else {})}  # --set overrides, when any


def pending(exp: Experiment, store: Store) -> list[Job]:
    meta = experiment_meta(exp)
    return [Job(r, meta) for r in exp.runs if not store.is_done(exp.name, r.run_id)]
