"""Measures on stored runs (`genlab measure`): claim each finished run, rebuild its data and model, load its
checkpoints, compute, and record the values in its result.json (and manifest) while holding its lease.

Each run is measured with its own `record.measure_options` (a spec's `sharpness.cfg.alpha = 1e-3` stays
1e-3 under the key `sharpness.zeta`). Skipped, each with a reason to `on_skip`: damaged runs (see
genlab.integrity), diverged runs (their weights are not a solution), and runs another worker holds now.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from genlab.claims import Busy
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
    return torch.load(path, map_location=device, weights_only=True)


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


def measure_experiment(store: Store, experiment: str, names: list[str], device: str = "cpu",
                       run_ids: list[str] | None = None, progress: Progress | None = None,
                       max_samples: int | None = None, on_skip: OnSkip | None = None,
                       dtype: str = DEFAULT_DTYPE) -> dict[str, dict[str, float]]:
    """Compute measures on every finished run of `experiment` (or the given `run_ids`) and store them.

    Args:
      names: registered measure names; all are checked before any run is touched.
      device: "cpu", "cuda", "cuda:1", ...
      run_ids: a subset of finished runs (default: all finished runs).
      progress: called after each run with (done, total, run_id).
      max_samples: measure on the first rows of each split only (default: the whole splits).
      on_skip: told (run_id, why) of each run left out: damaged, diverged, or claimed by another worker.
      dtype: "float32" (default) or "float64", the precision of the passes over the data (compute()).

    Returns:
      {run_id: {measure key: value}} for the runs measured.
    """
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
    for i, rid in enumerate(todo):
        try:
            with store.claim(experiment, rid) as lease:
                if (damage := store.damage(experiment, rid)) is not None:
                    store.warn(experiment, rid, damage)
                    skip(rid, f"damaged ({damage})")
                elif (status := read_json(store.run_dir(experiment, rid) / "result.json")["status"]) != "completed":
                    skip(rid, f"{status}: no measures on its weights")
                else:
                    out[rid] = measure_run(store, experiment, rid, names, dev, max_samples, lease, dtype)
        except Busy as e:
            skip(rid, f"claimed by {e.holder.describe()}")
        if progress:
            progress(i + 1, len(todo), rid)
    return out
