"""`genlab run`: load every spec, check them all, plan the pending runs, train them through the executor the
options choose (this process, a pool, Ray or Slurm; ensembles by default), show progress and a summary table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from genlab.cli import (NameOpt, ProfileOpt, SetOpt, StoreOpt, UserError, _fail, _line, _say, _store, app, console,
                        load_spec, out)

LOG_WIDTH = 200  # characters a summary table may take when stderr is a file or pipe, not a terminal


def _label(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items()) or "-"


# the options of `genlab run` (module constants: the command reads as its steps)
WorkersOpt = typer.Option(1, "--workers", "-j", min=1, help="Worker processes (1: run in this process).")
ThreadsOpt = typer.Option(1, "--threads", min=1, help="torch CPU threads per process. Small nets run fastest "
                          "on 1 (more threads on a busy CPU can be 100x slower); raise for big CPU runs.")
DryRunOpt = typer.Option(False, "--dry-run", help="List the runs and what is pending; train nothing.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress and no summary; failures only.")
ClusterOpt = typer.Option(None, help="ray (genlab[ray]; --address), or submit through submitit:"
                          " slurm (or local, debug to try it; genlab[slurm]). A shared --store.")
AddressOpt = typer.Option(None, help="Ray: the cluster to join (default: start a local one).")
RetryFailedOpt = typer.Option(False, "--retry-failed", help="Redo runs that failed before.")
TimeMinOpt = typer.Option(24 * 60, help="Slurm: time limit per run, minutes.")
EnsembleOpt = typer.Option("auto", "--ensemble", help="Train runs that share model, data shape and "
                           "batch size as one stacked ensemble: auto (up to 32 a group), off, or a "
                           "group size K. Same numbers as solo runs, to float tolerance.")
DecideOpt = typer.Option(False, "--decide", help="After the spec's runs, judge its findings and double the "
                         "seeds of the runs an undecided finding reads, round after round, until every "
                         "finding is decided, --budget is spent or --max-seeds is reached (intervals "
                         "stay valid under these repeated looks: genlab.findings.verdicts).")
BudgetOpt = typer.Option("30m", "--budget", help="--decide: wall time for the whole command, e.g. 45s, "
                         "30m, 1h30m; a round starts only if the last one's time still fits.")
MaxSeedsOpt = typer.Option(32, "--max-seeds", min=2, help="--decide: seeds per sweep point at most.")
TensorboardOpt = typer.Option(None, "--tensorboard", help="Write each run's scalars to "
                              "event files in this folder as its epochs finish (`tensorboard "
                              "--logdir DIR` shows the sweep live; needs genlab[tensorboard]).")
WandbOpt = typer.Option(None, "--wandb", help="Write each run as an offline W&B run in this "
                        "folder when it finishes (`wandb sync`; needs genlab[wandb]).")


@app.command()
def run(specs: list[Path] = typer.Argument(..., help="Spec TOML files."), profile: str = ProfileOpt,
        store: Optional[Path] = StoreOpt, workers: int = WorkersOpt,
        device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto."), threads: int = ThreadsOpt,
        dry_run: bool = DryRunOpt, sets: list[str] = SetOpt, name: Optional[str] = NameOpt, quiet: bool = QuietOpt,
        cluster: Optional[str] = ClusterOpt, address: Optional[str] = AddressOpt,
        retry_failed: bool = RetryFailedOpt,
        partition: Optional[str] = typer.Option(None, help="Slurm partition."),
        gpus: int = typer.Option(0, help="Slurm/Ray: GPUs per run."), time_min: int = TimeMinOpt,
        ensemble: str = EnsembleOpt, decide: bool = DecideOpt, budget: str = BudgetOpt,
        max_seeds: int = MaxSeedsOpt, tensorboard: Optional[Path] = TensorboardOpt,
        wandb: Optional[Path] = WandbOpt):
    """Run every pending run of each SPEC; finished runs are skipped, unfinished or damaged ones redone, runs
    another worker holds left to it (see `genlab status`)."""
    from genlab.executors.ensemble import parse_ensemble
    from genlab.executors.launch import Launch

    started = time.monotonic()  # --decide's budget counts from here
    seconds = _budget(budget) if decide else 0.0
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
    jobs = _plan(exps, st, retry_failed, quiet, dry_run, warn_pool=bool(sets) and name is None)
    options = Launch(workers=workers, device=device, threads=threads, ensemble=grouping, cluster=cluster,
                     address=address, partition=partition, gpus=gpus, time_min=time_min)
    if dry_run:
        return
    if jobs:
        from contextlib import nullcontext

        from genlab.live import LiveLog

        with LiveLog(st, jobs, tensorboard, wandb) if tensorboard or wandb else nullcontext():
            failures = _execute(jobs, st, options, quiet)
        if failures:
            _fail(f"{failures} of {len(jobs)} runs failed (above; each run's error.json keeps its traceback); the "
                  "others are stored. Fix the cause and run again with --retry-failed: finished runs are kept.")
    if cluster is None:  # [pairs]: pair measures once the runs are in (genlab.executors.pairs)
        from genlab.cli.pairs import measure_spec_pairs

        for exp in (e for e in exps if e.pairs):
            measure_spec_pairs(exp, st, quiet, device=device)
    if decide:
        from genlab.cli.decide import decide_loop

        decide_loop(specs, profile, sets, name, st, options, started + seconds, max_seeds, quiet, _execute)


def _budget(text: str) -> float:
    from genlab.decide import parse_duration

    try:
        return parse_duration(text)
    except ValueError as e:
        raise UserError(f"--budget: {e}") from None


def _plan(exps, st, retry_failed: bool, quiet: bool, dry_run: bool, warn_pool: bool) -> list:
    """The pending jobs of every experiment, each experiment's plan line printed (and with `dry_run` each run
    with its state)."""
    from genlab.cli.store_cmds import plan_line
    from genlab.executors import pending, plan

    jobs = []
    for exp in exps:
        states = plan(exp, st)
        if warn_pool and not quiet:
            console.print(f"[yellow]note: --set without --name: these runs join {exp.name!r}'s, and its figures "
                          "pool them; --name keeps a variant apart[/]")
        if not quiet or dry_run:
            console.print(plan_line(exp, st, states, retry_failed), highlight=False, soft_wrap=True)
        if dry_run:
            for r in exp.runs:
                out.print(f"  {r.run_id}  {states[r.run_id]:8s} {_label(r.point)}",
                          highlight=False, markup=False, soft_wrap=True)
        jobs += pending(exp, st, retry_failed, states)
    return jobs


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


def _execute(jobs, st, options, quiet: bool = False) -> int:
    """Run `jobs` through the executor `options` (executors.launch.Launch) name, showing progress
    (genlab.cli.progress); returns the number that failed. In this process and its pool Ctrl-C stops the runs
    after their epoch (genlab.interrupt); Ray and Slurm tasks are not signalled, so there it interrupts at once."""
    from contextlib import nullcontext

    from rich.text import Text

    from genlab.cli.progress import make_display

    from genlab import interrupt

    rows, skipped, stopped, failures = [], [], [], 0
    from genlab.cli.progress import run_labels

    names = run_labels(jobs)  # the values that tell runs apart first
    with make_display(names, console, quiet) as show:
        def on_done(job, res, err) -> None:
            nonlocal failures
            show.done(job.run.run_id, res, err)
            if res is not None and res.get("status") == "skipped":
                skipped.append(job)
            elif res is not None and res.get("status") == "interrupted":  # Ctrl-C: snapshot written
                stopped.append((job, res))
            elif err:
                failures += 1
                last = next((ln for ln in reversed(err.strip().splitlines()) if ln.strip()), err)
                where = st.run_dir(job.run.config.experiment, job.run.run_id) / "error.json"
                console.print(Text.assemble((f"run {job.run.run_id} ({names[job.run.run_id]}) failed: ", "red"),
                                            f"{_line(last)} (traceback in {where})"), soft_wrap=True)
            else:
                rows.append((job.run, res))

        from genlab.executors.launch import launch

        graceful = options.graceful
        with interrupt.handling() if graceful else nullcontext():  # 1st Ctrl-C: after the epoch; 2nd: at once
            launch(jobs, st, options, show.progress, on_done)
            asked = graceful and interrupt.requested()
    if not quiet:
        _summary(rows)
        console.print(f"{len(rows)} runs trained here, {len(skipped)} skipped (finished, running or failed "
                      f"elsewhere), {failures} failed" + (f", {len(stopped)} stopped" if asked else ""),
                      highlight=False, soft_wrap=True)
    if asked:
        for job, res in stopped:
            out.print(interrupt.line(job.run.config.experiment, job.run.run_id, res), highlight=False,
                      markup=False, soft_wrap=True)
        raise typer.Exit(interrupt.EXIT_CODE)
    return failures


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _short_point(point: dict[str, Any], seeds: int) -> str:
    """`init.std=0.1 seed=0` → `std=0.1` (last part of each field; the seed only when there are several)."""
    return " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in point.items() if k != "seed" or seeds > 1) or "-"


def _summary(rows) -> None:
    """One table per experiment: run, sweep point, status, epochs, final train/test loss and error, seconds."""
    seeds = len({r.point.get("seed") for r, _ in rows})
    sink = console if console.is_terminal else Console(stderr=True, width=LOG_WIDTH)  # a log: no 80-column squeeze
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
        sink.print(t)
