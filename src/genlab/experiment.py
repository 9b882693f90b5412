"""Experiments: a spec file's profiles and sweep expanded into planned runs (the configs live in genlab.spec).

`load(path, profile)` reads the TOML, deep-merges the profile over it, expands the sweep (cartesian lists ×
zipped groups) × seeds into resolved `RunConfig`s, and names the file, the dotted field and the bad value in
every error. `genlab.spec.load` is the same function.
"""

from __future__ import annotations

import copy
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from genlab import overrides
from genlab.spec import RunConfig, SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


RUN_FIELDS = tuple(f for f in RunConfig.model_fields if f != "experiment")
EXPERIMENT_KEYS = ("name", "description", "chapter", "seeds", "sweep", "profiles", "figures", "findings",
                   "default_profile", "analysis")


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
    sweep_fields: tuple[str, ...] = ()
    text: str = field(default="", repr=False)
    sets: dict[str, Any] = field(default_factory=dict)  # the command line's --set overrides (provenance)
    chapter: str = ""  # the seed's chapter or section, e.g. "ch. 3 — linear networks" (the report groups by it)

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]


def _fail(where: str, path: str, msg: str, value: Any = None) -> SpecError:
    v = "" if value is None else f" (got {value!r})"
    return SpecError(f"{where}: {path}: {msg}{v}")


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


def _sweep_points(sweep: dict, where: str) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The cartesian product of the grid lists times the zipped groups, as a list of {dotted: value}."""
    if not isinstance(sweep, dict):
        raise _fail(where, "sweep", "must be a table of lists", sweep)
    grid = {k: v for k, v in sweep.items() if k != "zip"}
    zips = sweep.get("zip", [])
    axes: list[list[dict[str, Any]]] = []
    for k, vals in grid.items():
        if not isinstance(vals, list) or not vals:
            raise _fail(where, f"sweep.{k}", "must be a non-empty list of values", vals)
        axes.append([{k: v} for v in vals])
    for i, group in enumerate(zips if isinstance(zips, list) else [zips]):
        lens = {k: len(v) if isinstance(v, list) else -1 for k, v in group.items()}
        if not lens or min(lens.values()) < 1 or len(set(lens.values())) != 1:
            raise _fail(where, f"sweep.zip[{i}]", "needs non-empty lists of one common length", lens)
        n = next(iter(lens.values()))
        axes.append([{k: group[k][j] for k in group} for j in range(n)])
    fields = tuple(k for ax in axes for k in ax[0])
    points = [dict(kv for part in combo for kv in part.items()) for combo in itertools.product(*axes)]
    return points, fields


def _format_validation(err: pydantic.ValidationError) -> tuple[str, str, Any]:
    e = err.errors()[0]
    loc = [str(p) for p in e["loc"] if not str(p).startswith("function-")]
    sub = (e.get("ctx") or {}).get("sub_loc")
    path = ".".join(loc + ([sub] if sub else [])) or "(top)"
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = "unknown field"
    value = e.get("input") if e["type"] not in ("bad_option", "unknown_name") else None
    if isinstance(value, dict):
        value = None
    return path, msg.removeprefix("Value error, "), value


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

    `sets` ({dotted key: value}, see genlab.overrides) apply after the profile; `name` renames the experiment
    (its runs then get their own ids and folder, so variants never pool with the spec's runs).
    """
    unknown = sorted(set(raw) - set(EXPERIMENT_KEYS) - set(RUN_FIELDS))
    if unknown:
        known = ", ".join(EXPERIMENT_KEYS + RUN_FIELDS)
        raise _fail(where, unknown[0], f"unknown field (known top-level fields: {known})")
    profiles = raw.get("profiles", {})
    if profile is not None:
        if profile not in profiles:
            raise _fail(where, "profiles", f"no profile {profile!r}; this spec has: {sorted(profiles) or 'none'}")
        over = profiles[profile]
        bad = sorted(set(over) - {"seeds", "sweep", "description", "figures", "findings", "analysis"} - set(RUN_FIELDS))
        if bad:
            raise _fail(where, f"profiles.{profile}.{bad[0]}", "unknown field")
        raw = deep_merge({k: v for k, v in raw.items() if k != "profiles"}, over)
    if sets:
        raw = overrides.apply(raw, sets, RUN_FIELDS, _holds_list)
        where = f"{where} ({overrides.describe(sets)})"
    if name is not None:
        raw = {**raw, "name": name}
    name = raw.get("name")
    if not isinstance(name, str) or not name.replace("-", "_").replace(".", "_").isidentifier():
        raise _fail(where, "name", "needs a name of letters, digits, '_', '-' or '.'", name)
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise _fail(where, "seeds", "must be a non-empty list of integers", seeds)
    points, sweep_fields = _sweep_points(raw.get("sweep", {}), where)
    base = {k: raw[k] for k in RUN_FIELDS if k in raw}
    runs, seen = [], set()
    for point in points:
        for seed in seeds:
            d = copy.deepcopy(base)
            for k, v in point.items():
                try:
                    set_path(d, k, v)
                except KeyError:
                    raise _fail(where, f"sweep.{k}", "is not a path to a field") from None
            d.update(experiment=name, seed=seed)
            try:
                cfg = RunConfig.model_validate(d)
            except pydantic.ValidationError as err:
                fpath, msg, value = _format_validation(err)
                at = f" (sweep point {point})" if point else ""
                raise _fail(where + at, fpath, msg, value) from None
            if cfg.run_id not in seen:  # a sweep may name the same run twice; it runs once
                seen.add(cfg.run_id)
                runs.append(PlannedRun(cfg, {**point, "seed": seed}))
    return Experiment(name=name, path=path, profile=profile, description=raw.get("description", ""),
                      runs=tuple(runs), figures=tuple(raw.get("figures", [])),
                      findings=tuple(raw.get("findings", [])), sweep_fields=sweep_fields,
                      text=text, sets=dict(sets or {}), chapter=str(raw.get("chapter", "")),
                      analysis=_analysis(raw, where))


def _analysis(raw: dict, where: str) -> dict[str, Any] | None:
    """The checked `[analysis]` table (every option filled in), or None when the spec has none."""
    if "analysis" not in raw:
        return None
    from genlab.analysis.options import AnalysisSpec

    try:
        return AnalysisSpec.model_validate(raw["analysis"]).model_dump()
    except pydantic.ValidationError as err:
        e = err.errors()[0]
        raise _fail(where, ".".join(["analysis", *map(str, e["loc"])]), e["msg"], e.get("input")) from None


def default_profile(raw: dict) -> str | None:
    """The profile used when none is asked for: `default_profile`, else `small` if defined, else none."""
    if "default_profile" in raw:
        return raw["default_profile"]
    return "small" if "small" in raw.get("profiles", {}) else None


def load(path: str | Path, profile: str | None = "default", *, sets: dict[str, Any] | None = None,
         name: str | None = None) -> Experiment:
    """Read a TOML spec and expand it under `profile` ("default": see `default_profile`; None: no profile),
    with the command line's `sets` overrides and `name` (see `parse`)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None
    if profile == "default":
        profile = default_profile(raw)
    return parse(raw, where=str(path), profile=profile, text=text, path=path, sets=sets, name=name)
