"""Export an experiment's stored runs to TensorBoard event files or offline W&B runs (`genlab export`).

Both read the store as it is: each run's metrics.jsonl rows become scalars at step = epoch (a row written after
an event, e.g. a perturbation, goes under `<event>/<metric>`: the same epoch holds two values), its final
metrics become `final/<metric>`, and its config becomes hyperparameters. TensorBoard needs the `tensorboard`
extra (`pip install 'genlab[tensorboard]'`; torch.utils.tensorboard, else tensorboardX); W&B the `wandb` extra,
written offline (`wandb sync DIR/wandb/offline-run-*` uploads later). Both are imported only here, when used.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Iterator

from genlab.store import Store
from genlab.tables import flatten

SKIP = ("epoch", "event")  # row keys that are not metrics
SAFE = re.compile(r"[^A-Za-z0-9._=,+\-\[\]]")  # what a folder name keeps; the rest becomes "_"


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def rows(store: Store, experiment: str, run_id: str) -> list[dict[str, Any]]:
    """The run's metrics.jsonl rows, as written."""
    from genlab.store.runfiles import read_jsonl

    return read_jsonl(store.run_dir(experiment, run_id) / "metrics.jsonl")  # errors name the file and line


def scalars(run_rows: list[dict[str, Any]]) -> Iterator[tuple[str, int, float]]:
    """(tag, step, value) for every finite number in the rows: tag = metric, or `<event>/<metric>`."""
    for row in run_rows:
        prefix = f"{row['event']}/" if row.get("event") else ""
        for k, v in row.items():
            if k not in SKIP and _number(v):
                yield prefix + k, int(row["epoch"]), float(v)


def hparam_value(v: Any) -> bool | int | float | str:
    """A config value as the HParams plugin takes it (bool, number or text)."""
    return v if isinstance(v, (bool, int, float, str)) else json.dumps(v)


def hparams_of(configs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per run: the flattened config fields whose values differ across `configs`, and the seed."""
    flat = {rid: flatten(c) for rid, c in configs.items()}
    keys = sorted({k for f in flat.values() for k in f})
    varying = [k for k in keys if k == "seed" or len({json.dumps(f.get(k), sort_keys=True, default=str)
                                                       for f in flat.values()}) > 1]
    return {rid: {k: hparam_value(f.get(k)) for k in varying} for rid, f in flat.items()}


def final_metrics(store: Store, experiment: str, run_id: str) -> dict[str, float]:
    from genlab.store.runfiles import read_json

    result = read_json(store.run_dir(experiment, run_id) / "result.json", dict)
    values = {**result.get("final", {}), **result.get("measures", {})}
    return {f"final/{k}": float(v) for k, v in values.items() if _number(v)}


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams
    except ImportError:
        try:
            from tensorboardX import SummaryWriter
            from tensorboardX.summary import hparams
        except ImportError:
            raise ValueError("TensorBoard export needs the tensorboard package: pip install 'genlab[tensorboard]'") \
                from None
    return SummaryWriter, hparams


def point_label(point: dict[str, Any], seeds: int = 2) -> str:
    """`{"init.scale": 2.0, "seed": 1}` → `scale=2.0_seed=1`: the last part of each swept field and its value
    (the seed only when the sweep has several), safe as a folder name."""
    parts = [f"{k.rsplit('.', 1)[-1]}={json.dumps(v) if isinstance(v, (list, dict)) else v}"
             for k, v in point.items() if k != "seed" or seeds > 1]
    return SAFE.sub("_", "_".join(parts))


def run_name(point: dict[str, Any], run_id: str, seeds: int = 2) -> str:
    """A run's folder name: its sweep point, then the start of its id (unique, and findable in the store)."""
    label = point_label(point, seeds)
    return f"{label}_{run_id[:6]}" if label else run_id


def folder_names(store: Store, experiment: str, ids: list[str]) -> dict[str, str]:
    """run id → `scale=2.0_seed=1_ab12cd` (its sweep point from meta.json, then the start of its id)."""
    points = {}
    for rid in ids:
        try:
            points[rid] = json.loads((store.run_dir(experiment, rid) / "meta.json").read_text()).get("point") or {}
        except (OSError, ValueError):
            points[rid] = {}
    seeds = len({p.get("seed") for p in points.values()})
    return {rid: run_name(points[rid], rid, seeds) for rid in ids}


def to_tensorboard(store: Store, experiment: str, logdir: Path, run_ids: list[str] | None = None) -> list[Path]:
    """One event-file folder per run under `logdir/<sweep point>_<run id[:6]>`: scalars per epoch, HParams,
    final metrics.
    Returns the folders written (open with `tensorboard --logdir LOGDIR`)."""
    SummaryWriter, hparams = _summary_writer()
    ids = run_ids if run_ids is not None else store.finished(experiment)  # damaged: skipped
    hp = hparams_of({rid: store.config(experiment, rid) for rid in ids})
    names = folder_names(store, experiment, ids)
    folders = []
    for rid in ids:
        folder = Path(logdir) / names[rid]
        w = SummaryWriter(log_dir=str(folder))
        run_rows = rows(store, experiment, rid)
        for tag, step, value in scalars(run_rows):
            w.add_scalar(tag, value, global_step=step)
        final = final_metrics(store, experiment, rid)
        last = max((int(r["epoch"]) for r in run_rows), default=0)
        for summary in hparams(hp[rid], final):  # experiment, session start, session end
            w.file_writer.add_summary(summary)
        for tag, value in final.items():
            w.add_scalar(tag, value, global_step=last)
        w.close()
        folders.append(folder)
    return folders


def to_wandb(store: Store, experiment: str, out_dir: Path, run_ids: list[str] | None = None,
             names: dict[str, str] | None = None) -> int:
    """One offline W&B run per stored run under `out_dir/wandb`, named `names[run_id]` (default: its sweep
    point among `run_ids`, then the start of its id); returns how many were written."""
    try:
        import wandb
    except ImportError:
        raise ValueError("W&B export needs wandb: pip install 'genlab[wandb]'") from None
    ids = run_ids if run_ids is not None else store.finished(experiment)  # damaged: skipped
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    names = names or folder_names(store, experiment, ids)  # the sweep point, then the start of the id
    for rid in ids:
        run = wandb.init(project=experiment, name=names[rid], group=experiment, config=store.config(experiment, rid),
                         dir=str(out_dir), mode="offline")
        for i, row in enumerate(rows(store, experiment, rid)):  # W&B steps must increase: the row's index
            prefix = f"{row['event']}/" if row.get("event") else ""
            run.log({"epoch": row["epoch"], **{prefix + k: v for k, v in row.items() if k not in SKIP and _number(v)}},
                    step=i)
        run.summary.update(final_metrics(store, experiment, rid))
        run.finish()
    return len(ids)
