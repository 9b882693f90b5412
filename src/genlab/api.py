"""The notebook API (also `genlab.load`, `genlab.plot`): an experiment's tables, and any column against any other.

    import genlab
    results, history = genlab.load("fig3_4", store="runs")            # one row per run; per (run, epoch)
    fig = genlab.plot("fig3_4", x="optim.lr", y="test_error", hue="events.perturb_std", fit=True,
                      where="train.epochs == 50")                      # a matplotlib Figure
    fig = genlab.plot("fig3_4", hue="events.perturb_std")              # no x/y: learning curves

`where` is a filter in the spec's expression language (genlab.expr, as `--where`): parsed, never evaluated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from genlab import tables


def load(experiment: str, store: str | Path | None = None, *, spec: str | Path | None = None,
         profile: str | None = "default", sets: dict[str, Any] | None = None,
         where: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An experiment's finished runs as two pandas tables.

    Args:
      experiment: its name in the store (a folder under the store root).
      store: the store root (default: $GENLAB_STORE, else ./runs).
      spec, profile, sets: only the runs this spec expands to (with these --set overrides).
      where: keep the runs whose results row satisfies it, e.g. "optim.lr == 0.01 and test_error < 0.2".
    Returns:
      (results, history): results has one row per run (run_id, dotted config columns, final metrics,
      measures); history one row per (run, epoch) with the same config columns and the per-epoch metrics.
    """
    from genlab.store import Store

    st = Store(store)
    ids = None
    if spec is not None:
        from genlab.spec.loader import load as load_spec

        ids = load_spec(spec, profile, sets=sets).run_ids
    results = tables.where(st.results(experiment, ids), where)
    kept = list(results["run_id"]) if "run_id" in results.columns else []
    return results, st.history(experiment, kept)


def points(results: pd.DataFrame, history: pd.DataFrame, *, x: str, y: str, hue: str | None = None,
           epoch: int | None = None, where: str | None = None) -> pd.DataFrame:
    """The rows a scatter of `y` against `x` draws: one per run, final (results) or at `epoch` (history).

    At an epoch, each run's last row there is taken (after a perturbation, if one happened then), with the
    results' other columns (config, final measures) beside it. `where` filters these rows; rows whose x or y
    is not a finite number, or whose hue is missing, are left out. `<split>_accuracy` columns are added.
    """
    from genlab.figures.curves import with_accuracy

    if epoch is None:
        df = results
    else:
        tables.require(history, ["epoch"], "history")
        h = history[history["epoch"] == epoch]
        if h.empty:
            raise ValueError(f"--epoch {epoch}: no run has a row at that epoch (epochs present: "
                             f"{history['epoch'].min()}..{history['epoch'].max()})")
        h = h.groupby("run_id", sort=False).tail(1)
        extra = [c for c in results.columns if c not in h.columns]
        df = h.merge(results[["run_id", *extra]], on="run_id", how="left")
    df = tables.where(with_accuracy(df), where)
    tables.require(df, [x, y] + ([hue] if hue else []))
    ok = np.isfinite(tables.numeric(df, x).to_numpy(float)) & np.isfinite(tables.numeric(df, y).to_numpy(float))
    if hue:
        ok &= df[hue].notna().to_numpy()
    return df[ok].reset_index(drop=True)


def plot(experiment: str, *, x: str | None = None, y: str | None = None, hue: str | None = None,
         fit: bool = False, epoch: int | None = None, where: str | None = None, store: str | Path | None = None,
         metrics: Sequence[str] = ("train_loss", "test_loss"), log_x: bool = False, log_y: bool = False,
         title: str | None = None, out: str | Path | None = None):
    """Draw an experiment from the store; returns the matplotlib Figure (and saves it to `out` if given).

    With `x` and `y`: one point per run (`points`), coloured by `hue`; `fit` draws a least-squares line per
    hue group (slope ± standard error in the legend), or one line when there is no hue.
    Without them: learning curves of `metrics` per epoch, one colour per `hue` value (mean ± std over seeds).
    `where` keeps the rows (runs, or points) that satisfy it.
    """
    from genlab.figures import get_figure

    if (x is None) != (y is None):
        raise ValueError("give both x and y (one point per run) or neither (learning curves)")
    if x is None:
        results, history = load(experiment, store, where=where)
        fig = get_figure("curves")(history, results, panels=[list(metrics)], hue=hue,
                                   title=experiment if title is None else title, log_y=log_y)
    else:
        if epoch is None:  # final values: the results table is enough
            from genlab.store import Store

            results, history = Store(store).results(experiment), pd.DataFrame()
        else:
            results, history = load(experiment, store)
        pts = points(results, history, x=x, y=y, hue=hue, epoch=epoch,
                     where=where)
        if pts.empty:
            raise ValueError(f"no run of {experiment!r} has finite {x!r} and {y!r}"
                             + (f" where {where}" if where else ""))
        at = f" at epoch {epoch}" if epoch is not None else ""
        fig = get_figure("scatter")(history, pts, x=x, y=y, hue=hue, fit=fit, fit_per_hue=bool(hue), log_x=log_x,
                                    log_y=log_y, title=f"{experiment}{at}" if title is None else title)
    if out is not None:
        from genlab.outfiles import write_with

        write_with(out, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"), "--out")
    return fig
