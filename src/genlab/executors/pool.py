"""Run planned runs in a pool of worker processes (one torch thread each), for sweeps on a multi-core CPU.

At most `workers` units (a run, or an ensemble group) are in flight; the next is chosen (and its runs checked
again against the store) only when one finishes, so runs another process finished or claimed meanwhile are
skipped. Workers die with this process (lifeline.py): killing `genlab run` stops them.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from genlab import interrupt
from genlab.executors import PROGRESS_KEYS, Job, OnDone, RunProgress, dispatch_units
from genlab.executors.ensemble import ensembles, run_unit
from genlab.store import Store, StoreError

_progress_q = None  # the worker's end of the progress queue (set by _init_worker)


def _init_worker(threads: int, parent_pid: int, q, stop=None) -> None:
    from genlab import interrupt
    from genlab.executors.lifeline import die_with_parent

    die_with_parent(parent_pid)
    interrupt.share(stop)  # the parent's Ctrl-C reaches us through `stop`; a terminal's too, through SIGINT
    interrupt.install(worker=True)
    global _progress_q
    _progress_q = q
    from genlab.runtime import setup_worker

    setup_worker(threads)


def _work(unit: list[Job], root: str, device: str) -> list[tuple[dict | None, str | None]]:
    def send(rid: str, row: dict, n: int) -> None:  # the few fields a display needs, not the whole row
        _progress_q.put((rid, {k: row[k] for k in PROGRESS_KEYS if k in row}, n))

    try:
        return [(res, err) for _, res, err in run_unit(unit, root, device, send)]
    except StoreError as e:  # the store refuses writes: run_pool stops the sweep
        return [(None, STORE_FAILED + str(e))] * len(unit)


STORE_FAILED = "StoreError: "


def run_pool(jobs: list[Job], store: Store, *, workers: int, device: str = "cpu",
             progress: RunProgress | None = None, on_done: OnDone | None = None, threads: int = 1,
             ensemble: tuple[int, bool] = (1, False)) -> None:
    """Run jobs in `workers` processes with `threads` torch threads each (groups of up to `ensemble` runs as
    one ensemble each); progress and results come back to this process as they happen."""
    ctx = mp.get_context("spawn")  # fork after torch has started threads can deadlock
    q = ctx.Queue()  # a plain queue (no Manager process that could outlive us)
    stop = ctx.Event()  # Ctrl-C here (genlab.interrupt) → each worker stops its runs after their epoch
    interrupt.share(stop)
    units = ensembles(jobs, ensemble[0], auto=ensemble[1], device=device, threads=threads)  # measured at workers'
    todo = dispatch_units(units, store, on_done)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads, os.getpid(), q, stop)) as pool, _unshare():
        running: dict[Future, list[Job]] = {}

        def fill() -> None:
            while (len(running) < workers and not interrupt.requested()
                   and (unit := next(todo, None)) is not None):
                running[pool.submit(_work, unit, str(store.root), device)] = unit

        fill()
        while running:
            done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(q, progress)
            for f in done:
                for job, (res, err) in zip(running.pop(f), f.result()):
                    if err is not None and err.startswith(STORE_FAILED):
                        for other in running:
                            other.cancel()
                        raise StoreError(err.removeprefix(STORE_FAILED))
                    if on_done:
                        on_done(job, res, err)
            fill()
        _drain(q, progress)
    q.close()


@contextlib.contextmanager
def _unshare():
    try:
        yield
    finally:
        interrupt.share(None)


def _drain(q, progress: RunProgress | None) -> None:
    while True:
        try:
            rid, row, n = q.get_nowait()
        except queue.Empty:
            return
        if progress:
            progress(rid, row, n)
