"""Experiments: a spec file's profiles and sweep expanded into planned runs (the configs live in genlab.spec).

`load(path, profile)` reads the TOML, deep-merges the profile over it, expands the sweep (cartesian lists ×
zipped groups) × seeds into resolved `RunConfig`s, and names the file, the dotted field and the bad value in
every error. Every check of a spec happens in `parse`, before anything runs, and all problems are reported
together (`SpecError.problems`; `genlab run SPEC --dry-run` prints them).
"""

from __future__ import annotations

import copy
import itertools
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from genlab.spec import overrides
from genlab.spec.checks import (MAX_NESTING, MAX_RUNS, PROFILE_KEYS, RUN_FIELDS, Problems, column_problems, data_problems,
                           where_problems,
                           entries, shape_problems, short, sweep_axes)
from genlab.paths import check_name
from genlab.registry import format_errors
from genlab.spec import SEED_MAX, RunConfig, SpecError
from genlab.spec.pairs import check_pairs
from genlab.tables import flatten

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


EXPERIMENT_KEYS = ("name", "description", "chapter", "seeds", "sweep", "profiles", "figures", "findings",
                   "default_profile", "analysis", "pairs")


@dataclass(frozen=True)
class PlannedRun:
    """One expanded run: its config, and the sweep point it came from (for labels)."""

    config: RunConfig
    point: dict[str, Any]

    @property
    def run_id(self) -> str:
        return self.config.run_id


@dataclass(frozen=True)
class Experiment:
    name: str
    path: Path | None
    profile: str | None
    description: str
    runs: tuple[PlannedRun, ...]
    figures: tuple[dict[str, Any], ...] = ()
    findings: tuple[dict[str, Any], ...] = ()  # [[findings]]: the seed's claims, checked in the report
    analysis: dict[str, Any] | None = None  # [analysis]: the measure ranking in the report (genlab.analysis)
    pairs: dict[str, Any] | None = None  # [pairs]: pair measures on pairs of its runs (genlab.spec.pairs)
    sweep_fields: tuple[str, ...] = ()
    text: str = field(default="", repr=False)
    sets: dict[str, Any] = field(default_factory=dict)  # the command line's --set overrides (provenance)
    chapter: str = ""  # the seed's chapter or section, e.g. "ch. 3 — linear networks" (the report groups by it)

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]


