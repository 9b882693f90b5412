"""Experiment specs: the frozen pydantic configs of a run, and its id (the hash of its canonical JSON).

A spec file holds one experiment: the run fields ([data], [model], [init], [optim], [schedule], [train],
[events], [record], [constraint]), `seeds`, a [sweep] and named [profiles.*]. This module holds the configs;
genlab.experiment applies the profile (deep-merged over the file) and expands the sweep × seeds into resolved
`RunConfig`s (`genlab.spec.load` is `genlab.experiment.load`). Every error names the file, the field and value.

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
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError


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
    name: Literal["sgd", "adam", "manhattan"] = "sgd"  # manhattan: w ← w − lr·sign(g) (Liao et al. 2016)
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)  # sgd and manhattan
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
    rule: str = "backprop"  # a registered learning rule (genlab.train.rules): backprop, feedback_alignment, ...
    rule_options: dict[str, Any] = {}  # its keyword options, e.g. {scale = "none"} for sign_symmetry

    @model_validator(mode="after")
    def _check_loss(self):
        from genlab.losses import get_loss

        try:
            get_loss(self.loss)
        except KeyError as e:
            raise PydanticCustomError("unknown_name", "{msg}", {"msg": str(e.args[0]), "sub_loc": "loss"})
        return self

    @model_validator(mode="after")
    def _check_rule(self):
        from genlab.registry import options_model
        from genlab.train.rules import get_rule

        try:
            fn = get_rule(self.rule)
        except KeyError as e:
            raise PydanticCustomError("unknown_name", "{msg}", {"msg": str(e.args[0]), "sub_loc": "rule"})
        try:
            checked = options_model(fn, self.rule).model_validate(self.rule_options)
        except pydantic.ValidationError as e:
            err = e.errors()[0]
            msg = "unknown option (known: " + (", ".join(_option_names(fn)) or "none") + ")" \
                if err["type"] == "extra_forbidden" else err["msg"]
            raise PydanticCustomError("bad_option", "{msg} (got {value})", {
                "msg": msg, "value": repr(err.get("input")),
                "sub_loc": ".".join(["rule_options", *map(str, err["loc"])])})
        self.rule_options.clear()
        self.rule_options.update(checked.model_dump(mode="json"))  # resolved: every option, for the hash
        return self


class EventsSpec(Frozen):
    """Things done to the weights during training, at the end of an epoch (after its steps, before its eval)."""

    perturb_epochs: list[int] = []  # add N(0, perturb_std²) to every weight and bias at these epochs
    perturb_std: float = Field(0.0, ge=0)  # a standard deviation, not a variance
    # per_seed: the noise comes from the seed's perturb stream, so runs that differ only in perturb_std get
    # the same direction scaled; per_run: each run draws its own (seeded by seed and run id)
    perturb_draw: Literal["per_seed", "per_run"] = "per_seed"
    cosine_ref_epoch: int | None = None  # save the weights at this epoch; record cos(w, w_ref) from then on


class RecordSpec(Frozen):
    checkpoint: Literal["none", "final"] = "final"  # final.pt (state_dict) when the run ends
    save_init: bool = True  # init.pt, for distance-from-init measures
    checkpoint_epochs: list[int] = []  # also epoch_<e>.pt at these epochs
    measures: list[str] = []  # registered measures on the final weights → result.json["measures"]
    measure_epochs: list[int] = []  # also compute `measures` at these epochs → those metrics.jsonl rows
    measure_options: dict[str, dict[str, Any]] = {}  # e.g. {sharpness = {cfg = {alpha = 1e-3}}}
    measure_dtype: Literal["float32", "float64"] = "float32"  # precision of the measures' passes over the data
    # save a resume state (weights, optimizer, every RNG, history) every k epochs; 0: whenever RESUME_SECONDS
    # of training passed since the last one (long runs resume mid-way; short ones never pay for it)
    resume_every: int = Field(0, ge=0)

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
OMIT_DEFAULT: dict[str, Any] = {"constraint": ConstraintSpec(), "record.measure_options": {}, "train.rule": "backprop",
                                "train.rule_options": {}, "record.resume_every": 0, "events.perturb_draw": "per_seed",
                                "record.measure_dtype": "float32"}


# The experiment-level API (profiles, sweeps, loading) lives in genlab.experiment; it is reachable here too,
# so `genlab.spec.load(path)` works, without a circular import at module level.
_EXPERIMENT_API = ("RUN_FIELDS", "EXPERIMENT_KEYS", "PlannedRun", "Experiment", "deep_merge", "set_path", "parse",
                   "default_profile", "load")


def __getattr__(name: str) -> Any:
    if name in _EXPERIMENT_API:
        from genlab import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'genlab.spec' has no attribute {name!r}")
