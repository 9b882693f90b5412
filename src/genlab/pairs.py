"""Pairs of runs as an input: which pairs a spec asks for, measuring them, storing and reading the values.

A spec's `[pairs]` table names pair measures (genlab.measures.pairs) and which runs to pair:

    [pairs]
    measures = ["mode_connectivity", "cka"]
    by = "seed"                 # runs whose configs are equal but for the seed (init and data order)
    max_pairs = 1               # per config point, the first pairs in seed order (omit: every pair)
    measure_options = { cka = { debiased = true } }

Values are stored beside the runs, one JSON file per pair, written atomically and never unpickled:

    <root>/<experiment>/.pairs/<run_a>--<run_b>.json   {"run_a", "run_b", "by", "values": {...}, "options"}

and read back two ways: `pair_results` (one row per pair, both run ids) and `with_pair_means`, which adds to each
run's row of `Store.results` the mean over the pairs of its config point (the analysis then ranks pair measures
beside the others: one value per config point, the mean over its seed pairs).

Not yet: Frankle et al.'s spawned pairs (two children trained from one parent's epoch-k weights with different
data orders) need training to start from a stored checkpoint with its own data-order seed, which genlab's
trainer does not have (one `seed` draws both init and order).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any, Callable, Literal

import pydantic
from pydantic import Field

from genlab.runfiles import read_json, write_json

PAIRS_DIR = ".pairs"
PairId = tuple[str, str]


class PairSpec(pydantic.BaseModel):
    """The `[pairs]` table of a spec (checked when the spec loads)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
    measures: list[str] = Field(min_length=1)
    by: Literal["seed"] = "seed"
    max_pairs: int | None = Field(None, ge=1)
    measure_options: dict[str, dict[str, Any]] = {}
    dtype: Literal["float32", "float64"] = "float32"
    max_samples: int | None = Field(None, ge=4)

    @pydantic.model_validator(mode="after")
    def _known(self):
        from genlab.measures.pairs import get_pair_measure
        from genlab.registry import validate_options

        for name in self.measures:
            get_pair_measure(name)  # KeyError listing the known ones
        for name, opts in self.measure_options.items():
            if name not in self.measures:
                raise ValueError(f"measure_options.{name}: {name!r} is not in pairs.measures")
            validate_options(get_pair_measure(name), name, opts, "pair measure")
        return self

    def options(self) -> dict[str, dict[str, Any]]:
        """Typed options per measure (JSON tables → the measures' option types)."""
        from genlab.measures.pairs import get_pair_measure
        from genlab.registry import validate_options

        return {n: validate_options(get_pair_measure(n), n, o, "pair measure") for n, o in
                self.measure_options.items()}


def check_pairs(raw: dict, problems) -> dict[str, Any] | None:
    """The checked `[pairs]` table of a spec (as plain data), or None; each problem added to `problems`."""
    if "pairs" not in raw:
        return None
    try:
        return PairSpec.model_validate(raw["pairs"]).model_dump()
    except (pydantic.ValidationError, KeyError, ValueError) as err:
        if isinstance(err, pydantic.ValidationError):
            from genlab.registry import format_errors

            for loc, msg in format_errors(err):
                problems.add(f"pairs.{loc}", msg)
        else:
            problems.add("pairs", str(err.args[0]) if err.args else str(err))
        return None


def point_key(config: dict[str, Any]) -> str:
    """The config point of a run: its config without the seed, as canonical JSON."""
    return json.dumps({k: v for k, v in config.items() if k != "seed"}, sort_keys=True, separators=(",", ":"))


