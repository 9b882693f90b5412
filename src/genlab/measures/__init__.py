"""Measures of trained networks: a registry of pure functions `fn(model, data, *, options) -> float | dict`.

A measure reads a model and a `MeasureData` (the training and test splits as model-ready tensors, the loss,
the init weights) and returns numbers. It never trains, prints, writes files or draws from the global RNG;
random procedures take a `torch.Generator`. Register one where it is defined:

    @register_measure("log_l2_path_norm")
    def log_l2_path_norm(model, data) -> float: ...

Families: norms, spectral, paths, margins, bounds (composites of registered measures), sharpness, pacbayes,
hessian, normalized. `fold.py` folds BatchNorm into the preceding layer before weight-based measures;
`layers.py` finds the linear/conv operators by module type and their input shapes by forward hooks.

Units: products of norms over deep nets overflow, so they are returned as natural logs, named `log_...`.
`compute(names, model, data, dtype=...)` is the one entry point the trainer and the CLI call. `dtype` is the
precision of the network's passes over the data (outputs, margins, losses, the searches, the Hessian); one
default everywhere, `DEFAULT_DTYPE` = float32 (the API, the trainer's `record.measure_dtype` and `genlab measure
--dtype`: measured in benchmarks/bench_measures.py to change no printed digit); exact checks ask for float64.
A measure that does not apply to a model (`applies`: the least-squares measures on a net not trained with the
`mse` loss) is skipped by compute(), not computed: its keys are absent from the result. Measures of the weights
alone (norms, spectral norms, path norms) and of the design (regression) always run in float64: they are cheap.
Random draws are made in float64 on the CPU from the measure's seed and then cast, so a seed gives the same
noise in either dtype. Within one call, values several measures need (outputs on each split, the folded layers,
conv spectral norms, a search two measures share) are computed once, in the call's `Cache` (`MeasureData.cache`).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Hashable, TypeVar

import torch
from torch import nn

from genlab.registry import Registry
from genlab.losses import Loss

MeasureFn = Callable[..., "float | dict[str, float]"]
_MEASURES: Registry[MeasureFn] = Registry("measure")
register_measure = _MEASURES.register
get_measure = _MEASURES.get
list_measures = _MEASURES.names
PREPROCESS_CHUNK = 4096  # rows per `Dataset.inputs` call, so a large uint8 set is not expanded at once
DTYPES = {"float32": torch.float32, "float64": torch.float64}  # the choices of `record.measure_dtype`, `--dtype`
DEFAULT_DTYPE = "float32"  # of compute(), the trainer's and the CLI's measures: one default
T = TypeVar("T")


def is_measure(name: str) -> bool:
    return name in _MEASURES


APPLIES = "applies"  # a measure's optional attribute: fn.applies(model, data) -> bool; False: compute() skips it


def applies_to(fn: MeasureFn, model: nn.Module, data: "MeasureData") -> bool:
    """Whether measure `fn` means something for this model and data (its `applies` predicate; True without one)."""
    pred = getattr(fn, APPLIES, None)
    return True if pred is None else bool(pred(model, data))


def parse_dtype(name: str) -> torch.dtype:
    """"float32" | "float64" → the torch dtype; anything else is a ValueError naming the choices."""
    if name not in DTYPES:
        raise ValueError(f"measure dtype must be one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[name]


class Cache:
    """What several measures of one `compute` call share, computed on first use.

    Keys name the value and the objects it depends on; objects enter a key by identity (`ref`), and the cache
    holds them, so an id cannot be reused while the cache lives. Only values that are pure functions of
    objects measures never modify (the model compute() copied, the data tensors) belong here. One cache per
    call, created by compute() and reached through `MeasureData.cache`: no state outlives the call.
    """

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}
        self._held: dict[int, Any] = {}

    def ref(self, obj: Any) -> int:
        """`obj` as a key part: its id, with the object kept alive by the cache."""
        self._held[id(obj)] = obj
        return id(obj)

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value under `key`, made by `make()` on the first request."""
        if key not in self._values:
            self._values[key] = make()
        return self._values[key]


def digest(t: torch.Tensor) -> str:
    """sha1 of a tensor's dtype, shape and bytes: equal for equal contents (a key for subsets built twice)."""
    head = f"{t.dtype}{tuple(t.shape)}".encode()
    return hashlib.sha1(head + t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                        ).hexdigest()


def cached(data: "MeasureData", key: tuple, make: Callable[[], T]) -> T:
    """`make()` memoized in `data.cache` (computed every time when data has no cache).

    `key` is (name, *parts); parts that are not hashable plain values (models, tensors) enter by identity."""
    if data.cache is None:
        return make()
    plain = (str, int, float, bool, type(None), tuple, torch.dtype)
    parts = tuple(p if isinstance(p, plain) or _is_config(p) else ("id", data.cache.ref(p)) for p in key)
    return data.cache.get(parts, make)


def _is_config(obj: Any) -> bool:
    """A frozen dataclass (a measure's config): hashable by value."""
    params = getattr(type(obj), "__dataclass_params__", None)
    return params is not None and params.frozen


