"""`genlab analyze EXP...`: which recorded measure predicts the generalization gap (genlab.analysis)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from genlab.cli import StoreOpt, UserError, _store, app, console, out
from genlab.cli.output import human_table

FORMATS = ("table", "csv", "json")


def _split(text: Optional[str]) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@app.command()
def analyze(experiments: list[str] = typer.Argument(..., help="Experiments in the store (their runs are pooled)."),
            measures: Optional[str] = typer.Option(None, "--measures", "-m", help="Comma-separated result columns "
                                                   "(default: every column a registered measure wrote)."),
            gap: Optional[str] = typer.Option(None, "--gap", help="Formula of result columns: names, numbers, "
                                              "+ - * / ( ) (default: test_error - train_error)."),
            statistics: Optional[str] = typer.Option(None, "--statistics", help="Comma-separated registered "
                                                     "statistics (default: all)."),
            axes: Optional[str] = typer.Option(None, "--axes", help="Comma-separated config columns (default: "
                                               "those that vary)."),
            n_test: Optional[int] = typer.Option(None, "--n-test", help="Test-set size, for stores that do not "
                                                 "record data_info.n_test (sign-error's Hoeffding weights)."),
            fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
            store: Optional[Path] = StoreOpt):
    """Rank measures by how well they predict the gap: Kendall τ, granulated Ψ, CMI (PGDL's and Jiang et al.'s
    forms) and robust sign-error, over the runs that reached their stop criterion (the others are counted)."""
    import pandas as pd

    from genlab.analysis import COLUMNS, analyze as run_analysis

    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    st = _store(store)
    results = pd.concat([st.results(e) for e in experiments], ignore_index=True)
    a = run_analysis(results, measures=_split(measures), gap=gap, statistics=_split(statistics), axes=_split(axes),
                     n_test=n_test)
    if fmt == "csv":
        typer.echo(a.table.to_csv(index=False), nl=False)  # plain text: rich would wrap long lines
    elif fmt == "json":
        typer.echo(json.dumps(a.to_dict(), indent=1))
    else:
        human_table(a.main(), out, title=f"{', '.join(experiments)}: measures ranked by PGDL's CMI",
                    hint=f"--format {'|'.join(f for f in FORMATS if f != 'table')} shows every column")
        sw = a.sweep
        excluded = ", ".join(f"{n} {why}" for why, n in sw.excluded.items()) or "none"
        console.print(f"{len(sw.runs)} runs; excluded: {excluded}; gap = {sw.gap_text}; axes: "
                      f"{', '.join(f'{x} ({len(sw.levels[x])})' for x in sw.axes)}", highlight=False)
        for c in a.main().columns:
            if c in COLUMNS:
                console.print(f"  [bold]{c}[/]: {COLUMNS[c]}", highlight=False)
