"""Real data that needs no download: scikit-learn's bundled `digits` and the locally generated `mnist1d`.

They are the offline stand-ins for image data in small profiles.
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.data import Dataset, register_dataset


def _split(x: np.ndarray, y: np.ndarray, n_test: int, seed: int):
    perm = np.random.default_rng(seed).permutation(len(x))
    te, tr = perm[:n_test], perm[n_test:]
    return x[tr], y[tr], x[te], y[te]


@register_dataset("digits")
def digits(*, n_test: int = 297, flatten: bool = False, seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 8×8 handwritten digits (UCI optdigits test set), 10 classes.

    Pixels (0..16) are scaled to [0, 1]; images are (1, 8, 8), or (64,) with `flatten`. The split is a
    seeded random permutation: the last `n_test` (default 297, leaving 1,500 to train) are the test set.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8)
    if flatten:
        x = x.reshape(len(x), -1)
    if not 0 < n_test < len(x):
        raise ValueError(f"digits: n_test must be in (0, {len(x)}), got {n_test}")
    xtr, ytr, xte, yte = _split(x, d.target.astype(np.int64), n_test, seed)
    return Dataset("digits", torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte),
                   torch.from_numpy(yte), num_classes=10)


@register_dataset("mnist1d")
def mnist1d(*, num_samples: int = 5000, train_split: float = 0.8, as_image: bool = False, seed: int = 42) -> Dataset:
    """MNIST-1D (Greydanus 2020): 40-sample 1-D signals of the ten digits, generated locally, 10 classes.

    Uses `mnist1d.data.make_dataset` with the package's standard arguments (5,000 samples, 80/20 split;
    its standard seed is 42), never the download path. `as_image` shapes inputs (1, 40) for conv nets.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = num_samples, train_split, seed
    d = make_dataset(args)
    shape = (1, -1) if as_image else (-1,)
    xtr = torch.tensor(d["x"], dtype=torch.float32).reshape(len(d["x"]), *shape)
    xte = torch.tensor(d["x_test"], dtype=torch.float32).reshape(len(d["x_test"]), *shape)
    return Dataset("mnist1d", xtr, torch.tensor(d["y"], dtype=torch.int64), xte,
                   torch.tensor(d["y_test"], dtype=torch.int64), num_classes=10)
