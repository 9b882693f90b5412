"""`genlab ls`, `genlab status` and `genlab verify`: what the store holds, who is writing it, what is damaged.

Registered on the app by genlab.cli (imported at its end, so the shared helpers exist).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from genlab.cli import ProfileOpt, StoreOpt, _load, _store, app, out

KINDS = ("done", "running", "stale", "damaged", "failed", "pending")  # the order status lists them in


def plan_line(exp, st, states: dict[str, str], retry_failed: bool) -> str:
    """`genlab run`'s line per experiment: how many runs are done, to run, held elsewhere, failed, damaged."""
    from genlab.executors import to_do

    n = Counter(states.values())
    todo = sum(to_do(k, retry_failed) for k in states.values())
    extra = [f"{n['running']} running elsewhere"] if n["running"] else []
    if n["damaged"]:
        extra.append(f"{n['damaged']} damaged (redone)")
    if n["failed"]:
        extra.append(f"{n['failed']} failed" + (" (retried)" if retry_failed else " (--retry-failed redoes them)"))
    return (f"[bold]{exp.name}[/] profile={exp.profile or 'none'}: {len(exp.runs)} runs, {n['done']} done, "
            f"{todo} to run{''.join(', ' + e for e in extra)} → {st.root / exp.name}")


@app.command("ls")
def ls(store: Optional[Path] = StoreOpt):
    """List the experiments in the store with their finished, unfinished and damaged runs (and what is wrong)."""
    st = _store(store)
    t = Table(title=f"store {st.root}")
    for c in ("experiment", "finished", "unfinished", "damaged", "tagged"):
        t.add_column(c)
    from genlab.notes import of_experiment
    damaged = []
    from rich.markup import escape

    from genlab.paths import UnsafePathError
    from genlab.store import StoreError

    for e in st.experiments():
        try:
            done, every = st.run_ids(e), st.run_ids(e, done_only=False)
        except (StoreError, UnsafePathError) as err:  # an unreadable or foreign folder does not hide the rest
            t.add_row(escape(e), "[red]?[/]", "[red]?[/]", f"[red]{escape(' '.join(str(err).split()))}[/]", "")
            continue
        bad = [(r, d) for r in done if (d := st.damage(e, r)) is not None]
        damaged += [(e, r, d) for r, d in bad]
        tags = {t for a in of_experiment(st.root, e).values() for t in a.get("tags", [])}
        tagged = len(of_experiment(st.root, e))  # runs with tags or a note (genlab tag)
        t.add_row(e, str(len(done) - len(bad)), str(len(every) - len(done)), str(len(bad)),
                  escape(f"{tagged} ({' '.join(sorted(tags))})" if tags else str(tagged)))
    out.print(t)
    for e, r, d in damaged:
        out.print(f"damaged {e}/{r}: {d}", highlight=False, soft_wrap=True)


def _run_ids(st, target: str, profile: str) -> tuple[str, list[str]]:
    """(experiment, run ids) for a spec file (its planned runs) or an experiment name (what the store has)."""
    if target.endswith(".toml"):
        exp = _load(Path(target), profile)
        return exp.name, exp.run_ids
    from genlab.store.claims import LEASES

    if target not in st.experiments():
        raise KeyError(f"no experiment {target!r} in store {st.root} "
                       f"(present: {', '.join(st.experiments()) or 'none'}); or give its spec file")
    from genlab.store import RUN_ID

    leased = {p.stem for p in (st.root / target / LEASES).glob("*.json") if RUN_ID.fullmatch(p.stem)}
    return target, sorted(set(st.run_ids(target, done_only=False)) | leased)


@app.command()
def status(targets: Optional[list[str]] = typer.Argument(None, help="Experiment names in the store, or spec files "
                                                         "(then runs not started yet count as pending). None: "
                                                         "every experiment in the store."),
           store: Optional[Path] = StoreOpt, profile: str = ProfileOpt,
           show_all: bool = typer.Option(False, "--all", help="List finished runs too."),
           watch: bool = typer.Option(False, "--watch", "-w", help="Redraw the store's summary every --every "
                                      "seconds until Ctrl-C."),
           every: float = typer.Option(2.0, "--every", min=0.2, help="Seconds between redraws with --watch.")):
    """Per experiment: done / running (host, pid, epoch, heartbeat age) / stale / damaged / failed (error) /
    pending, then one line per run that is not done. Without a target: every experiment in the store, each run
    not done with its epoch k of n, ETA and last losses."""
    st = _store(store)
    if not targets:
        from genlab.cli.overview import render, watch_store

        if watch:
            return watch_store(st, out, every, show_all)
        out.print(render(st, show_all))
        return
    if watch:
        raise typer.BadParameter("--watch redraws the whole store's summary: give no target with it")
    for target in targets:
        name, ids = _run_ids(st, target, profile)
        states = {rid: st.state(name, rid) for rid in ids}
        counts = Counter(s.kind for s in states.values())
        out.print(f"[bold]{name}[/]: {len(ids)} runs: " + ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k]))
        if stray := st.stray(name):
            from rich.markup import escape

            out.print(f"{len(stray)} stray folder{'s' * (len(stray) > 1)} in {escape(str(st.root / name))}, not "
                      f"runs (ignored): {escape(', '.join(stray))}", highlight=False, soft_wrap=True)
        from genlab.cli.overview import epochs_cell, run_line, _dur, _num

        t = Table(show_header=True, pad_edge=False)
        for c in ("run", "state", "epoch", "eta", "train", "test", "detail"):
            t.add_column(c, overflow="fold", no_wrap=c in ("run", "state"))
        order = {k: i for i, k in enumerate(KINDS)}
        for rid, s in sorted(states.items(), key=lambda x: (order[x[1].kind], x[0])):
            if s.kind != "done" or show_all:
                r = run_line(st, name, rid, s)  # epoch k of n, ETA, last losses, from the run's files
                t.add_row(rid, s.kind, epochs_cell(r), _dur(r.eta_s), _num(r.train_loss), _num(r.test_loss),
                          r.detail)
        if t.row_count:
            out.print(t)


@app.command()
def verify(experiments: Optional[list[str]] = typer.Argument(None, help="Experiments to check (default: all)."),
           store: Optional[Path] = StoreOpt):
    """Check every finished run against its manifest (SHA-256 of each file) and its config hash. Exits with
    status 1 if any run is damaged (`genlab run` redoes those)."""
    st = _store(store)
    names = experiments or st.experiments()
    checked, damaged = 0, []
    for e in names:
        if e not in st.experiments():
            raise KeyError(f"no experiment {e!r} in store {st.root} (present: {', '.join(st.experiments()) or 'none'})")
        for rid in st.run_ids(e):
            checked += 1
            if (d := st.damage(e, rid)) is not None:
                damaged.append((e, rid, d))
    for e, rid, d in damaged:
        out.print(f"damaged {e}/{rid}: {d}", highlight=False, soft_wrap=True)
    out.print(f"{checked} finished runs checked in {len(names)} experiments of {st.root}: "
              f"{checked - len(damaged)} intact, {len(damaged)} damaged", highlight=False, soft_wrap=True)
    if damaged:
        raise typer.Exit(1)
