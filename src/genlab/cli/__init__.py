"""The `genlab` command line: parse, call the library, print. Heavy imports (torch) happen inside commands,
so `genlab --help` is instant. Errors a user can fix print as one red line and exit with status 2: `main`
is the one place that turns an exception into that line (`GENLAB_DEBUG=1` shows the traceback instead).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="genlab: specs → runs → store → measures → figures, for the science of generalization.")
console = Console(stderr=True)
out = Console()

StoreOpt = typer.Option(None, "--store", envvar="GENLAB_STORE", help="Run store root (default ./runs).")
ProfileOpt = typer.Option("default", "--profile", "-p", show_default=False,
                          help="Spec profile (default: the spec's `small` if it has one; 'none' for the base).")
SetOpt = typer.Option([], "--set", metavar="KEY=VALUE",
                      help="Override a field, after the profile (repeatable): optim.lr=0.05 (TOML value); a list "
                           "sweeps it: optim.lr=[0.1,0.01]; seeds=[0,1]. A field holding a list: [[..],[..]] sweeps.")
NameOpt = typer.Option(None, "--name", help="Another experiment name, so the variant's runs never pool with the "
                                            "spec's (its runs get their own ids and folder).")
WhereOpt = typer.Option(None, "--where", help="Keep the rows where EXPR holds: \"optim.lr == 0.01 and "
                                              "model.name == 'mlp'\" (genlab.expr: == != < <= > >=, in [..], and/or/not, + - * /).")


def _version(value: bool) -> None:
    if value:
        import genlab

        out.print(f"genlab {genlab.__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print genlab's version and exit.")) -> None:
    """genlab: specs → runs → store → measures → figures, for the science of generalization."""


def _flags_without_type() -> None:
    """typer's --help prints `<bool>` beside every flag, which takes no value: show nothing there."""
    cls = getattr(getattr(typer, "core", None), "TyperOption", None)
    shown = getattr(cls, "display_type_rich", None)
    if shown is None or getattr(shown, "_genlab", False):
        return

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) and getattr(self, "is_bool_flag", True) else shown(self, ctx)

    display_type_rich._genlab = True  # type: ignore[attr-defined]
    cls.display_type_rich = display_type_rich


_flags_without_type()


class UserError(Exception):
    """An error with a message the user can act on."""


DEBUG_HINT = "(GENLAB_DEBUG=1 shows the traceback)"


def _line(msg: str) -> str:
    """One line: newlines and runs of spaces collapsed."""
    return " ".join(str(msg).split())


def _say(label: str, style: str, msg: Any) -> None:
    """One line on stderr: a styled label, then the message as plain text (never read as rich markup)."""
    from rich.text import Text

    console.print(Text.assemble((label, style), " ", _line(msg)), soft_wrap=True)


def _fail(msg: str) -> None:
    _say("error:", "bold red", msg)
    raise typer.Exit(2)


def open_store(root: Optional[Path]):
    from genlab.store import Store

    def warn(experiment: str, run_id: str, damage) -> None:  # one line per damaged run a query leaves out
        console.print(f"[yellow]warning: skipping damaged run {experiment}/{run_id}: {damage}[/]", highlight=False,
                      soft_wrap=True)

    return Store(root, warn=warn)


_store = open_store


def _profile(p: str) -> str | None:
    return None if p == "none" else p


def load_spec(spec: Path, profile: str, sets: list[str] = (), name: Optional[str] = None):
    """The spec's experiment under `profile`, with `--set` overrides and `--name`."""
    from genlab.spec import loader as spec_mod
    from genlab.spec.overrides import parse_sets

    return spec_mod.load(spec, _profile(profile), sets=parse_sets(sets), name=name)


_load = load_spec


from genlab.cli import run as _run_cmd  # noqa: E402,F401  (registers `genlab run` first in --help)


def _table(experiment: str, store: Optional[Path], spec: Optional[Path], profile: str, history: bool):
    st = _store(store)
    ids = _load(spec, profile).run_ids if spec else None
    return st.history(experiment, ids) if history else st.results(experiment, ids)