@dataclass(frozen=True)
class MeasureData:
    """What a measure may read besides the model.

    x_*: (n, *in_shape) float inputs, already preprocessed (what the model sees).
    y_*: (n,) int64 class labels, or (n,) float targets for regression (num_classes None).
    loss: the training loss (its `per_sample` gives (B,) losses in its own units, nats for cross-entropy).
    init_state: the state_dict at initialization (init.pt), or None; measures that need it say so.
    cache: the per-call `Cache` (set by compute(); None outside it, and then nothing is shared).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    loss: Loss
    init_state: dict[str, torch.Tensor] | None = None
    num_classes: int | None = None
    cache: Cache | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_dataset(cls, data: Any, loss: Loss, init_state: dict[str, torch.Tensor] | None = None,
                     max_samples: int | None = None) -> "MeasureData":
        """From a `genlab.data.Dataset`: the first `max_samples` rows of each split (all if None), preprocessed."""
        def prep(x: torch.Tensor) -> torch.Tensor:
            x = x[:max_samples] if max_samples is not None else x
            chunks = [data.inputs(x[i:i + PREPROCESS_CHUNK]) for i in range(0, len(x), PREPROCESS_CHUNK)]
            return torch.cat(chunks) if chunks else x.float()

        cut = (lambda y: y[:max_samples]) if max_samples is not None else (lambda y: y)  # noqa: E731
        return cls(prep(data.x_train), cut(data.y_train), prep(data.x_test), cut(data.y_test), loss,
                   init_state, data.num_classes)

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    def sample(self) -> torch.Tensor:
        """(1, *in_shape) the first training input: what forward hooks trace shapes with."""
        return self.x_train[:1]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "MeasureData":
        """Moved to `device`; float tensors (inputs, float targets, init weights) cast to `dtype`."""
        def mv(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        init = None if self.init_state is None else {k: mv(v) for k, v in self.init_state.items()}
        return replace(self, x_train=mv(self.x_train), y_train=mv(self.y_train), x_test=mv(self.x_test),
                       y_test=mv(self.y_test), init_state=init)


def flatten_values(name: str, value: float | dict[str, float]) -> dict[str, float]:
    """A measure's result as flat store keys: `name` for a number, `name.sub` for each entry of a dict."""
    if isinstance(value, dict):
        return {f"{name}.{k}": float(v) for k, v in value.items()}
    return {name: float(value)}


def compute(names: list[str], model: nn.Module, data: MeasureData, *, device: torch.device | str | None = None,
            dtype: torch.dtype | str = DEFAULT_DTYPE, options: dict[str, dict[str, Any]] | None = None
            ) -> dict[str, float]:
    """Evaluate registered measures with their default options on a copy of `model`, in eval mode.

    Args:
      names: registered measure names (`list_measures()`); unknown names raise KeyError before any work.
      model: the trained network; it is copied, never modified.
      data: the splits, loss and init weights (`MeasureData.from_dataset`).
      device: where to compute (default: where the model is).
      dtype: precision of the network's passes over the data: torch.float32/float64 or "float32"/"float64";
        `DEFAULT_DTYPE` (float32: several times faster on a CPU) by default, as in the trainer and the CLI; ask for
        float64 where digits are checked. Weight-only and design measures use float64.
      options: per-measure keyword options, e.g. {"sharpness": {"cfg": SharpnessConfig(alpha=1e-3)}}
        (a spec's `record.measure_options`, validated against each measure's signature).

    Returns:
      A flat dict: `name` → value, or `name.sub` → value for dict-valued measures; none for a measure that
      does not apply to this model (`applies_to`: skipped, not computed).

    Examples:
      >>> compute(["margin_q10", "log_l2_path_norm"], model, MeasureData.from_dataset(ds, loss))
    """
    fns = {name: get_measure(name) for name in names}
    if isinstance(dtype, str):
        dtype = parse_dtype(dtype)
    if device is None:
        device = next(iter(model.parameters()), torch.empty(0)).device
    from genlab.models.rules import strip_rule

    ruled = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
    net = strip_rule(copy.deepcopy(ruled))  # true gradients for every measure but those marked `sees_rule`
    data = replace(data.to(device, dtype), cache=Cache())  # a fresh cache: nothing shared across calls
    out: dict[str, float] = {}
    for name, fn in fns.items():
        try:
            m = ruled if getattr(fn, "sees_rule", False) else net
            if not applies_to(fn, m, data):
                continue
            out.update(flatten_values(name, fn(m, data, **(options or {}).get(name, {}))))
        except ValueError as e:
            raise ValueError(f"measure {name!r}: {e}") from e
    return out


# registers entries; bounds last, since it composes the others
from genlab.measures import (  # noqa: E402,F401
    hessian, margins, normalized, norms, pacbayes, paths, sharpness, spectral, bounds,
)
from genlab.measures import regression  # noqa: E402,F401  (003: min-norm least squares, design spectrum)
from genlab.measures import normalized_margins  # noqa: E402,F401  (000 ch. 4: margins of the normalized net)
from genlab.measures import strided_sharpness  # noqa: E402,F401  (004: sharpness on a strided training subset)
from genlab.measures import alignment  # noqa: E402,F401  (learning rules: update vs true gradient angle)
from genlab.measures import esd, landscape  # noqa: E402,F401  (issue 26: weight ESD α; loss-landscape slices)
