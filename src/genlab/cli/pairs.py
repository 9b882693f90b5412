"""`genlab pairs SPEC...`: pair measures (mode connectivity, CKA) on the pairs of runs a spec's [pairs] names."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from genlab.cli import ProfileOpt, StoreOpt, UserError, _store, app, console, load_spec, out


def measure_spec_pairs(exp, st, quiet: bool = False, measures: list[str] | None = None, device: str = "cpu",
                       redo: bool = False) -> int:
    """Measure the pairs of `exp`'s finished runs its [pairs] table asks for (or `measures` instead); returns the
    number of pairs measured now. Progress on stderr unless `quiet`."""
    from genlab.executors.pairs import measure_pairs
    from genlab.spec.pairs import PairSpec

    table = dict(exp.pairs or {})
    if measures:
        table = {**table, "measures": measures,
                 "measure_options": {k: v for k, v in table.get("measure_options", {}).items() if k in measures}}
    if not table.get("measures"):
        raise UserError(f"{exp.name}: the spec has no [pairs] table; name pair measures with --measures")
    spec = PairSpec.model_validate(table)
    if exp.name not in st.experiments():
        raise UserError(f"{exp.name}: no runs in store {st.root}; `genlab run` it first")
    from rich.progress import Progress

    with Progress(console=console, disable=quiet) as bar:
        task = bar.add_task(f"{exp.name}: pairs", total=None)
        done = measure_pairs(st, exp.name, spec, run_ids=exp.run_ids, device=device, redo=redo,
                             progress=lambda i, n, p: bar.update(task, completed=i, total=n))
    return len(done)


@app.command()
def pairs(specs: list[Path] = typer.Argument(..., help="Spec TOML files (each with a pairs table)."),
          profile: str = ProfileOpt, store: Optional[Path] = StoreOpt,
          measures: Optional[str] = typer.Option(None, "--measures", "-m", help="Comma-separated pair measures "
                                                 "(default: the spec's pairs.measures)."),
          device: str = typer.Option("cpu", help="cpu, cuda, cuda:N."),
          redo: bool = typer.Option(False, "--redo", help="Measure pairs stored before with these options again.")):
    """Measure pairs of runs (same config, different seed): mode connectivity, CKA. Values are stored with both run
    ids (<store>/<experiment>/.pairs/) and appear in `genlab results`/`analyze` as each config point's mean."""
    st = _store(store)
    names = [m.strip() for m in measures.split(",") if m.strip()] if measures else None
    for spec in specs:
        exp = load_spec(spec, profile)
        n = measure_spec_pairs(exp, st, measures=names, device=device, redo=redo)
        out.print(f"{exp.name}: measured {n} pairs; see `genlab results {exp.name}`", highlight=False)
