"""`genlab export`: an experiment's runs as TensorBoard event files and/or offline W&B runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from genlab.cli import StoreOpt, WhereOpt, app, open_store, out


@app.command()
def export(experiment: str,
           tensorboard: Optional[Path] = typer.Option(None, "--tensorboard", help="Folder for event files, one "
                                                      "sub-folder per run (needs genlab[tensorboard])."),
           wandb: Optional[Path] = typer.Option(None, "--wandb", help="Folder for offline W&B runs (needs "
                                                "genlab[wandb]; upload later with `wandb sync`)."),
           where: Optional[str] = WhereOpt, store: Optional[Path] = StoreOpt):
    """Export an experiment's finished runs: scalars per epoch, config as hyperparameters, final metrics."""
    from genlab import export as ex
    from genlab.tables import where as filter_rows

    if tensorboard is None and wandb is None:
        raise ValueError("say where to: --tensorboard DIR and/or --wandb DIR")
    st = open_store(store)
    ids = list(filter_rows(st.results(experiment), where)["run_id"]) if where else st.run_ids(experiment)
    if tensorboard is not None:
        ex.to_tensorboard(st, experiment, tensorboard, ids)
        out.print(f"wrote {len(ids)} runs to {tensorboard} (tensorboard --logdir {tensorboard})", markup=False,
                  highlight=False)
    if wandb is not None:
        ex.to_wandb(st, experiment, wandb, ids)
        out.print(f"wrote {len(ids)} offline W&B runs to {wandb}/wandb (wandb sync {wandb}/wandb/offline-run-*)",
                  markup=False, highlight=False, soft_wrap=True)
