"""Which measure predicts generalization? Statistics of a measure μ against the generalization gap over the
finished runs of a sweep — a registry of pure functions of a `Sample` (one measure over the kept runs).

    from genlab.analysis import analyze
    a = analyze(Store("runs").results("measure_ranking"))        # every recorded measure, default gap
    a.table                                                       # one row per measure: n, τ, p, Ψ, CMI, sign-error
    analyze(df, measures=["dist_from_init"], gap="test_loss - train_loss").table

Statistics (each a registered `fn(sample) -> {column: value}`; `[axis]` columns are per-axis details):
    kendall_tau      τ, p                        Kendall 1938 (scipy)
    granulated_psi   Ψ, ψ per axis               Jiang et al. 2020 §3
    cmi_pgdl         CMI ×100, PGDL's program    Jiang et al. 2020b (PGDL competition)
    cmi_jiang        CMI for |S| = 0, 1, 2       Jiang et al. 2020 §3
    sign_error       mean, p90, max over envs    Dziugaite et al. 2020

The gap is a formula of result columns (`genlab.analysis.gap`), `test_error - train_error` by default; the
hyperparameter axes are the config columns that vary; runs that missed the sweep's stop criterion are left
out and counted (`genlab.analysis.sweep`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from genlab.registry import Registry

StatisticFn = Callable[..., "dict[str, float]"]
_STATISTICS: Registry[StatisticFn] = Registry("statistic")
register_statistic = _STATISTICS.register
get_statistic = _STATISTICS.get
list_statistics = _STATISTICS.names

# what each main column is, for tables and the report (every number says which form it is)
COLUMNS = {
    "n": "runs with a finite value of the measure",
    "tau": "Kendall's τ-b of μ and the gap over all runs",
    "tau_p": "two-sided p-value of τ (scipy)",
    "psi": "granulated Ψ: τ within one-axis groups, mean per axis, then over axes (Jiang et al. 2020 §3)",
    "cmi_pgdl_x100": "CMI ×100 as PGDL 2020's scoring program: min over ordered pairs of two axes",
    "cmi_k0": "normalized MI, no conditioning (Jiang et al. 2020 table, |S| = 0)",
    "cmi_k1": "normalized CMI, min over one conditioning axis (Jiang et al. 2020, |S| = 1)",
    "cmi_k2": "normalized CMI, min over two conditioning axes (Jiang et al. 2020, |S| = 2)",
    "sign_mean": "robust sign-error, mean over one-axis environments (Dziugaite et al. 2020)",
    "sign_p90": "robust sign-error, 90th percentile over environments",
    "sign_max": "robust sign-error, worst environment",
    "sign_envs": "environments with a gap difference beyond test-set noise",
    "sign_envs_noise": "environments left out: every gap difference within noise",
}
ORDER = ("kendall_tau", "granulated_psi", "cmi_pgdl", "cmi_jiang", "sign_error")  # the table's column order
SORT_BY = "cmi_pgdl_x100"  # the ranking's order: PGDL's score, as the competition ranked its entries


@dataclass(frozen=True)
class Analysis:
    """table: one row per measure (`measure`, `n`, then each statistic's columns, `[axis]` details last);
    sweep: what was analyzed (axes, kept runs, `excluded`: reason → count)."""

    table: pd.DataFrame
    sweep: "Sweep"

    def main(self) -> pd.DataFrame:
        """The table without per-axis detail columns."""
        return self.table[[c for c in self.table.columns if "[" not in c]]

    def to_dict(self) -> dict:
        sw = self.sweep
        rows = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
                for r in self.table.to_dict(orient="records")]
        return {"gap": sw.gap_text, "axes": {a: [str(v) for v in sw.levels[a]] for a in sw.axes},
                "runs": len(sw.runs), "excluded": sw.excluded, "columns": COLUMNS, "measures": rows}


def analyze(results: pd.DataFrame, measures: list[str] | None = None, gap: str | None = None,
            statistics: list[str] | None = None, axes: list[str] | None = None,
            n_test: int | None = None) -> Analysis:
    """Every statistic of every measure against the gap, over the runs of `results` that reached their stop
    criterion. measures: result columns (default: every column a registered measure wrote); gap: a formula
    (default `test_error - train_error`); statistics: registered names (default all); axes: config columns
    (default: those that vary); n_test: the test-set size, when the store does not record it (sign-error).

    Returns an `Analysis`, its table sorted by PGDL's CMI (descending). Raises ValueError naming the field.
    """
    from genlab.analysis.gap import DEFAULT_GAP
    from genlab.analysis.sweep import measure_columns, sample, sweep

    sw = sweep(results, gap or DEFAULT_GAP, axes)
    if n_test is not None:
        sw = _with_n_test(sw, n_test)
    if measures is None:
        from genlab.measures import list_measures
        from genlab.measures.pairs import list_pair_measures

        measures = measure_columns(sw.runs, list_measures() + list_pair_measures())
        if not measures:
            raise ValueError("no measure columns in the results; record some (record.measures) or name "
                             "result columns with --measures")
    measures = [c for m in measures for c in _expand(sw.runs, m)]
    names = statistics or [n for n in ORDER if n in _STATISTICS] + [n for n in list_statistics() if n not in ORDER]
    fns = [(name, get_statistic(name)) for name in names]
    rows = []
    for m in measures:
        s = sample(sw, m)
        row: dict = {"measure": m, "n": len(s.mu)}
        for _, fn in fns:
            row.update(fn(s))
        rows.append(row)
    table = pd.DataFrame(rows)
    table = table[[c for c in table.columns if "[" not in c] + [c for c in table.columns if "[" in c]]
    if SORT_BY in table.columns:
        table = table.sort_values(SORT_BY, ascending=False, na_position="last", kind="stable")
    return Analysis(table.reset_index(drop=True), sw)


def _expand(runs: pd.DataFrame, name: str) -> list[str]:
    """A column as itself; a measure that wrote several (`pacbayes_flatness` → `pacbayes_flatness.sigma`, …)
    as all of them; anything else as itself (`sample` then names the columns there are)."""
    if name in runs.columns:
        return [name]
    return [c for c in runs.columns if c.startswith(name + ".")] or [name]


def _with_n_test(sw, n_test: int):
    from dataclasses import replace

    if n_test < 1:
        raise ValueError(f"n_test must be a positive test-set size, got {n_test}")
    return replace(sw, n_test=np.full(len(sw.runs), float(n_test)))


from genlab.analysis import cmi, kendall, sign_error  # noqa: E402,F401  (registers the statistics)
from genlab.analysis.sweep import Sample, Sweep  # noqa: E402,F401