def deep_merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`: tables merge key by key, anything else replaces.

    A table that names a different registry entry (`data = {name = "digits"}` over `name = "cifar10"`)
    replaces the base table whole: the other entry's options would not apply to it.
    """
    out = copy.deepcopy(base)
    for k, v in over.items():
        old = out.get(k)
        same_entry = isinstance(old, dict) and isinstance(v, dict) and v.get("name", old.get("name")) == old.get("name")
        out[k] = deep_merge(old, v) if same_entry else copy.deepcopy(v)
    return out


def set_path(d: dict, dotted: str, value: Any) -> None:
    """d["a"]["b"] = value for dotted = "a.b", creating tables on the way."""
    *parents, last = dotted.split(".")
    for p in parents:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise KeyError(dotted)
    d[last] = value


def _holds_list(raw: dict, key: str) -> bool:
    """Whether the run field at dotted `key` holds a list: in the spec, else in the defaults (of the registry
    entries the spec names: their options' defaults depend on the name only)."""
    value = overrides.get_path(raw, key)
    if value is overrides.MISSING:
        names = {k: {"name": raw[k]["name"]} for k in ("data", "model", "init")
                 if isinstance(raw.get(k), dict) and "name" in raw[k]}
        try:
            defaults = RunConfig.model_validate({**names, "experiment": "x"}).model_dump(mode="json")
        except pydantic.ValidationError:
            return False
        value = overrides.get_path(defaults, key)
    return isinstance(value, list)


def parse(raw: dict, *, where: str = "<spec>", profile: str | None = None, text: str = "",
          path: Path | None = None, sets: dict[str, Any] | None = None, name: str | None = None) -> Experiment:
    """Expand a spec dict (as read from TOML) under `profile` into an `Experiment` of planned runs.

    `sets` ({dotted key: value}, see genlab.spec.overrides) apply after the profile; `name` renames the experiment
    (its runs then get their own ids and folder, so variants never pool with the spec's runs).
    Every check happens here, once, before anything runs; a SpecError carries all the problems found
    (`SpecError.problems`, one line each) and its message is the first. Three steps: `resolve` (profile, --set,
    name), `check` (every table of the document), `expand` (sweep × seeds → resolved RunConfigs), then the
    figures' and findings' columns against the runs.
    """
    problems = Problems(where)
    raw = resolve(raw, problems, profile, sets, name)
    doc = check(raw, problems)
    problems.fail()
    runs, columns = expand(raw, doc, problems)
    if runs:
        for key in ("figures", "findings"):
            column_problems(doc[key], key, columns, problems)
            where_problems(doc[key], key, runs, problems)
        data_problems(runs, problems)
        if (doc["pairs"] or {}).get("by") == "spawn" and all(r.config.events.spawn_epoch is None for r in runs):
            problems.add("pairs.by", "'spawn' pairs children of one parent, but no run sets events.spawn_epoch "
                         "(sweep events.spawn_seed = [1, 2] with events.spawn_epoch = k)")
    problems.fail()
    return Experiment(name=raw["name"], path=path, profile=profile, description=raw.get("description", ""),
                      runs=tuple(runs), figures=doc["figures"], findings=doc["findings"],
                      sweep_fields=doc["sweep_fields"], text=text, sets=dict(sets or {}),
                      chapter=str(raw.get("chapter", "")), analysis=doc["analysis"], pairs=doc["pairs"])


def resolve(raw: dict, problems: Problems, profile: str | None, sets: dict[str, Any] | None,
            name: str | None) -> dict:
    """The document a profile, `--set` overrides and a new name make of `raw` (its shape checked first)."""
    if not raw:
        problems.add("name", 'the spec is empty: it needs at least name = "...", a [data] and a [model] table')
        problems.fail()
    if shape_problems(raw, problems):
        problems.fail()  # what follows recurses into the document
    unknown = sorted(set(raw) - set(EXPERIMENT_KEYS) - set(RUN_FIELDS))
    if "seed" in unknown:
        unknown.remove("seed")
        problems.add("seed", "is not a spec field: set `seeds = [0, 1, ...]` (every point runs once per seed)")
    for k in unknown:
        problems.add(k, f"unknown field (known top-level fields: {', '.join(EXPERIMENT_KEYS + RUN_FIELDS)})")
    profiles = raw.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
        problems.add("profiles", "must be tables of overrides ([profiles.small] ...)",
                     profiles if not isinstance(profiles, dict) else None)
        problems.fail()
    if profile is not None:
        if profile not in profiles:
            problems.add("profiles", f"no profile {profile!r}; this spec has: {sorted(profiles) or 'none'}")
            problems.fail()
        over = profiles[profile]
        for bad in sorted(set(over) - set(PROFILE_KEYS) - set(RUN_FIELDS)):
            problems.add(f"profiles.{profile}.{bad}", "unknown field")
        raw = deep_merge({k: v for k, v in raw.items() if k != "profiles"}, over)
    if sets:
        raw = overrides.apply(raw, sets, RUN_FIELDS, _holds_list)  # an OverrideError names the --set item
        problems.where = f"{problems.where} ({overrides.describe(sets)})"
    return {**raw, "name": name} if name is not None else raw


def check(raw: dict, problems: Problems) -> dict[str, Any]:
    """Every top-level field of a resolved document checked; returns its parts: seeds, figures, findings,
    analysis, pairs, the sweep's axes and the fields they sweep (problems added, nothing raised)."""
    try:
        check_name(raw.get("name"), "experiment name")
    except ValueError as e:
        problems.add("name", str(e))
    for key in ("description", "chapter"):
        if not isinstance(raw.get(key, ""), str):
            problems.add(key, "must be a string", raw[key])
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= SEED_MAX for s in seeds):
        problems.add("seeds", f"must be a non-empty list of integers in 0..{SEED_MAX}", seeds)
        seeds = [0]
    for k in RUN_FIELDS:
        if k in raw and not isinstance(raw[k], dict):
            problems.add(k, "must be a table", raw[k])
    axes = sweep_axes(raw.get("sweep", {}), problems)
    if axes is not None and (size := math.prod(len(ax) for ax in axes) * len(seeds)) > MAX_RUNS:
        problems.add("sweep", f"expands to {size:,} runs, more than {MAX_RUNS:,}; split the spec into several")
        axes = None
    return {"seeds": seeds, "figures": entries(raw, "figures", problems),
            "findings": entries(raw, "findings", problems), "analysis": _analysis(raw, problems),
            "pairs": check_pairs(raw, problems), "axes": axes or [],
            "sweep_fields": tuple(k for ax in axes or [] for k in ax[0])}


def expand(raw: dict, doc: dict[str, Any], problems: Problems) -> tuple[list[PlannedRun], set[str]]:
    """The sweep's points × seeds as resolved, de-duplicated runs (a sweep may name one run twice; it runs
    once), and the config columns they have (for the figures' and findings' column checks)."""
    points = [dict(kv for part in combo for kv in part.items()) for combo in itertools.product(*doc["axes"])]
    base = {k: raw[k] for k in RUN_FIELDS if k in raw}
    where = problems.where
    runs, seen, columns = [], set(), set()
    for point in points:
        for seed in doc["seeds"]:
            d = _with_point(base, point, problems)
            d.update(experiment=raw["name"], seed=seed)
            try:
                cfg = RunConfig.model_validate(d)
            except pydantic.ValidationError as err:
                problems.where = where + (f" (sweep point {short(point)})" if point else "")
                for fpath, msg in format_errors(err):
                    problems.add(fpath, msg)
                problems.where = where
                continue
            if cfg.run_id not in seen:
                seen.add(cfg.run_id)
                runs.append(PlannedRun(cfg, {**point, "seed": seed}))
                if not columns or any(isinstance(v, dict) for v in point.values()):  # a swept table adds columns
                    columns.update(flatten(cfg.model_dump(mode="json")))
    return runs, columns


def _with_point(base: dict, point: dict[str, Any], problems: Problems) -> dict:
    """`base` with the sweep point's values set; only the tables on the way are copied (pydantic reads its
    input without changing it, so the rest is shared: a deep copy per run was most of a big sweep's time)."""
    d = dict(base)
    for k, v in point.items():
        *parents, last = k.split(".")
        node = d
        for p in parents:
            child = node.get(p, {})
            if not isinstance(child, dict):
                problems.add(f"sweep.{k}", "is not a path to a field")
                break
            node[p] = child = dict(child)
            node = child
        else:
            node[last] = v
    return d


def _analysis(raw: dict, problems: Problems) -> dict[str, Any] | None:
    """The checked `[analysis]` table (every option filled in), or None when the spec has none."""
    if "analysis" not in raw:
        return None
    from genlab.spec.analysis import AnalysisSpec

    try:
        return AnalysisSpec.model_validate(raw["analysis"]).model_dump()
    except pydantic.ValidationError as err:
        for loc, msg in format_errors(err):
            problems.add(f"analysis.{loc}", msg)
        return None


def default_profile(raw: dict) -> str | None:
    """The profile used when none is asked for: `default_profile`, else `small` if defined, else none."""
    if "default_profile" in raw:
        return raw["default_profile"] if isinstance(raw["default_profile"], str) else str(raw["default_profile"])
    profiles = raw.get("profiles", {})
    return "small" if isinstance(profiles, dict) and "small" in profiles else None


def loads(text: str, where: str = "<spec>") -> dict:
    """The TOML document of spec text; SpecError naming `where` when it is not TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{where}: not valid TOML: {e}") from None
    except RecursionError:
        raise SpecError(f"{where}: nested too deeply to read (arrays or tables more than {MAX_NESTING} "
                        "levels deep)") from None


def read(path: str | Path) -> tuple[dict, str]:
    """(the TOML document, its text) of a spec file; SpecError naming the file for anything unreadable."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SpecError(f"{path}: cannot read the spec ({e.strerror or e}); check its permissions") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}); "
                        "save the spec as UTF-8") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark (some Windows editors write one) is not TOML: skipped
    return loads(text, str(path)), text


def load(path: str | Path, profile: str | None = "default", *, sets: dict[str, Any] | None = None,
         name: str | None = None) -> Experiment:
    """Read a TOML spec and expand it under `profile` ("default": see `default_profile`; None: no profile),
    with the command line's `sets` overrides and `name` (see `parse`)."""
    path = Path(path)
    raw, text = read(path)
    if profile == "default":
        profile = default_profile(raw)
    return parse(raw, where=str(path), profile=profile, text=text, path=path, sets=sets, name=name)
