"""Run planned runs in this process, one unit (a run or an ensemble group) after another."""

from __future__ import annotations

from genlab import interrupt
from genlab.executors import Job, OnDone, RunProgress, dispatch_units
from genlab.store import Store


def run_local(jobs: list[Job], store: Store, *, device: str = "cpu", progress: RunProgress | None = None,
              on_done: OnDone | None = None, ensemble: tuple[int, bool] = (1, False)) -> None:
    """Run each job here, one unit after another (groups of up to `ensemble` runs train as one ensemble), each
    checked again against the store when its turn comes; an exception in one is reported and the rest go on,
    except a StoreError (the store refuses writes: every other run would fail the same way), which stops them."""
    from genlab.executors.ensemble import ensembles, run_unit

    for unit in dispatch_units(ensembles(jobs, ensemble[0], auto=ensemble[1], device=device), store, on_done):
        if interrupt.requested():  # Ctrl-C: nothing new starts
            return
        for job, res, err in run_unit(unit, str(store.root), device, progress):
            if on_done:
                on_done(job, res, err)
