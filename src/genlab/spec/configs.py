"""Experiment specs: the frozen pydantic configs of a run, and its id (the hash of its canonical JSON).

A spec file holds one experiment: the run fields ([data], [model], [init], [optim], [schedule], [train],
[events], [record], [constraint]), `seeds`, a [sweep] and named [profiles.*]. This module holds the configs;
genlab.spec.loader applies the profile (deep-merged over the file) and expands the sweep × seeds into resolved
`RunConfig`s (`genlab.spec.loader.load`; this module never imports it). Every error names the file, field and value.

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

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator
from pydantic_core import PydanticCustomError

from genlab.registry import lookup


class SpecError(ValueError):
    """A spec that cannot be used. `problems`: one line per problem, each naming the file, the field and the
    value; the message is the first (and how many more there are), on one line."""

    def __init__(self, problems: str | list[str]):
        self.problems = [" ".join(p.split()) for p in ([problems] if isinstance(problems, str) else problems)]
        n = len(self.problems)
        more = f" (and {n - 1} more problems; `genlab run SPEC --dry-run` lists them)" if n > 1 else ""
        super().__init__(self.problems[0] + more)


# Strict scalars: TOML's `true` is not the number 1 and "3" is not 3 (pydantic's lax mode would take both);
# a float field still takes an int. Non-finite numbers are refused everywhere (allow_inf_nan=False).
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Epoch = Annotated[int, Strict(), Field(ge=1)]  # an epoch number; RunConfig checks it is ≤ train.epochs
SEED_MAX = 2**32 - 1  # numpy's SeedSequence and torch.manual_seed both take it


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Registered(BaseModel):
    """A `name` of a registry entry plus its options, flat in TOML (`[model] name="mlp" widths=[100]`).

    The options are checked against the entry's keyword-only signature and filled with its defaults, so the
    resolved config (and its hash) holds every value the run used.
    """

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
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
        from genlab.registry import OptionsError, validate_options

        try:
            fn = cls._lookup(raw["name"])
        except KeyError as e:
            raise PydanticCustomError("unknown_name", "{msg}", {"msg": str(e.args[0]), "sub_loc": "name"})
        fixed = {k: raw[k] for k in cls.model_fields if k in raw}
        opts = {k: v for k, v in raw.items() if k not in cls.model_fields}
        try:
            checked = validate_options(fn, raw["name"], opts, as_json=True)
        except OptionsError as e:
            raise _option_error(e, "")
        return {**fixed, **checked}

    @property
    def options(self) -> dict[str, Any]:
        """The entry's options (everything but the fixed fields)."""
        return dict(self.model_extra or {})


def _option_error(e: Any, prefix: str) -> PydanticCustomError:
    """An OptionsError as the pydantic error spec loading reports (its field path under `prefix`)."""
    loc, msg = e.problems[0]
    more = f" (and {len(e.problems) - 1} more problems)" if len(e.problems) > 1 else ""
    return PydanticCustomError("bad_option", "{msg}", {"msg": msg + more, "sub_loc": prefix + loc})


class DataSpec(_Registered):
    @classmethod
    def _lookup(cls, name):
        return lookup("dataset").get(name)


class ModelSpec(_Registered):
    @classmethod
    def _lookup(cls, name):
        return lookup("model").get(name)


class InitSpec(_Registered):
    """`name` is an init scheme; `bias` how biases start; `scale` multiplies every parameter afterwards."""

    name: str = "default"
    bias: Literal["same", "zero", "default"] = "zero"
    scale: Float = 1.0

    @classmethod
    def _lookup(cls, name):
        return lookup("init").get(name)


def _registered(kind: str):
    """A validator of `name`: an entry of the `kind` registry (genlab.registry.lookup: train/optim.py,
    schedules.py, constraints.py define them), so adding one touches only the file that defines it. The error
    lists the known names."""
    def check(cls, name: str) -> str:
        try:
            lookup(kind).get(name)
        except KeyError as e:
            raise PydanticCustomError("unknown_name", "{msg}", {"msg": str(e.args[0])}) from None
        return name
    return field_validator("name")(check)


