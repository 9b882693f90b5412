"""Ensembles as an executor: group a sweep's runs that can train as one stacked computation, and write each
member to the store as the solo run of its config (same run id, files and meaning).

Runs group when they share the model (architecture and options), the data set apart from its labels
(corruption, seed of the label draw), batch sizes, loss, optimizer family and learning rule, and train plainly (no
[constraint], no dropout). `--ensemble auto` groups up to `K_AUTO` members (fewer where memory says so);
`--ensemble K` caps groups at K; `--ensemble off` trains every run alone.
"""

from __future__ import annotations

import json
import time
import traceback
from typing import Any, Callable

from genlab.executors import Job, RunProgress
from genlab.spec import RunConfig
from genlab.store import Store

K_AUTO = 32  # most members per ensemble by default: past this a CPU step gains little and memory grows
# On a CPU only fully connected nets gain from stacking (benchmarks/bench_ensemble.py: linear 31×, 16 MLPs
# 3.1×; convnet3, conv4 with BN and resnet20 0.9-1.0×: a CPU conv is already compute-bound), so `auto`
# stacks the others only on a GPU; an explicit K stacks any family.
CPU_FAMILIES = ("linear", "mlp")
LABEL_OPTIONS = ("corrupt_prob", "corrupt_mode", "corrupt_test")  # change labels, not inputs or shapes
Result = tuple[Job, "dict | None", "str | None"]


def group_key(cfg: RunConfig) -> str | None:
    """Runs with the same key can share an ensemble; None: this run trains alone."""
    if cfg.constraint.name != "none" or any(float(v or 0) > 0 for k, v in cfg.model.options.items()
                                            if "dropout" in k and isinstance(v, (int, float))):
        return None
    data = {k: v for k, v in cfg.data.options.items() if k not in LABEL_OPTIONS}
    t = cfg.train
    return json.dumps([cfg.data.name, data, cfg.model.model_dump(mode="json"), t.batch_size, t.eval_batch_size,
                       t.loss, cfg.optim.name, t.rule, t.rule_options], sort_keys=True)


def parse_ensemble(value: str) -> tuple[int, bool]:
    """`auto` → (K_AUTO, True), `off` → (1, False), an integer K ≥ 1 → (K, False); else a clear error."""
    if value == "auto":
        return K_AUTO, True
    if value == "off":
        return 1, False
    try:
        k = int(value)
    except ValueError:
        k = 0
    if k < 1:
        raise ValueError(f"--ensemble takes auto, off or a positive integer, got {value!r}")
    return k, False


def plan(jobs: list[Job], k_max: int, *, auto: bool = False, device: str = "cpu") -> list[list[Job]]:
    """Jobs → units: groups of at most k_max jobs with one key, in the jobs' order; singletons for the rest.
    `auto`: on a CPU device only CPU_FAMILIES are grouped (where stacking measured faster)."""
    groups: dict[str, list[list[Job]]] = {}
    units: list[list[Job]] = []
    for job in jobs:
        cfg = job.run.config
        cpu_skip = auto and not device.startswith("cuda") and cfg.model.name not in CPU_FAMILIES
        key = group_key(cfg) if k_max > 1 and not cpu_skip else None
        if key is None:
            units.append([job])
            continue
        bucket = groups.setdefault(key, [])
        if not bucket or len(bucket[-1]) >= k_max:
            bucket.append([])
            units.append(bucket[-1])
        bucket[-1].append(job)
    return units


def run_unit(unit: list[Job], store_root: str, device: str = "cpu", progress: RunProgress | None = None
             ) -> list[Result]:
    """Train a unit (one job solo, several as an ensemble) into the store; one (job, result, error) each."""
    from genlab.executors.local import run_one

    if len(unit) == 1:
        job = unit[0]
        try:
            return [(job, run_one(job.run, job.meta, store_root, device, progress), None)]
        except KeyboardInterrupt:
            raise
        except Exception:
            return [(job, None, traceback.format_exc())]
    return run_group(unit, store_root, device, progress)


def run_group(jobs: list[Job], store_root: str, device: str = "cpu", progress: RunProgress | None = None
              ) -> list[Result]:
    """Train `jobs` as one ensemble; each member's run folder is written (DONE last) when it stops."""
    from genlab.executors.local import provenance
    from genlab.train.ensemble import train_ensemble
    from genlab.train.state import summary

    store = Store(store_root)
    writers, t0 = [], time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for job in jobs:
        cfg = job.run.config
        meta = {**job.meta, "point": job.run.point, "device": device, "started": started,
                "ensemble": {"size": len(jobs), "members": [j.run.run_id for j in jobs]}, **provenance()}
        writers.append(store.start(cfg.canonical_json(), cfg.experiment, job.run.run_id, meta))
    results: list[Result | None] = [None] * len(jobs)

    def on_finish(i: int, outcome) -> None:
        res = summary(outcome, jobs[i].run.config, time.perf_counter() - t0)
        writers[i].finish(res)
        results[i] = (jobs[i], res, None)

    def logger(i: int) -> Callable[[dict], None]:  # progress is read off the rows the store receives
        def log(row: dict) -> None:
            writers[i].log(row)
            if progress:
                progress(jobs[i].run.run_id, row, jobs[i].run.config.train.epochs)
        return log

    try:
        train_ensemble([j.run.config for j in jobs], device=device, logs=[logger(i) for i in range(len(jobs))],
                       saves=[w.save_state for w in writers], on_finish=on_finish)
    except KeyboardInterrupt:
        for i, w in enumerate(writers):
            if results[i] is None:
                w.close()  # no DONE: the next `genlab run` redoes it
        raise
    except Exception:
        err = traceback.format_exc()
        for i, w in enumerate(writers):
            if results[i] is None:
                w.close()
                results[i] = (jobs[i], None, err)
    return results  # type: ignore[return-value]


def describe(units: list[list[Job]]) -> dict[str, Any]:
    """How a plan trains: {'runs', 'ensembles', 'largest', 'solo'} for the CLI's first line."""
    sizes = [len(u) for u in units]
    return {"runs": sum(sizes), "ensembles": sum(s > 1 for s in sizes), "largest": max(sizes, default=0),
            "solo": sum(s == 1 for s in sizes)}
