"""Ensembles as an executor: group a sweep's runs that can train as one stacked computation, and write each
member to the store as the solo run of its config (same run id, files and meaning).

Runs group when they share the model (architecture and options, apart from dropout probabilities in the
families whose dropout is genlab's replayable `Dropout`: each member draws its masks from its own generator),
the data set apart from its labels (corruption, seed of the label draw), batch sizes, loss, optimizer family
and learning rule, and train plainly (no [constraint]). `--ensemble auto` groups up to `K_AUTO` members
(fewer where memory says so); `--ensemble K` caps groups at K; `--ensemble off` trains every run alone.
"""

from __future__ import annotations

import json
import time
import traceback
from typing import Any, Callable

from genlab import interrupt
from genlab.executors import Job, RunProgress
from genlab.spec import RunConfig
from genlab.store import Store, StoreError

K_AUTO = 32  # most members per ensemble by default: past this a CPU step gains little and memory grows
# On a CPU fully connected nets always gain from stacking (benchmarks/bench_ensemble.py, whole training, medians
# of interleaved repeats, stop 25: 16 MLPs on mnist1d 2.5×, the quickstart's 192 runs 24×; 6.3-7.8× for the 16
# MLPs at stop 22, before solo steps got 2-3× cheaper), so `auto` stacks them. Conv families gain less: groups of
# 8 on digits, fused (train/fused.py: channels-last maps, one-window convs as matmuls) Conv-4 c16 with BN 1.7-1.8×
# (its steps 2.1×), ConvNet3-32 1.2-1.4× (steps 1.3-1.6×), ResNet-20 by vmap 1.0-1.1× (stop 26) — an ensemble
# evaluates conv members one by one as solo runs do (a solo evaluation already runs at a large batch; stacked
# ones measured slower), so only the steps gain; one grouped convolution of K members costs about what K
# convolutions cost (8 members, 32→32 channels, 8×8, forward and backward: 17.4 ms as 8 convs, 24.8 ms grouped),
# and at CIFAR's 32×32 a solo conv step is near the CPU's matmul peak, so fusion is slower (bench_flops.py: 0.6×).
# So `auto` stacks them on a CPU only where `executors.calibrate` measures a gain on this machine (at the runs'
# torch threads), and always on a GPU; an explicit K stacks any family.
CPU_FAMILIES = ("linear", "mlp", "mlp_uniform")
LABEL_OPTIONS = ("corrupt_prob", "corrupt_mode", "corrupt_test")  # change labels, not inputs or shapes
# families whose `dropout` option is a per-member probability in the stack (train/ensemble.py: masks drawn per
# member as its solo run draws them); dropout > 0 in any other family's options trains solo
DROPOUT_FAMILIES = ("mlp_uniform", "tweaks_cnn", "nin")
Result = tuple[Job, "dict | None", "str | None"]


