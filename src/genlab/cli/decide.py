"""`genlab run --decide`: rounds that double the seeds of the runs that undecided findings read (genlab.decide),
until every finding is decided, the budget is spent or the seed cap is reached; then a table of where each
claim stands."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

from rich.table import Table

from genlab.cli import _fail, _profile, console


def judge_all(seen, store) -> list[tuple[dict, Any]]:
    """(entry, Finding or None when it cannot be computed) for each finding of the spec, on every finished run."""
    from genlab.findings import evaluate

    exp, done = seen.design, list(seen.done)
    if not exp.findings or not done:
        return [(e, None) for e in exp.findings]
    history, results = store.history(exp.name, done), store.results(exp.name, done)
    out = []
    for entry in exp.findings:
        try:
            out.append((entry, evaluate(entry, history, results, seen.design_seeds)[1]))
        except (ValueError, KeyError):
            out.append((entry, None))
    return out


def cost(seen, store, runs) -> float:
    """Seconds the `runs` (of a new seed) should take on one worker: each one's sweep point's mean share of the
    machine over the seeds stored (the same config, another seed), 0 where none is known. A run's share is its
    wall_s over the `members` trained beside it in one ensemble (they shared those seconds; 1 when solo)."""
    from genlab.store.defaults import with_omitted_defaults
    from genlab.tables import flatten

    def key(config: dict) -> str:  # a config without its seed, stored form and planned form alike
        c = with_omitted_defaults(config)
        c.pop("seed", None)
        return str(sorted(flatten(c).items()))

    done = list(seen.done)
    if not done:
        return 0.0
    res = store.results(seen.design.name, done)
    if "wall_s" not in res.columns:
        return 0.0
    members = res["members"].fillna(1) if "members" in res.columns else [1] * len(res)
    per = {}
    for rid, w, m in zip(res["run_id"], res["wall_s"], members):
        per.setdefault(key(store.config(seen.design.name, rid)), []).append(float(w) / max(float(m), 1.0))
    total = 0.0
    for r in runs:
        ws = per.get(key(r.config.model_dump(mode="json")))
        total += sum(ws) / len(ws) if ws else 0.0
    return total


@dataclasses.dataclass(frozen=True)
class Round:
    """One spec's next round: the runs of its added seeds, their estimated seconds on the workers, and how many
    undecided findings they may decide."""

    name: str
    jobs: list
    seconds: float
    claims: int


def fit(rounds: list[Round], left: float) -> tuple[list[Round], list[str]]:
    """The rounds to run now and the names of those that must wait: cheapest per claim first, each taken while
    the estimated seconds of those taken so far still fit the `left` seconds of the budget (the rounds run one
    after another on the same workers, so their costs add up)."""
    taken, over, used = [], [], 0.0
    for r in sorted(rounds, key=lambda r: (r.seconds / max(r.claims, 1), r.name)):
        if left <= 0 or used + r.seconds > left:  # nothing left: not even a round of unknown (0) cost
            over.append(r.name)
            continue
        taken.append(r)
        used += r.seconds
    return taken, over


def schedule(gaps: list[Round], nexts: list[Round], left: float) -> tuple[list[Round], list[str]]:
    """`fit` for the runs the seeds added so far still lack (`gaps`: their findings cannot be judged without
    them) first, then the next rounds in what is left; the names of all that wait."""
    taken, over = fit(gaps, left)
    more, wait = fit(nexts, left - sum(r.seconds for r in taken))
    return taken + more, over + wait


def decide_loop(specs: list[Path], profile: str, sets: list[str], name: str | None, store, options,
                deadline: float, max_seeds: int, quiet: bool, execute: Callable) -> None:
    from genlab.decide import load, runs_read, seeds_of, seen, undecided
    from genlab.executors import pending
    from genlab.spec.overrides import parse_sets

    prof, sets_d = _profile(profile), parse_sets(sets)
    rounds, why = 0, "every finding is decided or needs what seeds cannot give"
    while True:
        gaps, nexts, state = [], [], {}  # Rounds: runs the judged seeds lack; the next seeds
        for path in specs:
            s = seen(path, prof, sets_d, name, store)
            if s.design.pairs and options.cluster is None:  # pair values of the seeds added so far, before judging
                from genlab.cli.pairs import measure_spec_pairs

                measure_spec_pairs(s.extended, store, quiet=True, device=options.device)
            judged = judge_all(s, store)
            state[path] = (s, judged)
            have = seeds_of(s.extended)
            todo = undecided(judged, max_seeds - len(have)) if len(have) < max_seeds else []
            open_ = undecided(judged, None)  # however many seeds each needs: its estimate may lack runs
            gap = pending(dataclasses.replace(s.extended, runs=tuple(runs_read(s.extended, open_))), store)
            if open_ and gap:  # runs the seeds looked at so far lack (e.g. a pair's other child): first
                gaps.append(Round(s.design.name, gap, cost(s, store, [j.run for j in gap]) / options.workers,
                                  len(open_)))
            elif todo:  # a round doubles the seeds (genlab.findings.verdicts: one look per doubling)
                add = min(len(have), max_seeds - len(have))
                nxt = load(path, prof, sets_d, name, list(range(max(have) + 1, max(have) + 1 + add)))
                runs = runs_read(nxt, todo)
                jobs = pending(dataclasses.replace(nxt, runs=tuple(runs)), store)
                nexts.append(Round(s.design.name, jobs, cost(s, store, runs) / options.workers, len(todo)))
        taken, over = schedule(gaps, nexts, deadline - time.monotonic())  # the gaps, too, within the budget
        jobs = [j for r in taken for j in r.jobs]
        if not jobs:
            if over:
                why = f"the budget left is too short for one more seed of {', '.join(over)}"
            break
        if not quiet:
            console.print(f"--decide round {rounds + 1}: {len(jobs)} runs of added seeds"
                          + (f" ({', '.join(over)} wait: not within the budget left)" if over else ""),
                          highlight=False)
        failures = execute(jobs, store, options, quiet)
        rounds += 1
        if failures:
            _fail(f"--decide: {failures} of {len(jobs)} runs failed (above); the others are stored")
    _print_state(state, rounds, why, max_seeds)


def _print_state(state: dict, rounds: int, why: str, max_seeds: int) -> None:
    from genlab.decide import seeds_of

    t = Table(title=f"--decide: {rounds} round(s); stopped: {why}", pad_edge=False)
    for c in ("spec", "claims", "decided", "seeds", "undecided: why (seeds it needs)"):
        t.add_column(c, overflow="fold")
    for path, (s, judged) in state.items():
        fs = [f for _, f in judged]
        decided = sum(f is not None and f.decided for f in fs)
        rest = []
        for e, f in judged:
            if f is None:
                rest.append(f"{e.get('name')}: cannot be computed")
            elif not f.decided:
                why = f.reason or ("no line to judge: a number reported" if not f.checks else "?")
                need = (f"needs {f.more} more seed(s)" if f.more else "needs more than "
                        f"{max_seeds} seeds") if f.verdict == "inconclusive" else f"not judged: {why}"
                rest.append(f"{e.get('name')}: {need}")
        t.add_row(s.design.name, str(len(judged)), str(decided), str(len(seeds_of(s.extended))), "; ".join(rest))
    console.print(t)
