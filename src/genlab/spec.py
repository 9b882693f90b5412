"""Experiment specs: TOML → frozen pydantic configs, profiles, sweeps, run ids.

A spec file holds one experiment: the run fields ([data], [model], [init], [optim], [schedule], [train],
[events], [record], [constraint]), `seeds`, a [sweep] and named [profiles.*]. `load(path, profile)` applies the profile
(deep-merged over the file), expands the sweep × seeds into resolved `RunConfig`s and hashes each one's
canonical JSON into its run id. Every error names the file, the dotted field and the bad value.

    name = "fig3_1"
    seeds = [0]
    [data]                       # options of the registered dataset, checked against its signature
    name = "separable"
    dim = 5
    [sweep]                      # cartesian product of lists ...
    "init.std" = [0.01, 0.05, 0.1]
    [[sweep.zip]]                # ... times zipped groups of equal-length lists
    "optim.lr" = [0.1, 0.01]
    "train.epochs" = [10, 100]
    [profiles.small]             # overrides, deep-merged
    data.n_train = 500
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class SpecError(ValueError):
    """A spec that cannot be used; the message names the file, the field and the value."""


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Registered(BaseModel):
    """A `name` of a registry entry plus its options, flat in TOML (`[model] name="mlp" widths=[100]`).

    The options are checked against the entry's keyword-only signature and filled with its defaults, so the
    resolved config (and its hash) holds every value the run used.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str

    @classmethod
    def _lookup(cls, name: str):  # -> the registered callable
        raise NotImplementedError

    @model_validator(mode="before")
    @classmethod
    def _check_options(cls, raw: Any) -> Any:
        default = cls.model_fields["name"].default
        if isinstance(raw, dict) and "name" not in raw and isinstance(default, str):
            raw = {"name": default, **raw}
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            return raw  # let field validation report the missing/invalid name
        from genlab.registry import options_model

        try:
            fn = cls._lookup(raw["name"])
        except KeyError as e:
            raise PydanticCustomError("unknown_name", "{msg}", {"msg": str(e.args[0]), "sub_loc": "name"})
        fixed = {k: raw[k] for k in cls.model_fields if k in raw}
        opts = {k: v for k, v in raw.items() if k not in cls.model_fields}
        try:
            checked = options_model(fn, raw["name"]).model_validate(opts)
        except pydantic.ValidationError as e:
            err = e.errors()[0]
            sub = ".".join(str(p) for p in err["loc"])
            msg = "unknown option (known: " + ", ".join(_option_names(fn)) + ")" \
                if err["type"] == "extra_forbidden" else err["msg"]
            raise PydanticCustomError("bad_option", "{msg} (got {value})",
                                      {"msg": msg, "value": repr(err.get("input")), "sub_loc": sub})
        return {**fixed, **checked.model_dump(mode="json")}

    @property
    def options(self) -> dict[str, Any]:
        """The entry's options (everything but the fixed fields)."""
        return dict(self.model_extra or {})


def _option_names(fn) -> list[str]:
    from genlab.registry import options_of

    return sorted(options_of(fn))


class DataSpec(_Registered):
    @classmethod
    def _lookup(cls, name):
        from genlab.data import get_dataset_fn

        return get_dataset_fn(name)


class ModelSpec(_Registered):
    @classmethod
    def _lookup(cls, name):
        from genlab.models import get_model_fn

        return get_model_fn(name)


class InitSpec(_Registered):
    """`name` is an init scheme; `bias` how biases start; `scale` multiplies every parameter afterwards."""

    name: str = "default"
    bias: Literal["same", "zero", "default"] = "zero"
    scale: float = 1.0

    @classmethod
    def _lookup(cls, name):
        from genlab.models.init import get_init

        return get_init(name)


class OptimSpec(Frozen):
    name: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)  # sgd only
    nesterov: bool = False  # sgd only
    weight_decay: float = Field(0.0, ge=0)  # L2 coefficient λ added to the gradient (λ·w)
    betas: tuple[float, float] = (0.9, 0.999)  # adam only
    eps: float = 1e-8  # adam only


