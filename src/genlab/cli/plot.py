"""`genlab plot`: any column against any other (one point per run, final or at an epoch), or learning curves."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from genlab.cli import StoreOpt, WhereOpt, app, out


@app.command()
def plot(experiment: str,
         x: Optional[str] = typer.Option(None, "--x", help="Column on the x axis: config (optim.lr), metric "
                                                          "(test_error) or measure. With --y: one point per run."),
         y: Optional[str] = typer.Option(None, "--y", help="Column on the y axis."),
         hue: Optional[str] = typer.Option(None, "--hue", "--by", help="Column whose values get one colour each."),
         fit: bool = typer.Option(False, "--fit", help="Least-squares line per --hue group (slope ± s.e.)."),
         epoch: Optional[int] = typer.Option(None, "--epoch", help="Values at this epoch (default: final)."),
         where: Optional[str] = WhereOpt,
         metrics: str = typer.Option("train_loss,test_loss", help="Without --x/--y: metrics per epoch, one panel."),
         out_file: Optional[Path] = typer.Option(None, "--out", help="Output file (default figures/<exp>_….png)."),
         store: Optional[Path] = StoreOpt, log_x: bool = False, log_y: bool = False):
    """Draw --y against --x, one point per run; without --x/--y, learning curves.

    Points are coloured by --hue, with a least-squares line per colour (--fit); the curves are the --metrics
    per epoch, one colour per --hue value. --where keeps the rows (points, or runs for curves)."""
    from genlab.api import plot as draw

    if x is not None and y is not None:
        default = Path("figures") / f"{experiment}_{y}_vs_{x}{'' if epoch is None else f'_e{epoch}'}.png"
    else:
        default = Path("figures") / f"{experiment}_curves.png"
    path = out_file or default
    fig = draw(experiment, x=x, y=y, hue=hue, fit=fit, epoch=epoch, where=where, store=store,
               metrics=[m for m in metrics.split(",") if m], log_x=log_x, log_y=log_y, out=path)
    n = sum(len(c.get_offsets()) for ax in fig.axes for c in ax.collections) if x is not None else None
    out.print(f"wrote {path}" + (f" ({n} runs)" if n is not None else ""), highlight=False, markup=False, soft_wrap=True)
