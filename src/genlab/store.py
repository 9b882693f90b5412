"""The run store: one folder per run, the only state genlab keeps.

    <root>/<experiment>/<run_id>/
        config.json     the resolved RunConfig (its canonical JSON hashes to run_id)
        meta.json       provenance: spec file and text, profile, sweep point, git hash, versions, host, device
        metrics.jsonl   one JSON object per epoch (epoch 0 = at initialization)
        result.json     status, stop reason, final metrics, wall time, per-class accuracy, data facts, measures
        init.pt, final.pt, epoch_<e>.pt   state_dicts (optional)
        data_info.pt    the data set's tensors (label-corruption mask, true labels), when it has any
        DONE            the completion marker, written last

Every whole file is written atomically (temp file + rename), so a killed run leaves no half-written file
that looks finished; a run folder without DONE is redone from scratch. The root is `--store`, else
$GENLAB_STORE, else ./runs.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from genlab.omitted import with_omitted_defaults  # old and new runs: the same config columns

DONE = "DONE"


def default_root() -> Path:
    return Path(os.environ.get("GENLAB_STORE", "runs"))


def _clean(obj: Any) -> Any:
    """JSON-safe: non-finite floats become None (JSON has no NaN/inf)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(_clean(obj), indent=1, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


class RunWriter:
    """Writes one run's files. Created by `Store.start`; `finish` writes result.json, then DONE."""

    def __init__(self, path: Path):
        self.path = path
        self._metrics = open(path / "metrics.jsonl", "a")

    def log(self, row: dict[str, Any]) -> None:
        """Append one epoch's metrics (flushed, so `genlab` can show progress of a live run)."""
        self._metrics.write(json.dumps(_clean(row), sort_keys=True) + "\n")
        self._metrics.flush()

    def save_state(self, name: str, state: dict[str, Any]) -> None:
        import io

        import torch

        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write(self.path / f"{name}.pt", buf.getvalue())

    def finish(self, result: dict[str, Any]) -> None:
        self._metrics.close()
        write_json(self.path / "result.json", result)
        atomic_write(self.path / DONE, b"")

    def close(self) -> None:
        self._metrics.close()


class Store:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_root()

    def run_dir(self, experiment: str, run_id: str) -> Path:
        return self.root / experiment / run_id

    def is_done(self, experiment: str, run_id: str) -> bool:
        return (self.run_dir(experiment, run_id) / DONE).exists()

    def start(self, config_json: str, experiment: str, run_id: str, meta: dict[str, Any]) -> RunWriter:
        """A fresh folder for a run; an unfinished one from a killed attempt is removed first."""
        d = self.run_dir(experiment, run_id)
        if (d / DONE).exists():
            raise FileExistsError(f"run {experiment}/{run_id} is already finished; delete {d} to redo it")
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        atomic_write(d / "config.json", (json.dumps(json.loads(config_json), indent=1, sort_keys=True) + "\n").encode())
        write_json(d / "meta.json", meta)
        return RunWriter(d)

    def update_result(self, experiment: str, run_id: str, key: str, values: dict[str, Any]) -> None:
        """Merge `values` into result.json[key] (e.g. measures computed after training), atomically."""
        path = self.run_dir(experiment, run_id) / "result.json"
        result = read_json(path)
        result.setdefault(key, {}).update(values)
        write_json(path, result)

    # ---- queries -------------------------------------------------------------------------------------------

    def experiments(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def run_ids(self, experiment: str, done_only: bool = True) -> list[str]:
        d = self.root / experiment
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and (not done_only or (p / DONE).exists()))

    def _select(self, experiment: str, run_ids: Iterable[str] | None) -> list[str]:
        if experiment not in self.experiments():
            known = ", ".join(self.experiments()) or "none"
            raise KeyError(f"no experiment {experiment!r} in store {self.root} (present: {known})")
        done = self.run_ids(experiment)
        return done if run_ids is None else [r for r in run_ids if r in set(done)]

    def config(self, experiment: str, run_id: str) -> dict[str, Any]:
        return read_json(self.run_dir(experiment, run_id) / "config.json")

    def results(self, experiment: str, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """One row per finished run: run_id, one column per config field (dotted), then result fields."""
        rows = []
        for rid in self._select(experiment, run_ids):
            d = self.run_dir(experiment, rid)
            res = read_json(d / "result.json")
            final, measures = res.pop("final", {}), res.pop("measures", {})
            facts = {f"data_info.{k}": v for k, v in res.pop("data", {}).items()}
            per_class = {f"per_class.{k}": tuple(v) for k, v in res.pop("per_class_accuracy", {}).items()}
            rows.append({"run_id": rid, **flatten(with_omitted_defaults(read_json(d / "config.json"))), **res, **final, **measures,
                         **facts, **per_class})
        return pd.DataFrame(rows)

    def history(self, experiment: str, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """One row per (run, epoch): run_id, the config columns, then the per-epoch metrics."""
        frames = []
        for rid in self._select(experiment, run_ids):
            d = self.run_dir(experiment, rid)
            m = pd.read_json(d / "metrics.jsonl", lines=True, dtype=False)
            cfg = flatten(with_omitted_defaults(read_json(d / "config.json")))
            frames.append(m.assign(run_id=rid, **{k: [v] * len(m) for k, v in cfg.items()}))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def sql(self, experiment: str, query: str, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Run SQL (DuckDB) over two tables of the experiment: `results` (one row per run) and `history`
        (one row per run and epoch). Dotted config columns need quotes: SELECT "init.std", avg(test_error) ..."""
        import duckdb

        con = duckdb.connect()
        con.register("results", self.results(experiment, run_ids))
        if "history" in query:
            con.register("history", self.history(experiment, run_ids))
        return con.execute(query).df()


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"init": {"std": 0.1}} → {"init.std": 0.1}: the config as dotted columns (lists become tuples, hashable)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out