WIDE_REGISTRY = 120  # columns from which `genlab registry` is one table per kind (name | origin | summary)


@app.command()
def registry(kind: Optional[str] = typer.Argument(None, help="datasets, models, inits, losses, measures, "
                                                            "figures, findings, rules, optimizers, schedules or "
                                                            "constraints (default: all)"),
             name: Optional[str] = typer.Argument(None, help="One entry: print its whole docstring.")):
    """List what is registered (the names a spec may use): where each comes from (module and distribution,
    plugins included) and the summary of its docstring (verbatim)."""
    import inspect

    from rich.text import Text

    from genlab.registry import lookup

    kinds = {"datasets": "dataset", "models": "model", "inits": "init", "losses": "loss", "measures": "measure",
             "figures": "figure", "findings": "finding", "rules": "rule", "optimizers": "optimizer",
             "schedules": "schedule", "constraints": "constraint"}
    if kind is not None and kind not in kinds:
        from genlab.suggest import close

        hint = close(kind, kinds)
        raise UserError(f"unknown kind {kind!r}; choose one of {', '.join(kinds)}"
                        + (f" (did you mean {' or '.join(map(repr, hint))}?)" if hint else ""))
    if name is not None:  # the whole docstring, as written (plain print: no markup, no wrapping)
        print(f"{kind} {name}\n\n{inspect.getdoc(lookup(kinds[kind]).get(name)) or ''}")
        return
    for one in kinds.values():  # every built-in entry first, so plugins are told apart by their origin
        lookup(one)
    narrow = out.width < WIDE_REGISTRY  # one table squeezes the descriptions to a few characters
    for k in [kind] if kind else kinds:
        reg = lookup(kinds[k])
        if narrow:  # each entry: its name and origin, then its description wrapped under it, indented
            from rich.padding import Padding

            out.print(Text(k, style="bold underline"))
            for entry in reg.names():
                summary = " ".join((reg.get(entry).__doc__ or "").strip().split("\n\n")[0].split())
                out.print(Text.assemble((entry, "bold"), "  ", (reg.origin(entry), "dim")), overflow="fold")
                out.print(Padding(Text(summary), (0, 0, 0, 4)))
            continue
        t = Table(title=k, show_header=False, pad_edge=False)
        t.add_column("name", no_wrap=True)
        t.add_column("from", no_wrap=True, style="dim")
        t.add_column("what", overflow="fold")
        for entry in reg.names():
            summary = " ".join((reg.get(entry).__doc__ or "").strip().split("\n\n")[0].split())  # first paragraph
            t.add_row(Text(entry), Text(reg.origin(entry)), Text(summary))  # Text: shown as written, never markup
        out.print(t)


FormatOpt = typer.Option("table", "--format", "-f", help="table (fits the terminal), or csv, json, parquet: "
                                                       "plain, never wrapped or cut.")
OutOpt = typer.Option(None, "--out", "-o", help="Write csv/json/parquet to this file instead of stdout.")


@app.command()
def results(experiment: str, store: Optional[Path] = StoreOpt, fmt: str = FormatOpt,
            out_file: Optional[Path] = OutOpt,
            columns: Optional[str] = typer.Option(None, help="Comma-separated columns to show."),
            where: Optional[str] = WhereOpt,
            spec: Optional[Path] = typer.Option(None, help="Only the runs this spec (and --profile) expands to."),
            profile: str = ProfileOpt, history: bool = typer.Option(False, help="Per-epoch rows instead.")):
    """Print an experiment's results: one row per run (config columns, then metrics)."""
    from genlab.cli.output import emit, results_view
    from genlab.tables import where as filter_rows

    from genlab.notes import annotate

    df = filter_rows(annotate(_table(experiment, store, spec, profile, history), _store(store).root, experiment),
                     where)
    if columns:
        missing = [c for c in columns.split(",") if c not in df.columns]
        if missing:
            from genlab.suggest import unknown

            raise UserError(unknown("--columns: no column", missing[0], df.columns))
        df = df[columns.split(",")]
    elif fmt == "table":  # varying config, then the main metrics; the same config for every run is hidden
        df = results_view(df)
    emit(df, fmt, out_file, out, title=experiment)


