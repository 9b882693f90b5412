"""Run planned runs in a pool of worker processes (one torch thread each), for sweeps on a multi-core CPU.

At most `workers` jobs are in flight; the next is chosen (and checked again against the store) only when one
finishes, so runs another process finished or claimed meanwhile are skipped. Workers die with this process
(lifeline.py): killing `genlab run` stops them.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from genlab.executors import Job, OnDone, RunProgress, dispatch
from genlab.executors.local import run_one
from genlab.spec import PlannedRun
from genlab.store import Store

_progress_q = None  # the worker's end of the progress queue (set by _init_worker)


def _init_worker(threads: int, parent_pid: int, q) -> None:
    from genlab.executors.lifeline import die_with_parent

    die_with_parent(parent_pid)
    global _progress_q
    _progress_q = q
    import torch

    torch.set_num_threads(threads)


def _work(run: PlannedRun, meta: dict[str, Any], root: str, device: str,
          retry_failed: bool) -> tuple[dict | None, str | None]:
    try:
        report = lambda rid, e, n: _progress_q.put((rid, e, n))  # noqa: E731
        return run_one(run, meta, root, device, report, retry_failed), None
    except Exception:
        return None, traceback.format_exc()


def run_pool(jobs: list[Job], store: Store, *, workers: int, device: str = "cpu",
             progress: RunProgress | None = None, on_done: OnDone | None = None, threads: int = 1) -> None:
    """Run jobs in `workers` processes with `threads` torch threads each; progress and results come back
    to this process as they happen."""
    ctx = mp.get_context("spawn")  # fork after torch has started threads can deadlock
    q = ctx.Queue()  # a plain queue (no Manager process that could outlive us)
    todo = dispatch(jobs, store, on_done)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads, os.getpid(), q)) as pool:
        running: dict[Future, Job] = {}

        def fill() -> None:
            while len(running) < workers and (job := next(todo, None)) is not None:
                running[pool.submit(_work, job.run, job.meta, str(store.root), device, job.retry_failed)] = job

        fill()
        while running:
            done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(q, progress)
            for f in done:
                job = running.pop(f)
                res, err = f.result()
                if on_done:
                    on_done(job, res, err)
            fill()
        _drain(q, progress)
    q.close()


def _drain(q, progress: RunProgress | None) -> None:
    while True:
        try:
            rid, e, n = q.get_nowait()
        except queue.Empty:
            return
        if progress:
            progress(rid, e, n)
