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
ProfileOpt = typer.Option("default", "--profile", "-p",
                          help="Spec profile (default: the spec's `small` if it has one; 'none' for the base).")
SetOpt = typer.Option([], "--set", metavar="KEY=VALUE",
                      help="Override a field, after the profile (repeatable): optim.lr=0.05 (TOML value); a list "
                           "sweeps it: optim.lr=[0.1,0.01]; seeds=[0,1]. A field holding a list: [[..],[..]] sweeps.")
NameOpt = typer.Option(None, "--name", help="Another experiment name, so the variant's runs never pool with the "
                                            "spec's (its runs get their own ids and folder).")
WhereOpt = typer.Option(None, "--where", help="Keep the rows where EXPR holds: \"optim.lr == 0.01 and "
                                              "model.name == 'mlp'\" (genlab.expr: == != < <= > >=, in [..], and/or/not, + - * /).")


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
    from genlab import experiment as spec_mod
    from genlab.overrides import parse_sets

    return spec_mod.load(spec, _profile(profile), sets=parse_sets(sets), name=name)


_load = load_spec


def _label(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items()) or "-"


@app.command()
def run(specs: list[Path] = typer.Argument(..., help="Spec TOML files."), profile: str = ProfileOpt,
        store: Optional[Path] = StoreOpt,
        workers: int = typer.Option(1, "--workers", "-j", help="Worker processes (1: run in this process)."),
        device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto."),
        threads: int = typer.Option(1, "--threads", help="torch CPU threads per process. Small nets run fastest "
                                    "on 1 (more threads on a busy CPU can be 100x slower); raise for big CPU runs."),
        dry_run: bool = typer.Option(False, "--dry-run", help="List the runs and what is pending; train nothing."),
        sets: list[str] = SetOpt, name: Optional[str] = NameOpt,
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress and no summary; failures only."),
        cluster: Optional[str] = typer.Option(None, help="ray (genlab[ray]; --address), or submit through submitit:"
                                              " slurm (or local, debug to try it; genlab[slurm]). A shared --store."),
        address: Optional[str] = typer.Option(None, help="Ray: the cluster to join (default: start a local one)."),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="Redo runs that failed before."),
        partition: Optional[str] = typer.Option(None, help="Slurm partition."),
        gpus: int = typer.Option(0, help="Slurm/Ray: GPUs per run."),
        time_min: int = typer.Option(24 * 60, help="Slurm: time limit per run, minutes."),
        ensemble: str = typer.Option("auto", "--ensemble", help="Train runs that share model, data shape and "
                                     "batch size as one stacked ensemble: auto (up to 32 a group), off, or a "
                                     "group size K. Same numbers as solo runs, to float tolerance.")):
    """Run every pending run of each SPEC; finished runs are skipped, unfinished or damaged ones redone, runs
    another worker holds left to it (see `genlab status`)."""
    from genlab.cli.store_cmds import plan_line
    from genlab.executors import pending, plan
    from genlab.executors.ensemble import parse_ensemble

    try:
        grouping = parse_ensemble(ensemble)
    except ValueError as e:
        _fail(str(e))
    if name is not None and len(specs) > 1:
        raise UserError("--name renames one experiment; give one spec with it")
    exps = _load_all(specs, profile, dry_run, sets, name)  # check every spec before training anything
    st = _store(store)
    if not dry_run:
        st.check_writable()  # a read-only or full store fails here, once
    if cluster is None:  # cluster nodes read their own data root; here, a missing file stops the sweep once
        _preflight_data(exps, download=not dry_run)
    jobs = []
    for exp in exps:
        states = plan(exp, st)
        todo = pending(exp, st, retry_failed, states)
        if sets and name is None and not quiet:
            console.print(f"[yellow]note: --set without --name: these runs join {exp.name!r}'s, and its figures "
                          "pool them; --name keeps a variant apart[/]")
        if not quiet or dry_run:
            console.print(plan_line(exp, st, states, retry_failed), highlight=False, soft_wrap=True)
        if dry_run:
            for r in exp.runs:
                out.print(f"  {r.run_id}  {states[r.run_id]:8s} {_label(r.point)}",
                          highlight=False, markup=False, soft_wrap=True)
        jobs += todo
    if jobs and not dry_run:
        failures = _execute(jobs, st, _launcher(st, workers, device, threads, cluster, partition, gpus, time_min,
                                                grouping, address), quiet)
        if failures:
            _fail(f"{failures} of {len(jobs)} runs failed (above; each run's error.json keeps its traceback); the "
                  "others are stored. Fix the cause and run again with --retry-failed: finished runs are kept.")


def _load_all(specs: list[Path], profile: str, dry_run: bool, sets: list[str] = (), name: Optional[str] = None):
    """Every spec loaded; with `dry_run`, every problem of every spec printed (one line each) before failing."""
    from genlab.spec import SpecError

    exps, problems = [], []
    for s in specs:
        try:
            exps.append(load_spec(s, profile, sets, name))
        except SpecError as e:
            if not dry_run:
                raise
            problems += e.problems
    for line in problems:
        _say("problem:", "bold red", line)
    if problems:
        _fail(f"{len(problems)} problem{'s' * (len(problems) > 1)} in {len(specs)} spec"
              f"{'s' * (len(specs) > 1)}; nothing was run")
    return exps