def seed_pairs(configs: dict[str, dict[str, Any]], max_pairs: int | None = None) -> list[PairId]:
    """Pairs of run ids with equal configs but for the seed, lower seed first; within a point, pairs in the order
    (s0, s1), (s0, s2), …, (s1, s2), … and at most `max_pairs` of them."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for rid, cfg in configs.items():
        groups.setdefault(point_key(cfg), []).append((int(cfg.get("seed", 0)), rid))
    out: list[PairId] = []
    for members in groups.values():
        combos = list(itertools.combinations(sorted(members), 2))
        out += [(a[1], b[1]) for a, b in combos[:max_pairs]]
    return sorted(out)


def pair_path(root: Path, experiment: str, pair: PairId) -> Path:
    return Path(root) / experiment / PAIRS_DIR / f"{pair[0]}--{pair[1]}.json"


def _options_digest(measures: list[str], options: dict[str, dict[str, Any]], dtype: str,
                    max_samples: int | None) -> str:
    text = json.dumps([sorted(measures), options, dtype, max_samples], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def measure_pair(store, experiment: str, pair: PairId, spec: PairSpec, device: str = "cpu") -> dict[str, float]:
    """Compute `spec.measures` on the pair's final weights (the data of run_a: the pair shares its config but for
    the seed, and the data split does not depend on it) and store them with both run ids."""
    import torch

    from genlab.executors.measure import FINAL, load_state
    from genlab.measures import MeasureData, parse_dtype
    from genlab.measures.pairs import compute_pair
    from genlab.spec import RunConfig
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
    path = pair_path(store.root, experiment, pair)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = read_json(path) if path.exists() else {}
    record = {"run_a": pair[0], "run_b": pair[1], "by": spec.by, "values": {**old.get("values", {}), **values},
              "digest": _options_digest(spec.measures, spec.measure_options, spec.dtype, spec.max_samples),
              "options": {"measures": spec.measures, "measure_options": spec.measure_options, "dtype": spec.dtype,
                          "max_samples": spec.max_samples}}
    write_json(path, record)
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
    pairs = seed_pairs(configs, spec.max_pairs)
    digest = _options_digest(spec.measures, spec.measure_options, spec.dtype, spec.max_samples)
    out: dict[PairId, dict[str, float]] = {}
    for i, pair in enumerate(pairs, 1):
        path = pair_path(store.root, experiment, pair)
        if not redo and path.exists() and read_json(path).get("digest") == digest:
            if on_skip:
                on_skip(pair, "measured before with these options")
        else:
            out[pair] = measure_pair(store, experiment, pair, spec, device)
        if progress:
            progress(i, len(pairs), pair)
    return out


def pair_results(root: Path, experiment: str):
    """One row per stored pair: run_a, run_b, by, then the value columns (`<measure>.<key>`)."""
    import pandas as pd

    folder = Path(root) / experiment / PAIRS_DIR
    rows = []
    for path in sorted(folder.glob("*--*.json")) if folder.is_dir() else []:
        rec = read_json(path)
        rows.append({"run_a": rec["run_a"], "run_b": rec["run_b"], "by": rec.get("by", "seed"), **rec["values"]})
    return pd.DataFrame(rows)


def with_pair_means(store, experiment: str, results):
    """`results` (Store.results rows) with each pair-value column added: for each run, the mean over the stored
    pairs whose first run has the run's config point (NaN where its point has no pair). Unchanged when the
    experiment has no pairs."""
    if results.empty or not (Path(store.root) / experiment / PAIRS_DIR).is_dir():
        return results
    pairs = pair_results(store.root, experiment)
    if pairs.empty:
        return results
    cols = [c for c in pairs.columns if c not in ("run_a", "run_b", "by")]
    keys = {}
    for rid in set(pairs["run_a"]) | set(results["run_id"]):
        try:
            keys[rid] = point_key(store.config(experiment, rid))
        except (OSError, ValueError):
            keys[rid] = None
    pairs = pairs.assign(point=pairs["run_a"].map(keys))
    means = pairs.groupby("point")[cols].mean(numeric_only=True)
    point = results["run_id"].map(keys)
    added = means.reindex(point.to_numpy())
    added.index = results.index
    return results.assign(**{c: added[c] for c in cols if c in added.columns and c not in results.columns})