class ScheduleSpec(Frozen):
    """Learning rate = optim.lr × factor(t), t in epochs (fractional within an epoch)."""

    name: Literal["constant", "piecewise", "cosine"] = "constant"
    milestones: list[int] = []  # piecewise: epochs where the factor changes
    factors: list[float] = []  # piecewise: len(milestones) + 1 factors, the first for epochs before milestones[0]
    min_factor: float = 0.0  # cosine: factor at the last epoch
    warmup_epochs: float = 0.0  # cosine: linear warmup from 0

    @model_validator(mode="after")
    def _check(self):
        if self.name == "piecewise" and len(self.factors) != len(self.milestones) + 1:
            raise ValueError(f"piecewise needs len(factors) == len(milestones) + 1, got {len(self.factors)} "
                             f"factors for {len(self.milestones)} milestones")
        if sorted(self.milestones) != self.milestones:
            raise ValueError(f"milestones must increase, got {self.milestones}")
        return self


class TrainSpec(Frozen):
    epochs: int = Field(10, ge=0)
    batch_size: int = Field(128, ge=1)
    loss: str = "cross_entropy"  # a registered loss: cross_entropy, exp, mse
    stop_at_zero_error: bool = False  # stop once the training error is 0 (000 ch. 4)
    stop_below_loss: float | None = None  # stop once the training loss is below this (004)
    eval_batch_size: int = Field(1000, ge=1)

    @model_validator(mode="after")
    def _check_loss(self):
        from genlab.train.losses import get_loss

        try:
            get_loss(self.loss)
        except KeyError as e:
            raise PydanticCustomError("unknown_name", "{msg}", {"msg": str(e.args[0]), "sub_loc": "loss"})
        return self


class EventsSpec(Frozen):
    """Things done to the weights during training, at the end of an epoch (after its steps, before its eval)."""

    perturb_epochs: list[int] = []  # add N(0, perturb_std²) to every weight and bias at these epochs
    perturb_std: float = Field(0.0, ge=0)  # a standard deviation, not a variance
    cosine_ref_epoch: int | None = None  # save the weights at this epoch; record cos(w, w_ref) from then on


class RecordSpec(Frozen):
    checkpoint: Literal["none", "final"] = "final"  # final.pt (state_dict) when the run ends
    save_init: bool = True  # init.pt, for distance-from-init measures
    checkpoint_epochs: list[int] = []  # also epoch_<e>.pt at these epochs
    measures: list[str] = []  # registered measures on the final weights → result.json["measures"]
    measure_epochs: list[int] = []  # also compute `measures` at these epochs → those metrics.jsonl rows
    measure_options: dict[str, dict[str, Any]] = {}  # e.g. {sharpness = {cfg = {alpha = 1e-3}}}

    @model_validator(mode="after")
    def _check_measures(self):
        from genlab.measures import get_measure

        for i, name in enumerate(self.measures):
            try:
                get_measure(name)
            except KeyError as e:
                raise PydanticCustomError("unknown_name", "{msg}", {"msg": str(e.args[0]), "sub_loc": f"measures.{i}"})
        if self.measure_epochs and not self.measures:
            raise ValueError("measure_epochs is set but no measures are listed in record.measures")
        from genlab.registry import options_model

        for name, opts in self.measure_options.items():
            if name not in self.measures:
                raise PydanticCustomError("unknown_name", "{msg}", {"msg": f"{name!r} is not in record.measures",
                                                                     "sub_loc": f"measure_options.{name}"})
            try:
                checked = options_model(get_measure(name), name).model_validate(opts)
            except pydantic.ValidationError as e:
                err = e.errors()[0]
                raise PydanticCustomError("bad_option", "{msg}", {"msg": err["msg"], "sub_loc": ".".join(
                    ["measure_options", name, *map(str, err["loc"])])})
            self.measure_options[name] = checked.model_dump(mode="json")  # resolved: every option, for the hash
        return self