@app.command()
def sql(experiment: str, query: str = typer.Argument(..., help='e.g. \'SELECT "init.std", avg(test_loss) FROM '
                                                           'results GROUP BY 1\''),
        store: Optional[Path] = StoreOpt, fmt: str = FormatOpt, out_file: Optional[Path] = OutOpt):
    """SQL over an experiment's tables `results` (per run) and `history` (per run and epoch), via DuckDB."""
    import duckdb

    from genlab.cli.output import emit

    try:
        df = _store(store).sql(experiment, query)
    except duckdb.Error as e:
        raise UserError(f"SQL: {str(e).splitlines()[0]}") from None
    emit(df, fmt, out_file, out)


@app.command()
def figures(specs: list[Path] = typer.Argument(..., help="Spec TOML files."), profile: str = ProfileOpt,
            store: Optional[Path] = StoreOpt,
            out_dir: Path = typer.Option(Path("figures"), "--out", help="Folder for the figures."),
            sets: list[str] = SetOpt, name: Optional[str] = NameOpt, where: Optional[str] = WhereOpt):
    """Draw the figures each SPEC lists, from its runs in the store (run it first)."""
    from genlab.figures import draw, save
    from genlab.tables import where as filter_rows

    st, failed = _store(store), []
    for s in specs:
        exp = load_spec(s, profile, sets, name)
        missing = [r for r in exp.run_ids if not st.has_done(exp.name, r)]  # damaged ones: skipped, warned
        if missing:
            raise UserError(f"{s}: {len(missing)} of {len(exp.runs)} runs are not finished; "
                            f"run `genlab run {s} --profile {exp.profile or 'none'}` first")
        res = filter_rows(st.results(exp.name, exp.run_ids), where)  # --where selects runs
        hist = st.history(exp.name, list(res["run_id"]))
        for i, entry in enumerate(exp.figures):
            stem = entry.get("file", f"{exp.name}_{i}")
            stem = f"{name}_{stem}" if name is not None else stem  # a renamed variant never overwrites the spec's
            try:
                paths = save(draw(entry, hist, res), out_dir, stem)
            except (ValueError, KeyError) as e:  # one figure that cannot be drawn: said, and the others drawn
                _say("figure " + stem + f" ({s}) cannot be drawn:", "red", e)
                failed.append(f"{stem}: {e.args[0] if isinstance(e, KeyError) else e}")
                continue
            out.print(f"wrote {', '.join(map(str, paths))}")
    if failed:
        raise UserError(f"{len(failed)} figure{'s' * (len(failed) > 1)} could not be drawn (the others were); "
                        f"first: {failed[0]}")


@app.command()
def measure(experiment: str, measures: str = typer.Option(..., "--measures", "-m",
                                                          help="Comma-separated registered measures."),
            store: Optional[Path] = StoreOpt, device: str = typer.Option("cpu", help="cpu, cuda, cuda:N."),
            spec: Optional[Path] = typer.Option(None, help="Only the runs this spec (and --profile) expands to."),
            profile: str = ProfileOpt,
            max_samples: Optional[int] = typer.Option(None, help="Use only the first rows of each split."),
            dtype: str = typer.Option("float32", help="float32 (fast) or float64: precision of the passes over "
                                                      "the data (weight measures are always float64)."),
            workers: int = typer.Option(1, "--workers", "-j", min=1, help="Worker processes, a run each at a time "
                                                                   "(1: this process)."),
            threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch threads per worker (default: "
                                                                          "the cores shared among the workers).")):
    """Compute measures on an experiment's stored final checkpoints and add them to its results."""
    from rich.progress import Progress

    from genlab.executors.measure import measure_experiment

    st = _store(store)
    ids = _load(spec, profile).run_ids if spec else None
    names = [m for m in measures.split(",") if m]
    with Progress(console=console) as bar:
        task = bar.add_task(f"{experiment}: measures", total=None)
        values = measure_experiment(st, experiment, names, device=device, run_ids=ids, max_samples=max_samples,
                                    dtype=dtype, workers=workers, threads=threads,
                                    progress=lambda i, n, rid: bar.update(task, completed=i, total=n),
                                    on_skip=lambda rid, why: console.print(f"[yellow]skipped {experiment}/{rid}: "
                                                                           f"{why}[/]", highlight=False))
    out.print(f"stored {len(names)} measures on {len(values)} runs of {experiment}; "
              f"see `genlab results {experiment}`")


