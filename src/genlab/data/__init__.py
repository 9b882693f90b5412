"""Datasets: a registry of functions that return a `Dataset` of tensors.

A dataset function takes keyword-only options (its spec schema; `seed` among them) and returns whole splits as
tensors (small sets live on the training device; batching is index slicing). Register a new one with
`@register_dataset("name")` in a module of this package and import the module below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Callable

import torch

from genlab.registry import Registry

DatasetFn = Callable[..., "Dataset"]
_DATASETS: Registry[DatasetFn] = Registry("dataset")
register_dataset = _DATASETS.register
get_dataset_fn = _DATASETS.get
list_datasets = _DATASETS.names


@dataclass(frozen=True)
class Dataset:
    """Whole splits as tensors.

    x_*: (n, *in_shape) float32, or uint8 images that `preprocess` turns into floats per batch.
    y_*: (n,) int64 class labels, or (n,) float32 targets when `num_classes` is None (regression).
    preprocess: maps a batch (B, *in_shape) to float inputs for the model (e.g. uint8 → normalized).
    augment: maps a training batch and a torch.Generator to an augmented batch (random crop, flip), or None.
    info: what the trainer should record (e.g. the label-corruption mask, the true labels).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int | None
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    extra_tests: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if len(x) != len(y):
                raise ValueError(f"dataset {self.name!r}: x_{split} has {len(x)} rows but y_{split} has {len(y)}")

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """A batch as the model sees it: float, preprocessed."""
        return self.preprocess(x) if self.preprocess is not None else x

    def to(self, device: torch.device | str) -> "Dataset":
        move = lambda t: t.to(device)  # noqa: E731
        extra = {k: (move(x), move(y)) for k, (x, y) in self.extra_tests.items()}
        return replace(self, x_train=move(self.x_train), y_train=move(self.y_train),
                       x_test=move(self.x_test), y_test=move(self.y_test), extra_tests=extra)


def build_dataset(name: str, **options: Any) -> Dataset:
    """Build the registered dataset `name` with its options (its `seed` option fixes every random choice).

    The last few builds are cached in this process (a sweep's runs, an ensemble's members and the measure
    command ask for the same data again and again; mnist1d takes seconds to generate). A Dataset is frozen and
    its tensors are never written in place, so sharing one is safe.
    """
    try:
        key = json.dumps(options, sort_keys=True)
    except TypeError:  # options that are not plain JSON (a direct call from Python): no cache
        return get_dataset_fn(name)(**options)
    return _cached(name, key) if json.loads(key) == options else get_dataset_fn(name)(**options)


@lru_cache(maxsize=4)
def _cached(name: str, options_json: str) -> Dataset:
    return get_dataset_fn(name)(**json.loads(options_json))


from genlab.data import synthetic, vision, offline  # noqa: E402,F401  (registers entries)
from genlab.data import flipped  # noqa: E402,F401  (003: training sets plus flipped copies)