class OptimSpec(Frozen):
    name: str = "sgd"  # a registered optimizer: sgd, adam, manhattan (w ← w − lr·sign(g), Liao et al. 2016)
    _name = _registered("optimizer")
    lr: Float = Field(0.01, gt=0)
    momentum: Float = Field(0.0, ge=0, lt=1)  # sgd and manhattan
    nesterov: Bool = False  # sgd only
    weight_decay: Float = Field(0.0, ge=0)  # L2 coefficient λ added to the gradient (λ·w)
    betas: tuple[Annotated[Float, Field(ge=0, lt=1)], Annotated[Float, Field(ge=0, lt=1)]] = (0.9, 0.999)  # adam
    eps: Float = Field(1e-8, gt=0)  # adam only


class ScheduleSpec(Frozen):
    """Learning rate = optim.lr × factor(t), t in epochs (fractional within an epoch)."""

    name: str = "constant"  # a registered schedule: constant, piecewise, cosine
    _name = _registered("schedule")
    milestones: list[Annotated[int, Strict(), Field(ge=0)]] = []  # piecewise: epochs where the factor changes
    factors: list[Annotated[Float, Field(ge=0)]] = []  # piecewise: len(milestones) + 1 factors, the first for
    # epochs before milestones[0]
    min_factor: Float = Field(0.0, ge=0)  # cosine: factor at the last epoch
    warmup_epochs: Float = Field(0.0, ge=0)  # cosine: linear warmup from 0

    @model_validator(mode="after")
    def _check(self):
        if self.name == "piecewise" and len(self.factors) != len(self.milestones) + 1:
            raise ValueError(f"piecewise needs len(factors) == len(milestones) + 1, got {len(self.factors)} "
                             f"factors for {len(self.milestones)} milestones")
        if sorted(self.milestones) != self.milestones:
            raise ValueError(f"milestones must increase, got {self.milestones}")
        return self


class TrainSpec(Frozen):
    epochs: Int = Field(10, ge=0, le=10**7)
    batch_size: Int = Field(128, ge=1)
    loss: str = "cross_entropy"  # a registered loss: cross_entropy, exp, mse
    stop_at_zero_error: Bool = False  # stop once the training error is 0 (000 ch. 4)
    stop_below_loss: Float | None = None  # stop once the training loss is below this (004)
    eval_batch_size: Int = Field(1000, ge=1)
    rule: str = "backprop"  # a registered learning rule (genlab.models.rules): backprop, feedback_alignment, ...
    rule_options: dict[str, Any] = {}  # its keyword options, e.g. {scale = "none"} for sign_symmetry
    # CUDA only (refused on a CPU): bf16 autocast of forward and loss; torch.compile of the model (solo runs).
    # bf16 changes the numbers, so it is part of the run id. Any device: channels_last memory format for 2-D
    # conv nets (solo runs; on a CPU 0.9-1.6× a step, by model: benchmarks/bench_channels_last.py).
    precision: Literal["float32", "bf16"] = "float32"
    channels_last: Bool = False
    compile: Bool = False

    @model_validator(mode="after")
    def _check_loss(self):
        try:
            lookup("loss").get(self.loss)
        except KeyError as e:
            raise PydanticCustomError("unknown_name", "{msg}", {"msg": str(e.args[0]), "sub_loc": "loss"})
        return self

    @model_validator(mode="before")
    @classmethod
    def _resolve_rule(cls, raw: Any) -> Any:
        """The learning rule's options checked against its signature and resolved (every option, for the hash),
        by the one options validator; before validation, so the frozen model is never written to."""
        if not isinstance(raw, dict):
            return raw
        from genlab.registry import OptionsError, validate_options

        get_rule = lookup("rule").get

        rule = raw.get("rule", cls.model_fields["rule"].default)
        if not isinstance(rule, str):
            return raw  # field validation reports it
        try:
            fn = get_rule(rule)
        except KeyError as e:
            raise PydanticCustomError("unknown_name", "{msg}", {"msg": str(e.args[0]), "sub_loc": "rule"})
        try:
            return {**raw, "rule_options": validate_options(fn, rule, raw.get("rule_options", {}), "rule",
                                                            as_json=True)}
        except OptionsError as e:
            raise _option_error(e, "rule_options.")