class ConstraintSpec(Frozen):
    """Weight-normalized training (000 ch. 5; genlab.train.weightnorm). "none" is plain training."""

    name: Literal["none", "project", "lagrange"] = "none"  # project: V_k ← V_k/‖V_k‖_F after every epoch
    rho: bool = True  # train f = ρ·f_V with a scalar ρ; `project` absorbs the divided-out norms into ρ
    lam_init: float = Field(1.0, ge=0)  # lagrange: λ_k at the start (a λ_k of 0 stays 0)
    lam_lr: float = Field(0.01, ge=0)  # lagrange: gradient-ascent step on λ_k, once per optimizer step
    fixed_lambda: bool = False  # lagrange: hold λ_k = lam_init


class RunConfig(Frozen):
    """Everything that determines one training run. Its canonical JSON hashes to the run id."""

    experiment: str
    seed: int = 0
    data: DataSpec
    model: ModelSpec
    init: InitSpec = InitSpec()
    optim: OptimSpec = OptimSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    train: TrainSpec = TrainSpec()
    events: EventsSpec = EventsSpec()
    record: RecordSpec = RecordSpec()
    constraint: ConstraintSpec = ConstraintSpec()

    def canonical_json(self) -> str:
        """Sorted, compact JSON of every field. Fields added later are left out while they hold their
        default (OMIT_DEFAULT), so runs stored before they existed keep their run ids."""
        d = self.model_dump(mode="json")
        for dotted, default in OMIT_DEFAULT.items():
            *parents, last = dotted.split(".")
            table = d
            for p in parents:
                table = table[p]
            if table.get(last) == (default.model_dump(mode="json") if isinstance(default, BaseModel) else default):
                del table[last]
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        """First 12 hex digits of sha256(canonical JSON)."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:12]


# Fields added after runs were stored (absent from their config.json): left out of the hash at their default.
OMIT_DEFAULT: dict[str, Any] = {"constraint": ConstraintSpec(), "record.measure_options": {}}
RUN_FIELDS = tuple(f for f in RunConfig.model_fields if f != "experiment")
EXPERIMENT_KEYS = ("name", "description", "seeds", "sweep", "profiles", "figures", "findings", "default_profile")


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
    sweep_fields: tuple[str, ...] = ()
    text: str = field(default="", repr=False)

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


def parse(raw: dict, *, where: str = "<spec>", profile: str | None = None, text: str = "",
          path: Path | None = None) -> Experiment:
    """Expand a spec dict (as read from TOML) under `profile` into an `Experiment` of planned runs."""
    unknown = sorted(set(raw) - set(EXPERIMENT_KEYS) - set(RUN_FIELDS))
    if unknown:
        known = ", ".join(EXPERIMENT_KEYS + RUN_FIELDS)
        raise _fail(where, unknown[0], f"unknown field (known top-level fields: {known})")
    profiles = raw.get("profiles", {})
    if profile is not None:
        if profile not in profiles:
            raise _fail(where, "profiles", f"no profile {profile!r}; this spec has: {sorted(profiles) or 'none'}")
        over = profiles[profile]
        bad = sorted(set(over) - {"seeds", "sweep", "description", "figures", "findings"} - set(RUN_FIELDS))
        if bad:
            raise _fail(where, f"profiles.{profile}.{bad[0]}", "unknown field")
        raw = deep_merge({k: v for k, v in raw.items() if k != "profiles"}, over)
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
                      text=text)


def default_profile(raw: dict) -> str | None:
    """The profile used when none is asked for: `default_profile`, else `small` if defined, else none."""
    if "default_profile" in raw:
        return raw["default_profile"]
    return "small" if "small" in raw.get("profiles", {}) else None


def load(path: str | Path, profile: str | None = "default") -> Experiment:
    """Read a TOML spec and expand it under `profile` ("default": see `default_profile`; None: no profile)."""
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
    return parse(raw, where=str(path), profile=profile, text=text, path=path)
