"""From a results table (one row per run, `Store.results`) to what every statistic reads: the runs that
reached the stop criterion, their gap, their hyperparameter axes as integer codes, and per measure its values.

Axes are the config columns that vary across the kept runs (`optim.lr`, `model.width`, …), read from the
table, never listed by hand. `seed` is the repeat, not an axis: runs that differ only in seed are the same
hyperparameter point (Dziugaite et al. 2020 average over seeds inside an environment; PGDL's hyperparameters
have no seed). `experiment` and `record.*` are bookkeeping, never axes.

A run is excluded, and counted by reason, when it did not finish as `completed` (diverged), when the sweep
has a stop criterion (`train.stop_below_loss`, `train.stop_at_zero_error`) that it did not reach (it ran
out of epochs), or when its gap is not a finite number. Jiang et al. (2020, §2) compare networks trained
to the same cross-entropy; a run that stopped at its epoch cap is not such a network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from genlab.analysis.gap import DEFAULT_GAP, gap_values

CONFIG_ROOTS = ("data", "model", "init", "optim", "schedule", "train", "events", "record", "constraint")
NOT_AXES = ("experiment", "seed")  # bookkeeping and the repeat
NOT_AXIS_ROOTS = ("record",)  # what was recorded, not how the net was trained
REPEAT = "seed"
# result columns that are metrics or bookkeeping, never a default measure (measures come from result.json's
# "measures": their names start with a registered measure's name)
NOT_MEASURES = ("run_id", "status", "stop_reason", "epochs_run", "wall_s", "members", "n_params")


@dataclass(frozen=True)
class Sweep:
    """The runs an analysis uses. n kept runs, k axes.

    runs: (n rows) the kept rows of the results table.  gap: (n,) floats.
    axes: the k varying config columns.  codes: (n, k) int, the index of each run's value in `levels[axis]`.
    repeat: (n,) int codes of the seed.  n_test: test-set size per run (n,) or None when not recorded.
    excluded: reason → number of runs left out.  gap_text: the gap formula.
    """

    runs: pd.DataFrame
    gap: np.ndarray
    axes: tuple[str, ...]
    codes: np.ndarray
    levels: dict[str, list]
    repeat: np.ndarray
    n_test: np.ndarray | None
    excluded: dict[str, int]
    gap_text: str


@dataclass(frozen=True)
class Sample:
    """One measure over the runs where it is finite: what a statistic function receives.

    mu, gap: (m,) floats.  codes: (m, k) ints (axis values).  repeat: (m,) seed codes.
    axes: the k axis names.  n_test: (m,) test-set sizes, or None when the store does not record them.
    """

    mu: np.ndarray
    gap: np.ndarray
    codes: np.ndarray
    repeat: np.ndarray
    axes: tuple[str, ...]
    n_test: np.ndarray | None = None


def is_config(col: str) -> bool:
    return col in NOT_AXES or col.split(".", 1)[0] in CONFIG_ROOTS


def stop_reason_missed(row: pd.Series) -> str | None:
    """Why a run is left out (a short phrase), or None when it reached its sweep's stop criterion."""
    if row.get("status", "completed") != "completed":
        return f"status {row.get('status')}"
    below = row.get("train.stop_below_loss")
    if below is not None and not pd.isna(below):
        return None if row.get("stop_reason") == "train_loss_below" else f"train loss not below {below:g}"
    if bool(row.get("train.stop_at_zero_error", False)):
        return None if row.get("stop_reason") == "zero_train_error" else "train error not 0"
    return None


def _hashable(v):
    """A value usable as a dict key: lists as tuples, missing (None, NaN: a key one run lacks) as "none"."""
    if v is None or (isinstance(v, float) and v != v):
        return "none"
    return tuple(v) if isinstance(v, list) else v


def sweep(results: pd.DataFrame, gap: str = DEFAULT_GAP, axes: list[str] | None = None) -> Sweep:
    """The analysis view of `results`. `axes` overrides the varying config columns (each must be a column).

    Raises ValueError when no run is left, naming the reasons runs were excluded.
    """
    if results.empty:
        raise ValueError("no finished runs to analyze")
    reasons = results.apply(stop_reason_missed, axis=1) if len(results) else pd.Series([], dtype=object)
    g = gap_values(results, gap).to_numpy(dtype=float)
    reasons = reasons.where(reasons.notna() | np.isfinite(g), "gap is not a finite number")
    keep = reasons.isna().to_numpy()
    excluded = {str(k): int(v) for k, v in reasons[~keep].value_counts().items()}
    runs = results[keep].reset_index(drop=True)
    if runs.empty:
        raise ValueError(f"every run was excluded ({excluded}); train longer or loosen the stop criterion")
    if axes is None:
        axes = [c for c in runs.columns if is_config(c) and c not in NOT_AXES
                and c.split(".", 1)[0] not in NOT_AXIS_ROOTS and runs[c].map(_hashable).nunique(dropna=False) > 1]
    for a in axes:
        if a not in runs.columns:
            raise ValueError(f"axis {a!r} is not a column; config columns: "
                             f"{', '.join(c for c in runs.columns if is_config(c))}")
    codes, levels = np.zeros((len(runs), len(axes)), dtype=np.int64), {}
    for j, a in enumerate(axes):
        values = runs[a].map(_hashable)
        uniq = sorted(values.unique(), key=_order)
        codes[:, j] = values.map({v: i for i, v in enumerate(uniq)}).to_numpy()
        levels[a] = uniq
    repeat = (pd.factorize(runs[REPEAT])[0] if REPEAT in runs.columns else np.zeros(len(runs), dtype=np.int64))
    n_test = (pd.to_numeric(runs["data_info.n_test"], errors="coerce").to_numpy()
              if "data_info.n_test" in runs.columns else None)
    return Sweep(runs, g[keep], tuple(axes), codes, levels, np.asarray(repeat), n_test, excluded, gap)


def _order(v):
    """Sort key: numbers by value before anything else by its text."""
    return (0, float(v), "") if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else (1, 0.0, str(v))


def measure_columns(results: pd.DataFrame, names: list[str]) -> list[str]:
    """The numeric result columns that hold a registered measure's value (`name` or `name.key`)."""
    cols = []
    for c in results.columns:
        if is_config(c) or c in NOT_MEASURES or c.split(".", 1)[0] not in names:
            continue
        if pd.to_numeric(results[c], errors="coerce").notna().any():
            cols.append(c)
    return cols


def sample(sw: Sweep, measure: str) -> Sample:
    """The runs of `sw` where `measure` is a finite number."""
    if measure not in sw.runs.columns:
        raise ValueError(f"measure {measure!r} is not a column of the results; measure columns: "
                         f"{', '.join(c for c in sw.runs.columns if not is_config(c))}")
    mu = pd.to_numeric(sw.runs[measure], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(mu)
    return Sample(mu[ok], sw.gap[ok], sw.codes[ok], sw.repeat[ok], sw.axes,
                  None if sw.n_test is None else sw.n_test[ok])
