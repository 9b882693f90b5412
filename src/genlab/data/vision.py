"""Image classification sets (CIFAR-10, MNIST, Fashion-MNIST and the offline stand-ins) and the options
they share: splits, class-balanced subsets, label corruption, confusion sets, flipped test sets,
augmentation and normalization.

A loader returns `Raw` splits (uint8 or float tensors shaped (n, C, H, W) or (n, C, L)); `vision_dataset`
registers it with the shared `VisionOptions` appended to its own keyword-only options, so a spec sets both
in one flat table (the registry reads the combined signature as the schema):

    [data]
    name = "cifar10"
    val_size = 10000            # 002: 40k/10k/10k; evaluated each epoch as val_loss / val_error
    corrupt_prob = 0.5          # 003, 004: Zhang et al.'s label corruption
    augment = "crop_flip"       # 000 ch. 4's ResNets
    test_flips = ["vertical"]   # 003: recorded as test_vflip_loss / test_vflip_error

Data stays uint8 on the device until batching; `Dataset.preprocess` scales and normalizes a batch and
`Dataset.augment` crops/flips it with the trainer's generator.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable, Literal

import numpy as np
import torch
from pydantic import Field

from genlab.data import Dataset, register_dataset
from genlab.data import files, labels, transforms

SMALL_TRAIN = 1000  # `small`: at most this many training samples (class-balanced) ...
SMALL_TEST = 500  # ... and this many test samples, so a check runs in seconds
STREAMS = ("split", "subset", "confusion", "corrupt", "corrupt_test", "test_subset")  # one generator each
FLIPS = {"vertical": ("test_vflip", transforms.vflip), "horizontal": ("test_hflip", transforms.hflip)}


@dataclass(frozen=True)
class VisionOptions:
    """The options every image set takes (their defaults change nothing).

    n_train: size of a class-balanced random training subset (004 grows it; subsets are nested in n);
        None keeps the whole training split.
    val_size: samples held out of the training split as extra test "val" (002: 10000 → 40k/10k/10k).
    n_test: size of a class-balanced test subset; None keeps the whole test split.
    small: cap n_train at SMALL_TRAIN and n_test at SMALL_TEST, for quick offline checks.
    corrupt_prob: probability p that a training label is replaced by a random class (Zhang et al. 2017).
    corrupt_mode: "uniform" (any of the K classes) or "other" (one of the K-1 wrong classes).
    corrupt_test: also corrupt the test (and val) labels, with the same p and mode (000's RL point).
    confusion_size: m extra training samples, outside the subset, with uniformly random labels (004).
    augment: "none", "crop_flip" (random crop with `crop_padding` + horizontal flip), "flip" or "crop".
    crop_padding: pixels of zero padding on each side for the random crop (4 for CIFAR).
    test_flips: flipped copies of the test set to evaluate: "vertical" (upside down, 003), "horizontal".
    normalize: subtract the per-channel mean and divide by the std (the set's published values, else the
        training split's).
    """

    n_train: Annotated[int, Field(ge=1)] | None = None
    val_size: Annotated[int, Field(ge=0)] = 0
    n_test: Annotated[int, Field(ge=1)] | None = None
    small: bool = False
    corrupt_prob: Annotated[float, Field(ge=0, le=1)] = 0.0
    corrupt_mode: Literal["uniform", "other"] = "uniform"
    corrupt_test: bool = False
    confusion_size: Annotated[int, Field(ge=0)] = 0
    augment: Literal["none", "crop_flip", "flip", "crop"] = "none"
    crop_padding: Annotated[int, Field(ge=0)] = 4
    test_flips: list[Literal["vertical", "horizontal"]] = field(default_factory=list)
    normalize: bool = True


@dataclass(frozen=True)
class Raw:
    """What a loader returns: whole splits as stored, plus how to turn pixels into floats.

    x_*: (n, C, H, W) images or (n, C, L) signals, uint8 or float; y_*: (n,) int64 in range(num_classes).
    scale: multiplies the stored values to reach [0, 1] (1/255 for bytes, 1/16 for sklearn's digits).
    mean, std: published per-channel statistics after scaling; None → computed from the training split.
    flatten: present inputs to the model as flat vectors (n, C·H·W) (digits' `flatten`, mnist1d's default).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    scale: float = 1 / 255
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    flatten: bool = False


def _generators(seed: int) -> dict[str, torch.Generator]:
    """An independent CPU generator per random choice, so e.g. the corruption mask does not move when
    val_size changes the subset draw."""
    kids = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {n: torch.Generator().manual_seed(int(s.generate_state(1)[0])) for n, s in zip(STREAMS, kids)}


def _check(opts: VisionOptions, name: str) -> None:
    for key in ("n_train", "n_test"):
        v = getattr(opts, key)
        if v is not None and v < 1:
            raise ValueError(f"{name}: {key} must be >= 1 (or unset for the whole split), got {v}")
    for key in ("val_size", "confusion_size", "crop_padding"):
        if getattr(opts, key) < 0:
            raise ValueError(f"{name}: {key} must be >= 0, got {getattr(opts, key)}")


def preprocess_batch(x: torch.Tensor, *, scale: float, mean: tuple[float, ...], std: tuple[float, ...],
                     image_shape: tuple[int, ...]) -> torch.Tensor:
    """A stored batch (B, *stored) → float32 (B, *stored), scaled to [0, 1] then normalized per channel."""
    xi = x.reshape(len(x), *image_shape)  # flat storage → (B, C, ...) for per-channel stats
    return transforms.normalize(transforms.to_float(xi, scale), mean, std).reshape(x.shape)


def augment_batch(x: torch.Tensor, gen: torch.Generator, *, kind: str, padding: int,
                  image_shape: tuple[int, ...]) -> torch.Tensor:
    """Crop/flip a float batch (B, *stored), reshaping flat inputs to their image shape and back."""
    xi = x.reshape(len(x), *image_shape)
    return transforms.augment(xi, kind, gen, padding).reshape(x.shape)


def _cap(n: int | None, small: bool, cap: int, available: int) -> int | None:
    """The subset size to draw: n, capped under `small`; None (keep all) when the cap covers everything."""
    if not small:
        return n
    n = min(n or cap, cap)
    return None if n >= available else n


def finish(name: str, raw: Raw, opts: VisionOptions, seed: int) -> Dataset:
    """Apply the shared options to raw splits: val split → subset → confusion set → corruption → test
    subset/corruption → flipped test sets → normalization stats. Returns the Dataset."""
    _check(opts, name)
    k, g = raw.num_classes, _generators(seed)
    train, extra = _train_split(raw, opts, k, g)
    x_test, y_test, info = _test_split(raw, opts, k, g, extra)
    image_shape = tuple(raw.x_train.shape[1:])
    mean, std = _normalization(raw, opts, train["x"], image_shape)
    store = (lambda t: t.reshape(len(t), -1)) if raw.flatten else (lambda t: t)  # noqa: E731
    extra = {kk: (store(xx), yy) for kk, (xx, yy) in extra.items()}
    random = train["corrupt"] | train["is_conf"]
    info.update(
        corrupt_mask=random,  # (n_train,) bool: labels drawn at random (corruption or confusion)
        confusion_mask=train["is_conf"],  # (n_train,) bool: the confusion-set samples (appended last)
        y_train_true=train["y_true"],  # (n_train,) int64: labels before corruption
        n_corrupted=int(random.sum()),
        n_test=len(y_test),  # the test-set size: how noisy test_error is (Hoeffding weights in genlab.analysis)
        label_noise=float((train["y"] != train["y_true"]).float().mean()) if len(train["y"]) else 0.0,
        mean=list(mean), std=list(std),
    )
    pre = functools.partial(preprocess_batch, scale=raw.scale, mean=mean, std=std, image_shape=image_shape)
    aug = None if opts.augment == "none" else functools.partial(
        augment_batch, kind=opts.augment, padding=opts.crop_padding, image_shape=image_shape)
    return Dataset(name, store(train["x"]), train["y"], store(x_test), y_test, num_classes=k, preprocess=pre,
                   augment=aug, extra_tests=extra, info=info)


def _train_split(raw: Raw, opts: VisionOptions, k: int, g: dict) -> tuple[dict, dict]:
    """The training set (x, y, y_true, corrupt, is_conf: a validation split taken off, a balanced subset, the
    confusion set appended, labels corrupted) and the extra splits so far ({"val": (x, y)} or {})."""
    x, y = raw.x_train, raw.y_train
    extra: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    if opts.val_size:
        tr, va = labels.validation_split(len(y), opts.val_size, g["split"])
        extra["val"] = (x[va], y[va])
        x, y = x[tr], y[tr]
    n_train = _cap(opts.n_train, opts.small, SMALL_TRAIN, len(y))
    sub = labels.balanced_subset(y, n_train, k, g["subset"]) if n_train is not None else torch.arange(len(y))
    conf = labels.confusion_indices(len(y), sub, opts.confusion_size, g["confusion"])
    y_sub, corrupt = labels.corrupt_labels(y[sub], k, opts.corrupt_prob, g["corrupt"], opts.corrupt_mode)
    train = {"x": torch.cat([x[sub], x[conf]]) if len(conf) else x[sub],
             "y": torch.cat([y_sub, labels.random_labels(len(conf), k, g["confusion"])]),
             "y_true": torch.cat([y[sub], y[conf]]),
             "is_conf": torch.cat([torch.zeros(len(sub), dtype=torch.bool), torch.ones(len(conf), dtype=torch.bool)]),
             "corrupt": torch.cat([corrupt, torch.zeros(len(conf), dtype=torch.bool)])}  # (n_train,) redrawn by p
    return train, extra


def _test_split(raw: Raw, opts: VisionOptions, k: int, g: dict, extra: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(x_test, y_test, info): the test subset, its labels corrupted with `corrupt_test` (and the validation
    split's, in `extra`), and the flipped copies added to `extra`."""
    x_test, y_test = raw.x_test, raw.y_test
    n_test = _cap(opts.n_test, opts.small, SMALL_TEST, len(y_test))
    if n_test is not None:
        te = labels.balanced_subset(y_test, n_test, k, g["test_subset"])
        x_test, y_test = x_test[te], y_test[te]
    info: dict = {}
    if opts.corrupt_test and opts.corrupt_prob > 0:
        info["y_test_true"] = y_test
        y_test, info["test_corrupt_mask"] = labels.corrupt_labels(y_test, k, opts.corrupt_prob,
                                                                  g["corrupt_test"], opts.corrupt_mode)
        if "val" in extra:
            xv, yv = extra["val"]
            extra["val"] = (xv, labels.corrupt_labels(yv, k, opts.corrupt_prob, g["corrupt_test"],
                                                      opts.corrupt_mode)[0])
    for flip in dict.fromkeys(opts.test_flips):  # unique, in order
        key, fn = FLIPS[flip]
        extra[key] = (fn(x_test), y_test)
    return x_test, y_test, info


def _normalization(raw: Raw, opts: VisionOptions, x_train: torch.Tensor, image_shape: tuple) -> tuple[tuple, tuple]:
    """Per-channel (mean, std): none (0, 1), the set's published values, or measured on the training set."""
    if not opts.normalize:
        return (0.0,) * image_shape[0], (1.0,) * image_shape[0]
    if raw.mean is not None and raw.std is not None:
        return tuple(raw.mean), tuple(raw.std)
    m, s = transforms.channel_stats(x_train, raw.scale)
    return tuple(m), tuple(s)


_SHARED_HINTS = typing.get_type_hints(VisionOptions, include_extras=True)
_SHARED = [f.name for f in dataclasses.fields(VisionOptions)]


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def size_check(name: str, num_classes: int, class_counts: Callable[..., list[int]]):
    """A load-time feasibility check for `build.check`: is a class-balanced subset of n_train possible?

    `class_counts(**loader options)` gives the training split's per-class counts, cheaply (constants for the
    file-based sets). A balanced subset needs ⌈n_train / K⌉ of the rarest class after val_size is held out.
    Which samples val_size takes is a random draw, so only what fails for every draw is refused here: more than
    the rarest class has (holding out only lowers it), or n_train + val_size above the whole split; a spec
    that fails only for its draw fails when its data is built, with the counts.
    """
    takes = inspect.signature(class_counts).parameters  # the loader options the counts depend on

    def check(**options) -> str | None:
        n, val = options.get("n_train"), options.get("val_size", 0) or 0
        if n is None or options.get("small"):
            return None
        counts = class_counts(**{k: v for k, v in options.items() if k in takes})
        need = -(-n // num_classes)
        if need > min(counts):
            return (f"n_train = {n} needs {need} training samples of each of {name}'s {num_classes} classes, but "
                    f"the rarest has {min(counts)}; use n_train <= {min(counts) * num_classes}")
        if n + val > sum(counts):
            return (f"n_train + val_size = {n} + {val} is more than {name}'s {sum(counts)} training samples; "
                    f"lower one of them")
        return None

    return check


def vision_dataset(name: str, *, files_key: str | None = None, num_classes: int = 10,
                   class_counts: Callable[..., list[int]] | None = None
                   ) -> Callable[[Callable[..., Raw]], Callable[..., Dataset]]:
    """Register `load(*, own options, seed) -> Raw` as dataset `name`, taking its options plus VisionOptions.

    The registered function's signature (its spec schema) is the loader's keyword-only options followed by
    the shared ones; calling it loads, then applies `finish`. A shared option the loader declares itself
    is the loader's (digits' `n_test` sizes its own random split; `small` still caps it).
    """

    def deco(load: Callable[..., Raw]) -> Callable[..., Dataset]:
        own = inspect.signature(load)
        if "seed" not in own.parameters:
            raise ValueError(f"vision loader {name!r} must take a keyword-only `seed` option")
        mine = [kk for kk in _SHARED if kk not in own.parameters]  # a loader may own one (digits' n_test)

        def build(**options) -> Dataset:
            shared = {kk: options.pop(kk) for kk in mine if kk in options}
            bound = own.bind(**options)
            bound.apply_defaults()
            return finish(name, load(**bound.kwargs), VisionOptions(**shared), seed=bound.kwargs["seed"])

        extra = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=_default(f),
                                   annotation=_SHARED_HINTS[f.name])
                 for f in dataclasses.fields(VisionOptions) if f.name in mine]
        build.__signature__ = inspect.Signature(list(own.parameters.values()) + extra)  # type: ignore[attr-defined]
        build.__annotations__ = {**typing.get_type_hints(load, include_extras=True), **{f: _SHARED_HINTS[f] for f in mine}}
        build.__annotations__["return"] = Dataset
        build.__name__ = build.__qualname__ = load.__name__
        build.__module__ = load.__module__
        build.__doc__ = (load.__doc__ or "") + "\n\nShared image-set options: see genlab.data.vision.VisionOptions."
        build.load = load  # type: ignore[attr-defined]  (the raw loader, for tests and tools)
        if files_key is not None:  # the files it reads, for `genlab.data.preflight`
            build.files = lambda **_: [(files_key, s.filename) for s in files.sources(files_key)]  # type: ignore
        if class_counts is not None:  # a cheap feasibility check at spec load
            build.check = size_check(name, num_classes, class_counts)  # type: ignore[attr-defined]
        return register_dataset(name)(build)

    return deco


# ---- the real sets (files under the data root; see genlab.data.files) ---------------------------------

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # 000 ch. 4's normalization (the widely copied CIFAR values;
CIFAR10_STD = (0.2023, 0.1994, 0.2010)  # the std is of per-image statistics, ~0.247/0.243/0.261 per pixel)
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)  # over the 60k training images
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)


@functools.lru_cache(maxsize=2)
def _cached_cifar(path: str, mtime_ns: int, size: int):
    return files.read_cifar10_tar(Path(path))


def _idx_pair(dataset: str, images: str, labels_: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = files.read_idx(files.require(dataset, images))  # (n, 28, 28) uint8
    y = files.read_idx(files.require(dataset, labels_))  # (n,) uint8
    if len(x) != len(y):
        raise ValueError(f"{dataset}: {images} has {len(x)} images but {labels_} has {len(y)} labels")
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


@vision_dataset("cifar10", files_key="cifar10", class_counts=lambda **_: [5000] * 10)
def cifar10(*, seed: int = 0) -> Raw:
    """CIFAR-10 (Krizhevsky 2009): 50,000 + 10,000 RGB 32×32 images, 10 classes, as (3, 32, 32) uint8.

    Read from cifar-10-python.tar.gz under the data root (downloaded and SHA-256-checked when missing).
    `seed` fixes every random choice of the shared options. References: Krizhevsky, "Learning Multiple
    Layers of Features from Tiny Images", 2009, https://www.cs.toronto.edu/~kriz/cifar.html
    """
    p = files.require("cifar10", "cifar-10-python.tar.gz")
    st = p.stat()
    xtr, ytr, xte, yte = _cached_cifar(str(p), st.st_mtime_ns, st.st_size)
    return Raw(torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte), torch.from_numpy(yte),
               num_classes=10, mean=CIFAR10_MEAN, std=CIFAR10_STD)


def _mnist_like(dataset: str, mean, std) -> Raw:
    xtr, ytr = _idx_pair(dataset, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    xte, yte = _idx_pair(dataset, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    return Raw(xtr, ytr, xte, yte, num_classes=10, mean=mean, std=std)


@vision_dataset("mnist", files_key="mnist",  # the rarest class, 5, has 5,421 images
                class_counts=lambda **_: [5421] * 10)
def mnist(*, seed: int = 0) -> Raw:
    """MNIST (LeCun et al. 1998): 60,000 + 10,000 grey 28×28 digits as (1, 28, 28) uint8, 10 classes.

    Read from the four IDX files under <data root>/mnist. 004 trains its 2-layer MLP on it.
    References: http://yann.lecun.com/exdb/mnist/
    """
    return _mnist_like("mnist", MNIST_MEAN, MNIST_STD)


@vision_dataset("fashion_mnist", files_key="fashion_mnist", class_counts=lambda **_: [6000] * 10)
def fashion_mnist(*, seed: int = 0) -> Raw:
    """Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 60,000 + 10,000 grey 28×28 clothing images, 10 classes.

    Same IDX layout as MNIST, under <data root>/fashion_mnist. References: https://arxiv.org/abs/1708.07747
    """
    return _mnist_like("fashion_mnist", FASHION_MEAN, FASHION_STD)


def image_shape_of(data: Dataset) -> tuple[int, ...]:
    """The (C, H, W) or (C, L) shape behind a Dataset's stored inputs (flat or not)."""
    pre = data.preprocess
    if isinstance(pre, functools.partial) and "image_shape" in pre.keywords:
        return pre.keywords["image_shape"]
    return data.in_shape
