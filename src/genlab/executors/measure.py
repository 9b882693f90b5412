"""Measures on stored runs (`genlab measure`): claim each finished run, rebuild its data and model, load its
checkpoints, compute, and record the values in its result.json (and manifest) while holding its lease.

Each run is measured with its own `record.measure_options` (a spec's `sharpness.cfg.alpha = 1e-3` stays
1e-3 under the key `sharpness.zeta`). Skipped, each with a reason to `on_skip`: damaged runs (see
genlab.store.integrity), diverged runs (their weights are not a solution), and runs another worker holds now.

With `workers` > 1 the runs are measured in that many worker processes (spawned, `threads` torch threads each,
dying with this one), a run each at a time: small nets use a multi-core CPU better as processes than as threads
of one process. Measured on 2 cores (14 ConvNet3-32 runs of ch4_convnet3's small profile, Hessian, both
PAC-Bayes searches, sharpness, spectral product and margin: `genlab measure ... -j 1` vs `-j 2`, twice each):
32.4 and 28.0 s vs 25.7 and 27.3 s wall, spawning included; the values agree to 6e-7 (thread rounding).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import torch

from genlab.store.claims import Busy
from genlab.measures import DEFAULT_DTYPE, MeasureData, compute, get_measure, parse_dtype
from genlab.store import Store, read_json

Progress = Callable[[int, int, str], None]  # (runs done, runs total, run id)
OnSkip = Callable[[str, str], None]  # (run id, why)
FINAL = "final.pt"
INIT = "init.pt"


def load_state(store: Store, experiment: str, run_id: str, name: str, device: torch.device,
               required: bool) -> dict[str, torch.Tensor] | None:
    """The state_dict `name` of a run, or None if absent and not required."""
    path = store.run_dir(experiment, run_id) / name
    if not path.exists():
        if required:
            raise FileNotFoundError(f"run {experiment}/{run_id} has no checkpoint {name} at {path}; train it with "
                                    "record.checkpoint = 'final' (and record.save_init = true for init.pt)")
        return None
    try:  # tensors only: a pickle naming any other global is refused, never run
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        raise ValueError(f"run {experiment}/{run_id}: {path} is not a file of plain tensors "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); `genlab run` redoes the run "
                         "once its folder is deleted") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"run {experiment}/{run_id}: {path} is not a state_dict (name → tensor)")
    return state


def run_options(config, names: list[str]) -> dict[str, dict[str, Any]]:
    """The run's own record.measure_options for `names`, typed (JSON → e.g. a SharpnessConfig)."""
    from genlab.registry import options_model

    return {name: dict(options_model(get_measure(name), name).model_validate(opts))
            for name, opts in config.record.measure_options.items() if name in names}


def measure_run(store: Store, experiment: str, run_id: str, names: list[str], device: torch.device,
                max_samples: int | None = None, lease=None, dtype: str = DEFAULT_DTYPE) -> dict[str, float]:
    """Compute `names` on one run's final weights and merge them into its result.json["measures"]."""
    from genlab.spec import RunConfig
    from genlab.train.loop import build

    config = RunConfig.model_validate(store.config(experiment, run_id))
    dataset, model, loss, _ = build(config, device)
    final = load_state(store, experiment, run_id, FINAL, device, required=True)
    init = load_state(store, experiment, run_id, INIT, device, required=False)
    model.load_state_dict(final)
    data = MeasureData.from_dataset(dataset, loss, init_state=init, max_samples=max_samples)
    try:
        values = compute(names, model, data, device=device, dtype=parse_dtype(dtype),
                         options=run_options(config, names))
    except ValueError as e:
        raise ValueError(f"run {experiment}/{run_id}: {e}") from e
    store.update_result(experiment, run_id, "measures", values, lease=lease)
    return values


Outcome = tuple[str, "dict[str, float] | None", "str | None"]  # (run id, its values, or why it was skipped)