def group_key(cfg: RunConfig) -> str | None:
    """Runs with the same key can share an ensemble; None: this run trains alone."""
    stacked = cfg.model.name in DROPOUT_FAMILIES
    dropout = {k for k, v in cfg.model.options.items() if "dropout" in k and isinstance(v, (int, float))}
    if any(float(cfg.model.options[k] or 0) > 0 for k in dropout) and not stacked:
        return None  # a plugin family's dropout may draw from torch's global RNG
    if cfg.constraint.name != "none" or cfg.train.compile or cfg.train.channels_last:
        return None
    data = {k: v for k, v in cfg.data.options.items() if k not in LABEL_OPTIONS}
    model = {k: v for k, v in cfg.model.model_dump(mode="json").items() if not (stacked and k in dropout)}  # per member
    t = cfg.train
    return json.dumps([cfg.data.name, data, model, t.batch_size, t.eval_batch_size,
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


def ensembles(jobs: list[Job], k_max: int, *, auto: bool = False, device: str = "cpu",
              threads: int | None = None) -> list[list[Job]]:
    """Jobs → units: groups of at most k_max jobs with one key, in the jobs' order; singletons for the rest.
    `auto`: on a CPU device CPU_FAMILIES are grouped, other families where a small calibration measures
    stacking at least `calibrate.GAIN`× faster than solo steps (cached per machine) at `threads` torch threads,
    the runs' own (None: this process's)."""
    groups: dict[str, list[list[Job]]] = {}
    units: list[list[Job]] = []
    keys = [group_key(j.run.config) if k_max > 1 else None for j in jobs]
    several = {k for k in keys if k is not None and keys.count(k) > 1}  # only groups of 2+ are calibrated
    pays: dict[str, bool] = {}
    for job, key in zip(jobs, keys):
        cfg = job.run.config
        if key is not None and key not in several:
            key = None
        if key is not None and auto and not device.startswith("cuda") and cfg.model.name not in CPU_FAMILIES:
            if key not in pays:  # measured once per group key and machine (executors.calibrate, cached)
                from genlab.executors.calibrate import stacking_pays

                pays[key] = stacking_pays(cfg, key, device, threads)
            key = key if pays[key] else None
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
    from genlab.executors.run import run_one

    if len(unit) == 1:
        job = unit[0]
        try:
            return [(job, run_one(job.run, job.meta, store_root, device, progress, job.retry_failed), None)]
        except (KeyboardInterrupt, StoreError):
            raise
        except Exception:
            return [(job, None, traceback.format_exc())]
    return run_group(unit, store_root, device, progress)


def run_group(jobs: list[Job], store_root: str, device: str = "cpu", progress: RunProgress | None = None
              ) -> list[Result]:
    """Claim each member (one another worker holds, finished, or failed before is skipped), then train the
    claimed ones as one ensemble (members resumed at different epochs: one ensemble per epoch); each member's
    run folder is written (DONE last) when it stops."""
    from genlab.executors.run import claim_to_train, provenance, restart, store_failure
    from genlab.train.resume import Foreign

    store = Store(store_root)
    results: dict[int, Result] = {}
    leases, writers, metas = {}, {}, {}
    for i, job in enumerate(jobs):
        lease, skip = claim_to_train(store, job.run.config.experiment, job.run.run_id, job.retry_failed)
        if lease is None:
            results[i] = (job, skip, None)
        else:
            leases[i] = lease
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        for i, lease in leases.items():
            cfg = jobs[i].run.config
            meta = {**jobs[i].meta, "point": jobs[i].run.point, "device": device, "started": started,
                    "ensemble": {"size": len(leases), "members": [jobs[k].run.run_id for k in leases]},
                    **provenance()}
            metas[i] = meta
            try:
                writers[i] = store.start(cfg.canonical_json(), cfg.experiment, jobs[i].run.run_id, meta, lease=lease)
            except Exception as e:
                if (full := store_failure(store, [cfg], e)) is not None:
                    raise full from None  # the store refuses writes: the sweep stops
                store.write_error(cfg.experiment, jobs[i].run.run_id, e, lease)  # every failed run has error.json
                results[i] = (jobs[i], None, traceback.format_exc())
        todo = list(writers)
        while todo:  # a snapshot that does not fit its member is set aside, and its group formed again
            by_epoch: dict[int, list[int]] = {}  # the trainer starts all members at one epoch
            for i in todo:
                by_epoch.setdefault(writers[i].resumed["epoch"] if writers[i].resumed else 0, []).append(i)
            todo = []
            for start, idx in by_epoch.items():
                if interrupt.requested():  # Ctrl-C: these members stay where they are
                    for i in idx:
                        writers[i].close()
                        results[i] = (jobs[i], interrupt.result(start, jobs[i].run.config.train.epochs), None)
                    continue
                try:
                    results.update(_train(jobs, idx, writers, device, progress))
                except Foreign as e:  # raised while building the members: nothing trained or written yet
                    bad = [i for i in idx if jobs[i].run.run_id == getattr(e, "run_id", None)] or \
                        [i for i in idx if writers[i].resumed is not None]
                    for i in bad:
                        cfg = jobs[i].run.config
                        writers[i] = restart(store, writers[i], cfg, jobs[i].run.run_id, metas[i], leases[i], e)
                    todo += idx
    finally:
        for lease in leases.values():
            lease.release()
    return [results[i] for i in range(len(jobs))]


def _train(jobs: list[Job], idx: list[int], writers: dict, device: str, progress: RunProgress | None
           ) -> dict[int, Result]:
    """Train members `idx` (claimed, their writers open) as one ensemble; {i: (job, result, error)}."""
    from genlab.train.ensemble import train_ensemble
    from genlab.train.resume import Foreign
    from genlab.train.state import summary

    t0 = time.perf_counter()
    results: dict[int, Result] = {}

    def on_finish(k: int, outcome) -> None:
        i = idx[k]
        res = summary(outcome, jobs[i].run.config, time.perf_counter() - t0, members=len(idx))
        writers[i].finish(res)
        results[i] = (jobs[i], res, None)

    def logger(i: int) -> Callable[[dict], None]:  # progress is read off the rows the store receives
        def log(row: dict) -> None:
            writers[i].log(row)
            if progress:
                progress(jobs[i].run.run_id, row, jobs[i].run.config.train.epochs)
        return log

    try:
        train_ensemble([jobs[i].run.config for i in idx], device=device, logs=[logger(i) for i in idx],
                       saves=[writers[i].save_state for i in idx], on_finish=on_finish,
                       save_resumes=[writers[i].save_resume for i in idx], resumed=[writers[i].resumed for i in idx])
    except KeyboardInterrupt as e:
        for i in idx:
            if i not in results:
                writers[i].close()  # no DONE, no error: the next `genlab run` resumes or redoes it
        if not isinstance(e, interrupt.Interrupted):
            raise
        for i in idx:  # Ctrl-C: stopped after an epoch, resume snapshots written (members not started: 0)
            if i not in results:
                rid, cfg = jobs[i].run.run_id, jobs[i].run.config
                at = e.stopped.get(rid, writers[i].resumed["epoch"] if writers[i].resumed else 0)
                results[i] = (jobs[i], interrupt.result(at, cfg.train.epochs), None)
    except Foreign:  # raised by resume.restore while the members are built, before any training
        raise  # run_group sets the snapshot aside and forms the group again
    except Exception as e:
        err = traceback.format_exc()
        from genlab.executors.run import store_failure

        root = writers[idx[0]].path.parent.parent  # <store>/<experiment>/<run_id>
        full = store_failure(Store(root), [jobs[i].run.config for i in idx if i not in results], e)
        for i in idx:
            if i not in results:
                if full is not None:
                    writers[i].close()
                    continue
                writers[i].fail(e)  # error.json in each unfinished member's folder
                results[i] = (jobs[i], None, err)
        if full is not None:
            raise full from None  # the store refuses writes: the sweep stops
    return results


def describe(units: list[list[Job]]) -> dict[str, Any]:
    """How a plan trains: {'runs', 'ensembles', 'largest', 'solo'} for the CLI's first line."""
    sizes = [len(u) for u in units]
    return {"runs": sum(sizes), "ensembles": sum(s > 1 for s in sizes), "largest": max(sizes, default=0),
            "solo": sum(s == 1 for s in sizes)}
