"""Real data that needs no download: scikit-learn's bundled `digits` and the locally generated `mnist1d`.

They are the offline stand-ins for image data in small profiles, and take every shared image-set option
(subsets, label corruption, confusion sets, flips, augmentation; see `genlab.data.vision.VisionOptions`).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from genlab.data.vision import Raw, vision_dataset


def _split(x: np.ndarray, y: np.ndarray, n_test: int, seed: int):
    perm = np.random.default_rng(seed).permutation(len(x))
    te, tr = perm[:n_test], perm[n_test:]
    return x[tr], y[tr], x[te], y[te]


@functools.lru_cache(maxsize=8)
def _digits_counts(n_test: int = 297, seed: int = 0, **_) -> list[int]:
    """Per-class counts of digits' training split (a cheap load: 1,797 8×8 images)."""
    from sklearn.datasets import load_digits

    y = load_digits().target
    if not 0 < n_test < len(y):
        return [0] * 10
    tr = np.random.default_rng(seed).permutation(len(y))[n_test:]
    return np.bincount(y[tr], minlength=10).tolist()


@vision_dataset("digits", class_counts=_digits_counts)
def digits(*, n_test: int = 297, flatten: bool = False, seed: int = 0) -> Raw:
    """scikit-learn's 1,797 8×8 handwritten digits (UCI optdigits test set), 10 classes.

    Pixels are stored as uint8 0..16 and scaled to [0, 1] per batch (then normalized unless
    normalize=false); images are (1, 8, 8), or (64,) with `flatten`. The split is a seeded random
    permutation: the last `n_test` (default 297, leaving 1,500 to train) are the test set.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.uint8)[:, None]  # (1797, 1, 8, 8), values 0..16
    if not 0 < n_test < len(x):
        raise ValueError(f"digits: n_test must be in (0, {len(x)}), got {n_test}")
    xtr, ytr, xte, yte = _split(x, d.target.astype(np.int64), n_test, seed)
    return Raw(torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte), torch.from_numpy(yte),
               num_classes=10, scale=1 / 16, flatten=flatten)


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(num_samples: int, train_split: float, seed: int) -> dict:
    """mnist1d's generated arrays, kept per process and on disk (`genlab.data.gencache`, keyed by every
    generator argument and the package version): making 5,000 signals costs ~4 CPU-s, paid once per machine
    instead of once per process. Callers copy into new tensors (torch.tensor), never mutate."""
    from importlib.metadata import version

    from genlab.data.gencache import cached_arrays

    def make() -> dict:  # imports mnist1d (and its plotting dependencies) only on a cache miss
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()  # the package's standard arguments: fixed by its version, part of the key
        args.num_samples, args.train_split, args.seed = num_samples, train_split, seed
        return make_dataset(args)

    key = {"num_samples": num_samples, "train_split": train_split, "seed": seed}
    return cached_arrays("mnist1d", key, make, ("x", "y", "x_test", "y_test"), version=version("mnist1d"))


def _mnist1d_class_counts(*, num_samples: int = 5000, train_split: float = 0.8, seed: int = 42) -> list[int]:
    """The training split's examples per class (generates the set once, as the run would: kept per process)."""
    return np.bincount(_mnist1d_arrays(num_samples, train_split, seed)["y"], minlength=10).tolist()


@vision_dataset("mnist1d", class_counts=_mnist1d_class_counts)
def mnist1d(*, num_samples: int = 5000, train_split: float = 0.8, as_image: bool = False, seed: int = 42) -> Raw:
    """MNIST-1D (Greydanus 2020): 40-sample 1-D signals of the ten digits, generated locally, 10 classes.

    Uses `mnist1d.data.make_dataset` with the package's standard arguments (5,000 samples, 80/20 split;
    its standard seed is 42), never the download path. Inputs are (40,), or (1, 40) with `as_image` for
    conv nets; a "horizontal" flip reverses a signal and a crop shifts it. References:
    Greydanus, "Scaling down deep learning", 2020, https://arxiv.org/abs/2011.14439
    """
    d = _mnist1d_arrays(num_samples, train_split, seed)
    xtr = torch.tensor(d["x"], dtype=torch.float32).reshape(len(d["x"]), 1, -1)  # (n, 1, 40)
    xte = torch.tensor(d["x_test"], dtype=torch.float32).reshape(len(d["x_test"]), 1, -1)
    return Raw(xtr, torch.tensor(d["y"], dtype=torch.int64), xte, torch.tensor(d["y_test"], dtype=torch.int64),
               num_classes=10, scale=1.0, flatten=not as_image)
