"""Live logging while `genlab run` trains (`--tensorboard DIR`, `--wandb DIR`): a thread that tails each run's
metrics.jsonl in the store and passes the new rows on as epochs finish.

Reading the store (not the executors' progress messages) makes it the same for every executor (this process,
a pool, Ray, Slurm on a shared store) and gives whole rows (every metric, events, measures). A run's event
files live in `DIR/<experiment>/<name>`, the name saying which sweep point it is (`scale=2.0_seed=1_ab12cd`):
`tensorboard --logdir DIR` shows the sweep as it trains. Scalars are flushed after every poll (`interval` s),
so TensorBoard sees an epoch about `interval` s after the store does. A resumed run's folder gets the rows it
had before (written again, same steps); a run restarted from scratch (its metrics.jsonl shorter than what was
read) is read again from its start.

W&B runs are offline (nothing to watch until `wandb sync`), so each is written when its run finishes, through
`genlab.export.to_wandb`. Both need their extras (genlab[tensorboard], genlab[wandb]), imported only here.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from genlab.export import run_name
from genlab.store import DONE, Store


class LiveLog:
    """Tail the runs of `jobs` (genlab.executors.Job) in `store` into TensorBoard and/or offline W&B; a context
    manager: the thread polls every `interval` s while the block runs, once more at its end, then closes."""

    def __init__(self, store: Store, jobs: list, tensorboard: Path | None = None, wandb: Path | None = None,
                 interval: float = 1.0):
        self.store, self.tb, self.wb, self.interval = store, tensorboard, wandb, interval
        seeds: dict[str, set] = {}
        for j in jobs:
            seeds.setdefault(j.run.config.experiment, set()).add(j.run.config.seed)
        self.runs = {(j.run.config.experiment, j.run.run_id):
                     run_name(j.run.point, j.run.run_id, len(seeds[j.run.config.experiment])) for j in jobs}
        self.offset: dict[tuple[str, str], int] = {}
        self.writers: dict[tuple[str, str], Any] = {}
        self.finished: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if tensorboard is not None:
            from genlab.export import _summary_writer

            self._SummaryWriter = _summary_writer()[0]  # fails here, before training, without the extra
        if wandb is not None:
            try:
                import wandb as _  # noqa: F401
            except ImportError:
                raise ValueError("--wandb needs wandb: pip install 'genlab[wandb]'") from None

    def folder(self, experiment: str, run_id: str) -> Path:
        return Path(self.tb) / experiment / self.runs[(experiment, run_id)]

    def poll(self) -> None:
        """Pass on every complete row written since the last poll; W&B-export runs that finished."""
        for key in self.runs:
            if self.tb is not None:
                self._tail(key)
            if self.wb is not None and key not in self.finished and (self.store.run_dir(*key) / DONE).exists():
                from genlab.export import to_wandb

                to_wandb(self.store, key[0], Path(self.wb), [key[1]], names={key[1]: self.runs[key]})
                self.finished.add(key)

    def _tail(self, key: tuple[str, str]) -> None:
        from genlab.export import scalars

        path = self.store.run_dir(*key) / "metrics.jsonl"
        try:
            with open(path, "rb") as f:
                size = f.seek(0, 2)
                start = self.offset.get(key, 0)
                start = 0 if size < start else start  # cut back (resume) or restarted: from the start again
                f.seek(start)
                data = f.read(size - start)
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # a half-written last line waits for the next poll
        if end == 0:
            return
        rows = [json.loads(x) for x in data[:end].split(b"\n") if x.strip()]
        self.offset[key] = start + end
        w = self.writers.get(key)
        if w is None:
            w = self.writers[key] = self._SummaryWriter(log_dir=str(self.folder(*key)))
        for tag, step, value in scalars(rows):
            w.add_scalar(tag, value, global_step=step)
        w.flush()  # now, not after SummaryWriter's 120 s: TensorBoard shows the epoch

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except (OSError, ValueError):  # a file mid-replacement: the next poll reads it
                pass

    def __enter__(self) -> "LiveLog":
        self._thread = threading.Thread(target=self._loop, name="genlab-live", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.poll()  # the last rows
        finally:
            for w in self.writers.values():
                w.close()