from genlab.cli.datasets import app as _datasets_app  # noqa: E402  (typer only; torch loads inside commands)
from genlab.cli import store_cmds as _store_cmds  # noqa: E402,F401  (registers ls, status, verify)

app.add_typer(_datasets_app, name="datasets")
from genlab.cli import compare, export, plot  # noqa: E402,F401  (register `compare`, `export`, `plot`)
from genlab.cli import lab as _lab  # noqa: E402,F401  (registers `tag`, `rm`)
from genlab.cli import analyze as _analyze  # noqa: E402,F401  (registers `genlab analyze`)
from genlab.cli import pairs as _pairs  # noqa: E402,F401  (registers `genlab pairs`)


@app.command()
def report(specs: list[Path] = typer.Argument(..., help="Spec TOML files, one report section each."),
           profile: str = ProfileOpt, store: Optional[Path] = StoreOpt,
           out_file: Path = typer.Option(Path("reports/report.html"), "--out", help="The HTML file to write."),
           title: str = typer.Option("genlab report", help="Page title."),
           sets: list[str] = SetOpt, name: Optional[str] = NameOpt):
    """Write one self-contained HTML page: each SPEC's figures, findings beside the seed's, and results."""
    from genlab.report import Section, render

    st = _store(store)
    sections = []
    from genlab.decide import seen
    from genlab.spec.overrides import parse_sets

    for s in specs:
        load_spec(s, profile, sets, name)  # the spec's own errors first, as every command reports them
        sn = seen(s, _profile(profile), parse_sets(sets), name, st)  # + seeds `run --decide` added
        exp, done = sn.design, list(sn.done)  # damaged ones: skipped, warned
        if not done:
            raise UserError(f"{s}: no finished runs; run `genlab run {s} --profile {exp.profile or 'none'}` first")
        planned = set(exp.run_ids)
        if missing := len(planned - set(done)):
            console.print(f"[yellow]{exp.name}: {missing} of {len(exp.runs)} runs unfinished; "
                          "the report uses the finished ones[/]")
        from genlab.notes import annotate

        sections.append(Section(exp, st.history(exp.name, done), annotate(st.results(exp.name, done), st.root, exp.name),
                                sn.design_seeds))
    from genlab.outfiles import check_out, write_out

    check_out(out_file, "--out")  # before the work: a symlink is refused, as `figures` refuses one
    write_out(out_file, render(sections, title), "--out")
    out.print(f"wrote {out_file} ({len(sections)} sections)")


def user_message(e: BaseException) -> str:
    """The one line a user sees for an exception: genlab's own errors say what to do; OS errors name the
    file; anything else is named as an internal error."""
    from genlab.store import os_advice

    if isinstance(e, KeyError):
        return str(e.args[0]) if e.args else "KeyError"
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {os_advice(e, store=False)}"  # any file: a data file, an output, a store file
    if isinstance(e, (ValueError, OSError, UserError)):
        return str(e)
    return f"internal error ({type(e).__name__}: {e}); please report it"


def main() -> None:
    from genlab.runtime import keep_freed_memory

    keep_freed_memory()  # before any tensor: glibc then reuses freed blocks instead of faulting pages in again
    try:
        app()
    except (Exception, RecursionError) as e:
        if os.environ.get("GENLAB_DEBUG"):
            raise
        _say("error:", "bold red", f"{user_message(e)} {DEBUG_HINT}")
        sys.exit(2)


if __name__ == "__main__":
    main()
