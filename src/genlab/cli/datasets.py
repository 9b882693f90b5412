"""`genlab datasets …`: fetch the downloadable image sets and list what is on disk.

Mounted by the main CLI (genlab.cli) as `genlab datasets`. Imports of genlab.data (and so torch) happen inside the
commands, so `genlab --help` stays instant.
"""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Download and list data files (under $GENLAB_DATA, default ~/.cache/genlab/data).")
console = Console(stderr=True)
out = Console()


def _fail(msg: str) -> None:
    console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def fetch(name: Optional[str] = typer.Argument(None, help="cifar10, mnist or fashion_mnist"),
          all_: bool = typer.Option(False, "--all", help="Fetch every downloadable data set.")) -> None:
    """Download a data set's files from their canonical sources and check each SHA-256."""
    from genlab.data import files

    if not name and not all_:
        _fail(f"name a data set ({', '.join(sorted(files.SOURCES))}) or pass --all")
    names = sorted(files.SOURCES) if all_ else [name]
    for n in names:
        try:
            paths = files.fetch(n)
        except KeyError as e:
            _fail(str(e.args[0]))
        except (files.DataFileError, files.ChecksumError) as e:
            _fail(str(e))
        for p in paths:
            out.print(f"[green]ok[/] {n}: {p}", highlight=False)


@app.command("ls")
def ls(check: bool = typer.Option(False, "--check", help="Hash every present file (slower).")) -> None:
    """Show the data root and, per data set, which files are present (and, with --check, correct)."""
    from genlab.data import files, list_datasets

    root = files.data_root()
    out.print(f"data root: {root}", highlight=False, soft_wrap=True)
    table = Table("dataset", "file (under the data root)", "state", "MB")
    colour = {"ok": "green", "present": "green", "missing": "yellow", "bad sha256": "red"}
    for n in sorted(files.SOURCES):
        for fname, path, state in files.status(n, root, check=check):
            size = f"{path.stat().st_size / 1e6:.1f}" if path.is_file() else ""
            table.add_row(n, f"{n}/{fname}", f"[{colour[state]}]{state}[/]", size)
    out.print(table)
    offline = [d for d in list_datasets() if d not in files.SOURCES]
    out.print(f"always available (no files): {', '.join(offline)}", highlight=False)
