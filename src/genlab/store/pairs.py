"""Values of pairs of runs, stored beside the runs: one JSON file per pair, written atomically, never unpickled.

    <root>/<experiment>/.pairs/<run_a>--<run_b>.json   {"run_a", "run_b", "by", "values": {...}, "options"}

Read back two ways: `pair_results` (one row per pair, both run ids) and `with_pair_means`, which adds to each
run's row of `Store.results` the mean over the pairs of its config point (the analysis then ranks pair measures
beside the others: one value per config point, the mean over its pairs). Which pairs: `seed_pairs` (runs that
differ in their seed, or spawned children that differ in their spawn seed).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

from genlab.store.files import read_json, write_json

PAIRS_DIR = ".pairs"
PairId = tuple[str, str]


BY = {"seed": ("seed",), "spawn": ("events.spawn_seed",)}  # what the two runs of a pair differ in
NOISE = ("seed", "events.spawn_seed")  # a run's config point: its config without these


def point_key(config: dict[str, Any], without: tuple[str, ...] = NOISE) -> str:
    """The config point of a run: its config without the dotted fields `without` (default: its seeds), as
    canonical JSON."""
    out = json.loads(json.dumps(config))
    for dotted in without:
        *parents, last = dotted.split(".")
        table = out
        for k in parents:
            table = table.get(k, {}) if isinstance(table, dict) else {}
        if isinstance(table, dict):
            table.pop(last, None)
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def seed_pairs(configs: dict[str, dict[str, Any]], max_pairs: int | None = None, by: str = "seed") -> list[PairId]:
    """Pairs of run ids with equal configs but for `by`'s field — "seed" (init and data order) or "spawn"
    (events.spawn_seed: two children of one parent, Frankle et al.) — lower value first; within a point, pairs
    in the order (s0, s1), (s0, s2), …, (s1, s2), … and at most `max_pairs` of them. With "spawn", only runs
    that spawn (events.spawn_epoch set) pair."""
    if by not in BY:
        raise ValueError(f"pairs.by must be one of {', '.join(BY)}, got {by!r}")
    field = BY[by][0]
    groups: dict[str, list[tuple[int, str]]] = {}
    for rid, cfg in configs.items():
        if by == "spawn" and (cfg.get("events") or {}).get("spawn_epoch") is None:
            continue
        value = cfg.get("seed", 0) if field == "seed" else (cfg.get("events") or {}).get("spawn_seed", 0)
        groups.setdefault(point_key(cfg, BY[by]), []).append((int(value), rid))
    out: list[PairId] = []
    for members in groups.values():
        combos = list(itertools.combinations(sorted(members), 2))
        out += [(a[1], b[1]) for a, b in combos[:max_pairs]]
    return sorted(out)


def pair_path(root: Path, experiment: str, pair: PairId) -> Path:
    return Path(root) / experiment / PAIRS_DIR / f"{pair[0]}--{pair[1]}.json"


def options_digest(measures: list[str], options: dict[str, dict[str, Any]], dtype: str,
                    max_samples: int | None) -> str:
    text = json.dumps([sorted(measures), options, dtype, max_samples], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def write_pair(root: Path, experiment: str, pair: PairId, by: str, values: dict[str, float], digest: str,
               options: dict[str, Any]) -> None:
    """Store `values` of `pair` (merged over the values stored before) with both run ids and the options."""
    path = pair_path(root, experiment, pair)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = read_json(path) if path.exists() else {}
    write_json(path, {"run_a": pair[0], "run_b": pair[1], "by": by, "values": {**old.get("values", {}), **values},
                      "digest": digest, "options": options})


def stored_digest(root: Path, experiment: str, pair: PairId) -> str | None:
    """The options digest of a stored pair (None: not stored)."""
    path = pair_path(root, experiment, pair)
    return read_json(path).get("digest") if path.exists() else None


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
    pairs whose first run has the run's config point (NaN where its point has no pair). The point is the config
    without what the pairs differ in: seed pairs average over a point's seeds; spawn pairs (children of one
    parent) keep each parent seed apart — one pair, one value per parent. Unchanged when the experiment has no
    pairs."""
    if results.empty or not (Path(store.root) / experiment / PAIRS_DIR).is_dir():
        return results
    pairs = pair_results(store.root, experiment)
    if pairs.empty:
        return results
    cols = [c for c in pairs.columns if c not in ("run_a", "run_b", "by")]
    without = BY.get(str(pairs["by"].iloc[0]), NOISE)  # a spec pairs one way ([pairs] by)
    keys = {}
    for rid in set(pairs["run_a"]) | set(results["run_id"]):
        try:
            keys[rid] = point_key(store.config(experiment, rid), without)
        except (OSError, ValueError):
            keys[rid] = None
    pairs = pairs.assign(point=pairs["run_a"].map(keys))
    means = pairs.groupby("point")[cols].mean(numeric_only=True)
    point = results["run_id"].map(keys)
    added = means.reindex(point.to_numpy())
    added.index = results.index
    return results.assign(**{c: added[c] for c in cols if c in added.columns and c not in results.columns})