def claim_and_measure(store: Store, experiment: str, run_id: str, names: list[str], device: torch.device,
                      max_samples: int | None, dtype: str) -> Outcome:
    """Measure one run while holding its lease, unless it is damaged, not completed or held by another worker."""
    try:
        with store.claim(experiment, run_id) as lease:
            if (damage := store.damage(experiment, run_id)) is not None:
                store.warn(experiment, run_id, damage)
                return run_id, None, f"damaged ({damage})"
            result = store.run_dir(experiment, run_id) / "result.json"
            status = read_json(result, dict).get("status")
            if not isinstance(status, str):
                raise ValueError(f"{result}: no status (a finished run's result.json has one)")
            if status != "completed":
                return run_id, None, f"{status}: no measures on its weights"
            return run_id, measure_run(store, experiment, run_id, names, device, max_samples, lease, dtype), None
    except Busy as e:
        return run_id, None, f"claimed by {e.holder.describe()}"


def _init_worker(threads: int, parent_pid: int) -> None:
    from genlab.runtime import setup_worker
    from genlab.executors.lifeline import die_with_parent

    die_with_parent(parent_pid)
    setup_worker(threads)


def _in_worker(root: str, experiment: str, run_id: str, names: list[str], device: str, max_samples: int | None,
               dtype: str) -> Outcome:
    return claim_and_measure(Store(root), experiment, run_id, names, torch.device(device), max_samples, dtype)


def _outcomes(store: Store, experiment: str, todo: list[str], names: list[str], device: str,
              max_samples: int | None, dtype: str, workers: int, threads: int | None) -> Iterator[Outcome]:
    """Each run's outcome as it is ready: in this process in order, or from a pool in completion order. A run
    that fails raises here (the pool's pending runs are cancelled; the ones measured are stored)."""
    if workers <= 1:
        for rid in todo:
            yield claim_and_measure(store, experiment, rid, names, torch.device(device), max_samples, dtype)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                             initargs=(threads, os.getpid())) as pool:
        futures = [pool.submit(_in_worker, str(store.root), experiment, rid, names, device, max_samples, dtype)
                   for rid in todo]
        try:
            for f in as_completed(futures):
                yield f.result()
        finally:
            for f in futures:
                f.cancel()


def measure_experiment(store: Store, experiment: str, names: list[str], device: str = "cpu",
                       run_ids: list[str] | None = None, progress: Progress | None = None,
                       max_samples: int | None = None, on_skip: OnSkip | None = None,
                       dtype: str = DEFAULT_DTYPE, workers: int = 1, threads: int | None = None
                       ) -> dict[str, dict[str, float]]:
    """Compute measures on every finished run of `experiment` (or the given `run_ids`) and store them.

    Args:
      names: registered measure names; all are checked before any run is touched.
      device: "cpu", "cuda", "cuda:1", ...
      run_ids: a subset of finished runs (default: all finished runs).
      progress: called after each run with (done, total, run_id).
      max_samples: measure on the first rows of each split only (default: the whole splits).
      on_skip: told (run_id, why) of each run left out: damaged, diverged, or claimed by another worker.
      dtype: "float32" (default) or "float64", the precision of the passes over the data (compute()).
      workers: processes measuring runs at once (1: this process, the runs in order; more: each run is
        reported as it finishes).
      threads: torch threads per worker process (default: the CPU's cores shared among the workers).

    Returns:
      {run_id: {measure key: value}} for the runs measured.
    """
    if workers < 1 or (threads is not None and threads < 1):
        raise ValueError(f"workers and threads must be at least 1, got workers={workers}, threads={threads}")
    for name in names:
        get_measure(name)  # unknown names fail here, listing the known ones
    parse_dtype(dtype)  # and so does a bad dtype
    dev = torch.device(device)
    if experiment not in store.experiments():
        raise KeyError(f"no experiment {experiment!r} in store {store.root} "
                       f"(present: {', '.join(store.experiments()) or 'none'})")
    done = store.run_ids(experiment)
    missing = [r for r in (run_ids or []) if r not in set(done)]
    if missing:
        raise KeyError(f"experiment {experiment!r} has no finished run {missing[0]!r}; finished runs: "
                       f"{', '.join(done) or 'none'}")
    todo = done if run_ids is None else list(run_ids)
    skip = on_skip or (lambda rid, why: None)
    out = {}
    for i, (rid, values, why) in enumerate(_outcomes(store, experiment, todo, names, str(dev), max_samples, dtype,
                                                     workers, threads)):
        if values is None:
            skip(rid, why)
        else:
            out[rid] = values
        if progress:
            progress(i + 1, len(todo), rid)
    return out
