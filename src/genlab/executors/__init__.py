"""Executors take planned runs and a store, and nothing else.

`pending(exp, store)` is the resume rule: a run whose folder has DONE is skipped; any other is (re)done.
`local` runs them one after another in this process; `pool` in worker processes. Both report progress
through a callback `(run_id, epochs_done, epochs_total)`, and a run that fails leaves the others going.
"""

from __future__ import annotations

from genlab.spec import Experiment, PlannedRun
from genlab.store import Store


def pending(exp: Experiment, store: Store) -> list[PlannedRun]:
    return [r for r in exp.runs if not store.is_done(exp.name, r.run_id)]
