"""A registered image set with flipped copies of its training images appended (003 §2.2).

003 trains Conv-4 on "the original images from CIFAR-10 + the vertical flipped images from CIFAR-10,
resulting in a training base of 100000 images" — a fixed doubled set, not a random flip per batch. The
shared image options (`genlab.data.vision.VisionOptions`) have no training-side vertical flip, so this
wraps any registered image set:

    [data]
    name = "train_flipped"
    base = "cifar10"
    base_options = { test_flips = ["vertical"] }   # the wrapped set's own options, checked when built
    flips = ["vertical"]                           # [] keeps the base set unchanged (the plain run)

Sweeping `data.flips = [[], ["vertical"]]` gives 003's two trainings with one data table.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import torch

from genlab.data import Dataset, build_dataset, get_dataset_fn, register_dataset
from genlab.data.transforms import hflip, vflip
from genlab.data.vision import image_shape_of
from genlab.registry import OptionsError, validate_options

FLIP_FNS = {"vertical": vflip, "horizontal": hflip}


def _image_flip(fn, x: torch.Tensor, image_shape: tuple[int, ...]) -> torch.Tensor:
    """Flip stored inputs (n, *stored), reshaping flat storage to (n, C, H, W) and back."""
    return fn(x.reshape(len(x), *image_shape)).reshape(x.shape)


@register_dataset("train_flipped")
def train_flipped(*, base: str = "cifar10", base_options: dict[str, Any] = {},
                  flips: list[Literal["vertical", "horizontal"]] = ["vertical"]) -> Dataset:
    """The data set `base` (built with `base_options`) with one flipped copy of every training image per
    entry of `flips` appended: n_train becomes n·(1 + len(flips)); test sets, normalization and labels are
    the base set's (a flip leaves per-channel statistics unchanged).

    Per-sample facts in `info` (corruption masks, true labels) are repeated for the copies, and
    `flipped_mask` (n_train,) marks the appended images.

    References: 003 §2.2 ("Same Architecture, new Training procedure").
    """
    try:
        opts = validate_options(get_dataset_fn(base), base, base_options, "dataset")
    except OptionsError as e:
        loc, msg = e.problems[0]
        raise ValueError(f"train_flipped: base_options.{loc}: {msg} (options of {base!r} apply)") from None
    data = build_dataset(base, **opts)
    if not flips:
        return data
    shape = image_shape_of(data)
    if len(shape) != 3:
        raise ValueError(f"train_flipped: {base!r} inputs are {shape}, not images (C, H, W); flips need images")
    n = data.n_train
    x = torch.cat([data.x_train] + [_image_flip(FLIP_FNS[f], data.x_train, shape) for f in flips])
    reps = 1 + len(flips)
    info = {k: (v.repeat(reps) if isinstance(v, torch.Tensor) and v.dim() == 1 and len(v) == n else v)
            for k, v in data.info.items()}
    info["flipped_mask"] = torch.arange(n * reps) >= n
    if "n_corrupted" in info:
        info["n_corrupted"] = info["n_corrupted"] * reps
    return replace(data, name=f"{base}+{'+'.join(flips)}", x_train=x, y_train=data.y_train.repeat(reps),
                   info=info)


def _files(*, base: str = "cifar10", base_options: dict[str, Any] = {}, **_) -> list[tuple[str, str]]:
    from genlab.data import required_files

    return required_files(base, base_options) if isinstance(base, str) else []


train_flipped.files = _files  # type: ignore[attr-defined]  (the base set's files, for genlab.data.preflight)


def _check(base: str = "cifar10", base_options: dict[str, Any] = {}, **_) -> str | None:
    """The base set's own load-time feasibility check, on its options (sizes beyond its splits, …)."""
    try:
        fn = get_dataset_fn(base)
        opts = validate_options(fn, base, base_options, "dataset")
    except (KeyError, ValueError, OptionsError):
        return None  # reported when the set is built, with the option at fault
    check = getattr(fn, "check", None)
    msg = check(**opts) if check else None
    return f"train_flipped: base_options: {msg}" if msg else None


train_flipped.check = _check  # type: ignore[attr-defined]