class EventsSpec(Frozen):
    """Things done to the weights during training, at the end of an epoch (after its steps, before its eval)."""

    perturb_epochs: list[Epoch] = []  # add N(0, perturb_std²) to every weight and bias at these epochs
    perturb_std: Float = Field(0.0, ge=0)  # a standard deviation, not a variance
    # per_seed: the noise comes from the seed's perturb stream, so runs that differ only in perturb_std get
    # the same direction scaled; per_run: each run draws its own (seeded by seed and run id)
    perturb_draw: Literal["per_seed", "per_run"] = "per_seed"
    cosine_ref_epoch: Epoch | None = None  # save the weights at this epoch; record cos(w, w_ref) from then on
    # Frankle et al.'s spawning (ICML 2020): after epoch `spawn_epoch` the run's SGD noise (data order,
    # augmentation, dropout draws) is drawn afresh from (seed, spawn_seed); runs equal but for spawn_seed are
    # children of one parent — identical through epoch k (same seed: same init, same order), apart after it.
    # `[pairs] by = "spawn"` pairs them. None: never (the run is its own parent all the way).
    spawn_epoch: Annotated[int, Strict(), Field(ge=0)] | None = None  # 0: right after initialization
    spawn_seed: Int = Field(0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _spawn(self):
        if self.spawn_seed and self.spawn_epoch is None:
            raise ValueError("spawn_seed is set but spawn_epoch is not: set the epoch the children part at")
        return self


class RecordSpec(Frozen):
    checkpoint: Literal["none", "final"] = "final"  # final.pt (state_dict) when the run ends
    save_init: Bool = True  # init.pt, for distance-from-init measures
    checkpoint_epochs: list[Epoch] = []  # also epoch_<e>.pt at these epochs
    measures: list[str] = []  # registered measures on the final weights → result.json["measures"]
    measure_epochs: list[Epoch] = []  # also compute `measures` at these epochs → those metrics.jsonl rows
    measure_options: dict[str, dict[str, Any]] = {}  # e.g. {sharpness = {cfg = {alpha = 1e-3}}}
    measure_dtype: Literal["float32", "float64"] = "float32"  # precision of the measures' passes over the data
    # save a resume state (weights, optimizer, every RNG, history) every k epochs; 0: whenever RESUME_SECONDS
    # of training passed since the last one (long runs resume mid-way; short ones never pay for it)
    resume_every: Int = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _resolve_measure_options(cls, raw: Any) -> Any:
        """measure_options checked against each measure's signature and resolved (every option, for the hash)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("measure_options"), dict):
            return raw
        from genlab.registry import OptionsError, validate_options

        get_measure = lookup("measure").get

        listed = raw.get("measures", [])
        resolved = {}
        for name, opts in raw["measure_options"].items():
            if not isinstance(listed, list) or name not in listed:
                raise PydanticCustomError("unknown_name", "{msg}", {"msg": f"{name!r} is not in record.measures",
                                                                     "sub_loc": f"measure_options.{name}"})
            try:
                resolved[name] = validate_options(get_measure(name), name, opts, "measure", as_json=True)
            except KeyError as e:
                raise PydanticCustomError("unknown_name", "{msg}", {"msg": str(e.args[0]),
                                                                     "sub_loc": f"measure_options.{name}"})
            except OptionsError as e:
                raise _option_error(e, f"measure_options.{name}.")
        return {**raw, "measure_options": resolved}

    @model_validator(mode="after")
    def _check_measures(self):
        for i, name in enumerate(self.measures):
            try:
                lookup("measure").get(name)
            except KeyError as e:
                msg = (f"{name!r} is a measure of two runs: list it in the spec's [pairs] measures"
                       if name in lookup("pair_measure") else str(e.args[0]))
                raise PydanticCustomError("unknown_name", "{msg}", {"msg": msg, "sub_loc": f"measures.{i}"})
        if self.measure_epochs and not self.measures:
            raise ValueError("measure_epochs is set but no measures are listed in record.measures")
        return self


class ConstraintSpec(Frozen):
    """Weight-normalized training (000 ch. 5; genlab.train.constraints). "none" is plain training."""

    name: str = "none"  # a registered kind: none, project (V_k ← V_k/‖V_k‖_F after every epoch), lagrange
    _name = _registered("constraint")
    rho: Bool = True  # train f = ρ·f_V with a scalar ρ; `project` absorbs the divided-out norms into ρ
    lam_init: Float = Field(1.0, ge=0)  # lagrange: λ_k at the start (a λ_k of 0 stays 0)
    lam_lr: Float = Field(0.01, ge=0)  # lagrange: gradient-ascent step on λ_k, once per optimizer step
    fixed_lambda: Bool = False  # lagrange: hold λ_k = lam_init


class RunConfig(Frozen):
    """Everything that determines one training run. Its canonical JSON hashes to the run id."""

    experiment: str
    seed: Annotated[int, Strict(), Field(ge=0, le=SEED_MAX)] = 0
    data: DataSpec
    model: ModelSpec
    init: InitSpec = Field(default_factory=InitSpec)
    optim: OptimSpec = Field(default_factory=OptimSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    events: EventsSpec = Field(default_factory=EventsSpec)
    record: RecordSpec = Field(default_factory=RecordSpec)
    constraint: ConstraintSpec = Field(default_factory=ConstraintSpec)

    @model_validator(mode="after")
    def _check_epochs(self):
        """Every epoch an event or a checkpoint names must happen: 1 ≤ e ≤ train.epochs. (measure_epochs may
        run past it: one list serves sweep points of different lengths, e.g. 003's min-norm solvers.)"""
        n = self.train.epochs
        named = {"events.perturb_epochs": self.events.perturb_epochs,
                 "events.cosine_ref_epoch": [] if self.events.cosine_ref_epoch is None else [self.events.cosine_ref_epoch],
                 "record.checkpoint_epochs": self.record.checkpoint_epochs}
        for where, epochs in named.items():
            late = [e for e in epochs if e > n]
            if late:
                raise PydanticCustomError("bad_epoch", "{msg}", {
                    "msg": f"epoch {late[0]} is after the last epoch (train.epochs = {n}); use 1..{n}",
                    "sub_loc": where})
        if self.events.spawn_epoch is not None and self.events.spawn_epoch >= n:
            raise PydanticCustomError("bad_epoch", "{msg}", {
                "msg": f"spawn epoch {self.events.spawn_epoch} leaves no epoch to the children (train.epochs = {n}); "
                       f"use 0..{n - 1}", "sub_loc": "events.spawn_epoch"})
        return self

    def canonical_json(self) -> str:
        """Sorted, compact JSON of every field. Fields added later are left out while they hold their
        default (OMIT_DEFAULT), so runs stored before they existed keep their run ids; fields that do not
        change what a run computes (NOT_HASHED) hash (and are stored) as their default, whatever their value."""
        d = self.model_dump(mode="json")
        for dotted, default in NOT_HASHED.items():  # how a run is carried out, not what it computes
            *parents, last = dotted.split(".")
            table = d
            for p in parents:
                table = table[p]
            table[last] = default
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
OMIT_DEFAULT: dict[str, Any] = {"constraint": ConstraintSpec(), "record.measure_options": {}, "train.rule": "backprop",
                                "train.rule_options": {}, "record.resume_every": 0, "events.perturb_draw": "per_seed",
                                "record.measure_dtype": "float32", "train.precision": "float32",
                                "train.channels_last": False, "train.compile": False, "events.spawn_epoch": None,
                                "events.spawn_seed": 0}
# Settings that change how a run is carried out, never its numbers: any value hashes (and is stored in
# config.json) as the default, so they can be changed for a sweep already under way. record.resume_every: the
# resume cadence (a resumed run is bit-identical to an uninterrupted one, tests/test_resume.py). Not here:
# record.measure_dtype (float64 measures differ from float32 ones in the last digits), train.precision.
NOT_HASHED: dict[str, Any] = {"record.resume_every": 0}