def _preflight_data(exps, download: bool) -> None:
    """Every data file the runs need, present and checked (fetched if missing) before the first run."""
    from genlab.data import preflight

    tables = {r.config.data.model_dump_json(): (r.config.data.name, r.config.data.options)
              for e in exps for r in e.runs}
    try:
        preflight(list(tables.values()), download=download)
    except FileNotFoundError as e:
        if download:
            raise
        _say("data:", "yellow", e)


def _launcher(st, workers: int, device: str, threads: int, cluster: str | None, partition: str | None, gpus: int,
              time_min: int, ensemble: tuple[int, bool] = (1, False), address: str | None = None):
    """(jobs, progress, on_done) -> None for the executor the options ask for."""
    if cluster == "ray":
        from genlab.executors.ray import RayOptions, run_ray

        ropts = RayOptions(address=address, cpus=max(threads, 1), gpus=gpus)
        return lambda jobs, progress, on_done: run_ray(jobs, st, options=ropts, device=device, on_done=on_done,
                                                       ensemble=ensemble)
    if cluster is not None:
        from genlab.executors.slurm import SlurmOptions, run_slurm

        opts = SlurmOptions(cluster=cluster, partition=partition, gpus=gpus, cpus=max(threads, 1),
                            timeout_min=time_min)
        return lambda jobs, progress, on_done: run_slurm(jobs, st, options=opts, device=device, on_done=on_done)
    if workers > 1:
        from genlab.executors.pool import run_pool

        return lambda jobs, progress, on_done: run_pool(jobs, st, workers=workers, device=device, progress=progress,
                                                        on_done=on_done, threads=threads, ensemble=ensemble)
    from genlab.executors.local import run_local

    def local(jobs, progress, on_done):
        import torch

        torch.set_num_threads(threads)
        run_local(jobs, st, device=device, progress=progress, on_done=on_done, ensemble=ensemble)

    return local


def _execute(jobs, st, launch, quiet: bool = False) -> int:
    """Run `jobs` through `launch`, showing progress (genlab.cli.progress); returns the number that failed."""
    from rich.text import Text

    from genlab.cli.progress import make_display

    rows, skipped, failures = [], [], 0
    names = {j.run.run_id: f"{j.run.config.experiment} {_label(j.run.point)}" for j in jobs}
    with make_display(names, console, quiet) as show:
        def on_done(job, res, err) -> None:
            nonlocal failures
            show.done(job.run.run_id, res, err)
            if res is not None and res.get("status") == "skipped":
                skipped.append(job)
            elif err:
                failures += 1
                last = next((ln for ln in reversed(err.strip().splitlines()) if ln.strip()), err)
                where = st.run_dir(job.run.config.experiment, job.run.run_id) / "error.json"
                console.print(Text.assemble((f"run {job.run.run_id} ({names[job.run.run_id]}) failed: ", "red"),
                                            f"{_line(last)} (traceback in {where})"), soft_wrap=True)
            else:
                rows.append((job.run, res))

        launch(jobs, show.progress, on_done)
    if not quiet:
        _summary(rows)
        console.print(f"{len(rows)} runs trained here, {len(skipped)} skipped (finished, running or failed "
                      f"elsewhere), {failures} failed", highlight=False, soft_wrap=True)
    return failures


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _short_point(point: dict[str, Any], seeds: int) -> str:
    """`init.std=0.1 seed=0` → `std=0.1` (last part of each field; the seed only when there are several)."""
    return " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in point.items() if k != "seed" or seeds > 1) or "-"


def _summary(rows) -> None:
    """One table per experiment: run, sweep point, status, epochs, final train/test loss and error, seconds."""
    seeds = len({r.point.get("seed") for r, _ in rows})
    for exp in sorted({r.config.experiment for r, _ in rows}):
        t = Table(title=f"{exp}: finished runs", show_lines=False, pad_edge=False)
        t.add_column("run", no_wrap=True)
        t.add_column("sweep point", overflow="fold")
        for c in ("status", "epochs", "train\nloss", "train\nerror", "test\nloss", "test\nerror", "s"):
            t.add_column(c, no_wrap=True, justify="right")
        for r, res in (x for x in rows if x[0].config.experiment == exp):
            f = res["final"]
            status = "ok" if res["status"] == "completed" else f"[red]{res['status']}[/]"
            t.add_row(r.run_id[:8], _short_point(r.point, seeds), status, str(res["epochs_run"]),
                      _fmt(f.get("train_loss")), _fmt(f.get("train_error")), _fmt(f.get("test_loss")),
                      _fmt(f.get("test_error")), f"{res['wall_s']:.1f}")
        console.print(t)


