"""Deciding claims by adding seeds: which runs a spec's findings read (its own seeds and the ones `--decide`
added), how its findings stand on them, and which runs one more seed should add.

The spec's `seeds` are the design (look 0); `genlab run SPEC --decide` adds seeds max+1, max+2, … in rounds that
double them, only to the sweep points an undecided finding reads, and each doubling is one more look
(genlab.findings.verdicts: every look spends its share of α, so looking after each round does not inflate wrong
verdicts). The runs of an extra seed are the spec's runs with only `seed` changed: the same run ids a spec
listing that seed would have, stored with the experiment's other runs, read by `genlab report` and the figures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlab.spec import loader as experiment
from genlab.spec.loader import Experiment, PlannedRun


@dataclass(frozen=True)
class Seen:
    """A spec as the store holds it: the design (the spec's own runs), the same runs at every extra seed the store
    has (`extended`), and which of those are finished (`done`, in `extended`'s order)."""

    design: Experiment
    extended: Experiment
    done: tuple[str, ...]

    @property
    def design_seeds(self) -> int:
        return len(seeds_of(self.design))


def seeds_of(exp: Experiment) -> list[int]:
    return sorted({r.config.seed for r in exp.runs})


def load(path: Path, profile: str | None, sets: dict[str, Any], name: str | None, seeds: list[int]) -> Experiment:
    """The spec with its `seeds` replaced (every other field as the spec and `--set` say)."""
    return experiment.load(path, profile, sets={**sets, "seeds": seeds}, name=name)


def seen(path: Path, profile: str | None, sets: dict[str, Any], name: str | None, store) -> Seen:
    """The spec's runs and the extra-seed runs of the same sweep points finished in the store."""
    design = experiment.load(path, profile, sets=sets, name=name)
    base = seeds_of(design)
    stored = {store.config(design.name, rid).get("seed") for rid in store.run_ids(design.name)}
    extra = sorted(s for s in stored if isinstance(s, int) and s > max(base))
    ext = load(path, profile, sets, name, base + extra) if extra else design
    return Seen(design, ext, tuple(r for r in ext.run_ids if store.has_done(design.name, r)))


def undecided(judged: list[tuple[dict, Any]], max_more: int | None) -> list[dict]:
    """The `[[findings]]` entries one more seed may decide: inconclusive (unless the seeds it needs are more than
    `max_more`), or not judged for want of a second run. Not those that cannot be computed, nor those whose
    precondition is unmet (more seeds of the same runs would not meet it)."""
    out = []
    for entry, f in judged:
        if f is None:
            continue
        if f.verdict == "inconclusive" and (max_more is None or (f.more is not None and f.more <= max_more)):
            out.append(entry)
        elif f.verdict is None and f.reason.startswith("one run"):
            out.append(entry)
    return out


def runs_read(exp: Experiment, entries: list[dict]) -> list[PlannedRun]:
    """The runs of `exp` that any of `entries` reads: those its `where` keeps (judged on the config columns; a
    `where` naming a result or epoch column keeps every run), narrowed for a comparison to its two groups — and,
    where the spec measures pairs of runs, each kept run's partners (a pair value needs both runs: the other
    child of a spawned pair, `[pairs] by = "spawn"`, even when a finding reads one child per pair)."""
    import pandas as pd

    from genlab.expr import ExprError
    from genlab.tables import flatten
    from genlab.tables import select

    table = pd.DataFrame([{"run_id": r.run_id, **flatten(r.config.model_dump())} for r in exp.runs])
    keep: set[str] = set()
    for e in entries:
        rows = table
        try:
            rows = select(rows, e.get("where"))
        except (ExprError, ValueError, KeyError):
            rows = table  # a condition on results (epoch, train_error): every run may be read
        if "by" in e and "low" in e and "high" in e and e["by"] in rows.columns:
            rows = rows[rows[e["by"]].isin([e["low"], e["high"]])]
        keep |= set(rows["run_id"])
    if exp.pairs:
        from genlab.store.pairs import BY, point_key

        without = BY.get(exp.pairs.get("by", "seed"), ("seed",))
        point = {r.run_id: point_key(r.config.model_dump(mode="json"), without) for r in exp.runs}
        kept = {point[rid] for rid in keep}
        keep |= {rid for rid, p in point.items() if p in kept}
    return [r for r in exp.runs if r.run_id in keep]


def parse_duration(text: str) -> float:
    """Seconds in "90s", "30m", "1h30m", "2h" or a plain number of seconds."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", t)
    if not t or not m:
        raise ValueError(f"{text!r} is not a duration (e.g. 45s, 30m, 1h30m)")
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    return float(h * 3600 + mi * 60 + s)
