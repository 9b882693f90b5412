"""Run planned runs in a pool of worker processes (one torch thread each), for sweeps on a multi-core CPU."""

from __future__ import annotations

import multiprocessing as mp
import queue
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from genlab.executors import PROGRESS_KEYS, Job, OnDone, RunProgress
from genlab.executors.ensemble import plan, run_unit
from genlab.store import Store


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _work(unit: list[Job], root: str, device: str, q) -> list[tuple[dict | None, str | None]]:
    def send(rid: str, row: dict, n: int) -> None:  # the few fields a display needs, not the whole row
        q.put((rid, {k: row[k] for k in PROGRESS_KEYS if k in row}, n))

    return [(res, err) for _, res, err in run_unit(unit, root, device, send)]


def run_pool(jobs: list[Job], store: Store, *, workers: int, device: str = "cpu",
             progress: RunProgress | None = None, on_done: OnDone | None = None, threads: int = 1,
             ensemble: tuple[int, bool] = (1, False)) -> None:
    """Run jobs in `workers` processes with `threads` torch threads each (groups of up to `ensemble` runs as
    one ensemble each); progress and results come back to this process as they happen."""
    ctx = mp.get_context("spawn")  # fork after torch has started threads can deadlock
    with ctx.Manager() as manager:
        q = manager.Queue()
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,)) as pool:
            futures = {pool.submit(_work, u, str(store.root), device, q): u for u in plan(jobs, ensemble[0], auto=ensemble[1], device=device)}
            todo = set(futures)
            while todo:
                done, todo = wait(todo, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(q, progress)
                for f in done:
                    for job, (res, err) in zip(futures[f], f.result()):
                        if on_done:
                            on_done(job, res, err)
            _drain(q, progress)


def _drain(q, progress: RunProgress | None) -> None:
    while True:
        try:
            rid, row, n = q.get_nowait()
        except queue.Empty:
            return
        if progress:
            progress(rid, row, n)