def _table(experiment: str, store: Optional[Path], spec: Optional[Path], profile: str, history: bool):
    st = _store(store)
    ids = _load(spec, profile).run_ids if spec else None
    return st.history(experiment, ids) if history else st.results(experiment, ids)


@app.command()
def registry(kind: Optional[str] = typer.Argument(None, help="datasets, models, inits, losses, measures, "
                                                            "figures, findings or rules (default: all)"),
             name: Optional[str] = typer.Argument(None, help="One entry: print its whole docstring.")):
    """List what is registered (the names a spec may use): where each comes from (module and distribution,
    plugins included) and the summary of its docstring (verbatim)."""
    import importlib
    import inspect

    from rich.text import Text

    kinds = {"datasets": ("genlab.data", "_DATASETS"), "models": ("genlab.models", "_MODELS"),
             "inits": ("genlab.models.init", "_INITS"), "losses": ("genlab.losses", "_LOSSES"),
             "measures": ("genlab.measures", "_MEASURES"), "figures": ("genlab.figures", "_FIGURES"),
             "findings": ("genlab.findings", "_FINDINGS"), "rules": ("genlab.train.rules", "_RULES")}
    if kind is not None and kind not in kinds:
        raise UserError(f"unknown kind {kind!r}; choose one of {', '.join(kinds)}")
    if name is not None:  # the whole docstring, as written (plain print: no markup, no wrapping)
        module, attr = kinds[kind]
        print(f"{kind} {name}\n\n{inspect.getdoc(getattr(importlib.import_module(module), attr).get(name)) or ''}")
        return
    for module, _ in kinds.values():  # every built-in entry first, so plugins are told apart by their origin
        importlib.import_module(module)
    for k in [kind] if kind else kinds:
        module, attr = kinds[k]
        reg = getattr(importlib.import_module(module), attr)
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

    df = filter_rows(_table(experiment, store, spec, profile, history), where)
    if columns:
        missing = [c for c in columns.split(",") if c not in df.columns]
        if missing:
            raise UserError(f"--columns: no column {missing[0]!r}; present: {', '.join(df.columns)}")
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
                                                      "the data (weight measures are always float64).")):
    """Compute measures on an experiment's stored final checkpoints and add them to its results."""
    from rich.progress import Progress

    from genlab.executors.measure import measure_experiment

    st = _store(store)
    ids = _load(spec, profile).run_ids if spec else None
    names = [m for m in measures.split(",") if m]
    with Progress(console=console) as bar:
        task = bar.add_task(f"{experiment}: measures", total=None)
        values = measure_experiment(st, experiment, names, device=device, run_ids=ids, max_samples=max_samples,
                                    dtype=dtype, progress=lambda i, n, rid: bar.update(task, completed=i, total=n),
                                    on_skip=lambda rid, why: console.print(f"[yellow]skipped {experiment}/{rid}: "
                                                                           f"{why}[/]", highlight=False))
    out.print(f"stored {len(names)} measures on {len(values)} runs of {experiment}; "
              f"see `genlab results {experiment}`")


from genlab.cli.datasets import app as _datasets_app  # noqa: E402  (typer only; torch loads inside commands)
from genlab.cli import store_cmds as _store_cmds  # noqa: E402,F401  (registers ls, status, verify)

app.add_typer(_datasets_app, name="datasets")
from genlab.cli import compare, export, plot  # noqa: E402,F401  (register `compare`, `export`, `plot`)
from genlab.cli import analyze as _analyze  # noqa: E402,F401  (registers `genlab analyze`)


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
    for s in specs:
        exp = load_spec(s, profile, sets, name)
        done = [r for r in exp.run_ids if st.has_done(exp.name, r)]  # damaged ones: skipped, warned
        if not done:
            raise UserError(f"{s}: no finished runs; run `genlab run {s} --profile {exp.profile or 'none'}` first")
        if len(done) < len(exp.runs):
            console.print(f"[yellow]{exp.name}: {len(exp.runs) - len(done)} of {len(exp.runs)} runs unfinished; "
                          "the report uses the finished ones[/]")
        sections.append(Section(exp, st.history(exp.name, done), st.results(exp.name, done)))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(render(sections, title))
    out.print(f"wrote {out_file} ({len(sections)} sections)")


def user_message(e: BaseException) -> str:
    """The one line a user sees for an exception: genlab's own errors say what to do; OS errors name the
    file; anything else is named as an internal error."""
    from genlab.store import os_advice

    if isinstance(e, KeyError):
        return str(e.args[0]) if e.args else "KeyError"
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {os_advice(e)}"
    if isinstance(e, (ValueError, OSError, UserError)):
        return str(e)
    return f"internal error ({type(e).__name__}: {e}); please report it"


def main() -> None:
    try:
        app()
    except (Exception, RecursionError) as e:
        if os.environ.get("GENLAB_DEBUG"):
            raise
        _say("error:", "bold red", f"{user_message(e)} {DEBUG_HINT}")
        sys.exit(2)


if __name__ == "__main__":
    main()
