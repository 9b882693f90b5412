"""Measuring pairs of runs: the pair measures a spec's `[pairs]` table names (genlab.spec.pairs), on the final
weights of each pair of its finished runs (genlab.store.pairs.seed_pairs), stored with both run ids.

Pairs by "spawn" are Frankle et al.'s (ICML 2020): two children of one parent, trained alike through epoch k
and with their own SGD noise after it (`events.spawn_epoch`, `events.spawn_seed`; genlab.train.setup.spawn).
"""

from __future__ import annotations

from typing import Callable

from genlab.executors.measure import FINAL, load_state
from genlab.spec import RunConfig
from genlab.spec.pairs import PairSpec
from genlab.store.pairs import PairId, options_digest, seed_pairs, stored_digest, write_pair


def measure_pair(store, experiment: str, pair: PairId, spec: PairSpec, device: str = "cpu") -> dict[str, float]:
    """Compute `spec.measures` on the pair's final weights (the data of run_a: the pair shares its config but for
    the seed, and the data split does not depend on it) and store them with both run ids."""
    import torch

    from genlab.measures import MeasureData, parse_dtype
    from genlab.measures.pairs import compute_pair
    from genlab.train.loop import build

    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    models = []
    for rid in pair:
        config = RunConfig.model_validate(store.config(experiment, rid))
        dataset, model, loss, _ = build(config, dev)
        model.load_state_dict(load_state(store, experiment, rid, FINAL, dev, required=True))
        models.append(model)
        if rid == pair[0]:
            data = MeasureData.from_dataset(dataset, loss, max_samples=spec.max_samples)
    try:
        values = compute_pair(spec.measures, models[0], models[1], data, device=dev, dtype=parse_dtype(spec.dtype),
                              options=spec.options())
    except ValueError as e:
        raise ValueError(f"pair {experiment}/{pair[0]}--{pair[1]}: {e}") from e
    write_pair(store.root, experiment, pair, spec.by, values,
               options_digest(spec.measures, spec.measure_options, spec.dtype, spec.max_samples),
               {"measures": spec.measures, "measure_options": spec.measure_options, "dtype": spec.dtype,
                "max_samples": spec.max_samples})
    return values


def measure_pairs(store, experiment: str, spec: PairSpec, run_ids: list[str] | None = None, device: str = "cpu",
                  redo: bool = False, progress: Callable[[int, int, PairId], None] | None = None,
                  on_skip: Callable[[PairId, str], None] | None = None) -> dict[PairId, dict[str, float]]:
    """Measure every pair of the experiment's completed runs (of `run_ids`, if given) that `spec` asks for.

    A pair already stored with the same measures and options is skipped (reported to `on_skip`) unless `redo`;
    a run that did not complete (diverged, stopped on its cap) is paired still — its weights exist — but a run
    without final.pt raises FileNotFoundError naming it. Returns {pair: values} of the pairs measured now."""
    configs = {}
    for rid in store.finished(experiment, run_ids):
        configs[rid] = store.config(experiment, rid)
    pairs = seed_pairs(configs, spec.max_pairs, spec.by)
    digest = options_digest(spec.measures, spec.measure_options, spec.dtype, spec.max_samples)
    out: dict[PairId, dict[str, float]] = {}
    for i, pair in enumerate(pairs, 1):
        if not redo and stored_digest(store.root, experiment, pair) == digest:
            if on_skip:
                on_skip(pair, "measured before with these options")
        else:
            out[pair] = measure_pair(store, experiment, pair, spec, device)
        if progress:
            progress(i, len(pairs), pair)
    return out
