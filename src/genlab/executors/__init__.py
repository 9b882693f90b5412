"""Executors take jobs (planned runs with their experiment's provenance) and a store, and nothing else.

`pending(exp, store)` is the resume rule: a finished intact run is skipped; a damaged, interrupted or stale one
is (re)done; a failed one only with `retry_failed`; one a live worker holds is left to it. Executors ask
`dispatch_units` for the next unit (a run, or an ensemble group) when a worker is free, so a run another worker
finished or claimed meanwhile is skipped, and one whose worker died meanwhile is taken over. Each run is claimed
by whoever trains it (`run.run_one`, `ensemble.run_group`), so local pools, Slurm tasks and Ray tasks can
share a store. Executors report progress through `(run_id, row, epochs_total)`, with each row the store's
writer logs (epoch, train_loss, test_loss, ...), and each job through `on_done(job, result | None, traceback |
None)`; a job another worker took has `result["status"] == "skipped"`. A run that fails leaves the others going.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

from genlab.spec.loader import Experiment, PlannedRun
from genlab.store import Store

RunProgress = Callable[[str, dict, int], None]  # (run_id, an epoch's logged row, epochs total)
PROGRESS_KEYS = ("epoch", "event", "train_loss", "test_loss", "train_error", "test_error")  # sent across processes
TODO = ("pending", "damaged", "stale")  # states a run is (re)done from; "failed" too with retry_failed


@dataclass(frozen=True)
class Job:
    run: PlannedRun
    meta: dict[str, Any]  # the experiment's provenance: name, profile, spec path and text
    retry_failed: bool = False  # redo the run if it failed before (else a failed run is left as it is)


OnDone = Callable[[Job, "dict | None", "str | None"], None]


def experiment_meta(exp: Experiment) -> dict[str, Any]:
    return {"experiment": exp.name, "profile": exp.profile, "spec_path": str(exp.path) if exp.path else None,
            "spec_text": exp.text, **({"sets": exp.sets} if exp.sets else {})}  # --set overrides, when any


def to_do(kind: str, retry_failed: bool) -> bool:
    return kind in TODO or (retry_failed and kind == "failed")


def plan(exp: Experiment, store: Store) -> dict[str, str]:
    """run_id → state kind (done, damaged, running, stale, failed, pending) for each run of `exp`."""
    return {r.run_id: store.state(exp.name, r.run_id).kind for r in exp.runs}


def pending(exp: Experiment, store: Store, retry_failed: bool = False,
            states: dict[str, str] | None = None) -> list[Job]:
    """The runs not finished: to (re)do, or held by a live worker now (`dispatch` checks again later)."""
    meta, states = experiment_meta(exp), states or plan(exp, store)
    return [Job(r, meta, retry_failed) for r in exp.runs
            if to_do(states[r.run_id], retry_failed) or states[r.run_id] == "running"]


def skipped(kind: str, detail: str = "") -> dict[str, Any]:
    """The result of a job this worker did not run: it is `kind` (done, running, failed) elsewhere."""
    return {"status": "skipped", "state": kind, "detail": detail}


def dispatch_units(units: list[list[Job]], store: Store, on_done: OnDone | None = None) -> Iterator[list[Job]]:
    """The units (runs or ensemble groups) still to do, each job checked again just before its unit is handed
    out (when a worker is free); runs another worker held then are checked once more at the end (it may have
    finished or died since); the others are reported to `on_done` as skipped."""
    deferred: list[Job] = []

    def check(job: Job, last: bool) -> bool:
        state = store.state(job.run.config.experiment, job.run.run_id)
        if to_do(state.kind, job.retry_failed):
            return True
        if state.kind == "running" and not last:
            deferred.append(job)
        elif on_done:
            on_done(job, skipped(state.kind, state.detail), None)
        return False

    for unit in units:
        if todo := [job for job in unit if check(job, last=False)]:
            yield todo
    for job in deferred:
        if check(job, last=True):
            yield [job]
