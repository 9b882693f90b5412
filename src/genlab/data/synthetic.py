"""Synthetic data with known structure: linearly separable points (000 ch. 3) and Gaussian regression (003)."""

from __future__ import annotations

import torch

from genlab.data import Dataset, register_dataset


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def memory_bytes() -> int:
    """This machine's physical memory, bytes (a data set bigger than it cannot be built here)."""
    import os

    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def size_problem(name: str, sizes: dict[str, int], minimum: dict[str, int], floats: int) -> str | None:
    """A load-time feasibility check (`build.check`): each size at least its minimum, and the `floats`
    float32 values the data set holds fit this machine's memory."""
    for key, low in minimum.items():
        if sizes[key] < low:
            return f"{name}: {key} must be at least {low} (got {sizes[key]})"
    need = 4 * floats
    if need > memory_bytes():
        shown = ", ".join(f"{k} = {v:,}" for k, v in sizes.items())
        return (f"{name}: {shown} make {need / 2**30:,.0f} GiB of data, more than this machine's "
                f"{memory_bytes() / 2**30:,.0f} GiB of memory; choose smaller sizes")
    return None


@register_dataset("separable")
def separable(*, dim: int = 5, n_train: int = 5000, n_test: int = 5000, low: float = -1.0, high: float = 1.0,
              seed: int = 0) -> Dataset:
    """Points uniform in [low, high]^dim labelled by a random hyperplane through the origin (000 §3.2).

    Label y = 1[w·x > 0] for w ~ N(0, I) (the "perceptron through the origin"); train and test come from
    the same distribution. Returns 2 classes; the exponential loss maps them to ±1.
    """
    if dim < 1 or n_train < 1 or n_test < 0:
        raise ValueError(f"separable: dim, n_train must be >= 1 and n_test >= 0 (got {dim}, {n_train}, {n_test})")
    g = _gen(seed)
    w = torch.randn(dim, generator=g)  # (dim,) the true separating direction
    x = low + (high - low) * torch.rand(n_train + n_test, dim, generator=g)  # (n, dim)
    y = (x @ w > 0).long()  # (n,) in {0, 1}
    return Dataset("separable", x[:n_train], y[:n_train], x[n_train:], y[n_train:], num_classes=2,
                   info={"true_w": w.tolist()})


separable.check = lambda dim=5, n_train=5000, n_test=5000, **_: size_problem(  # type: ignore[attr-defined]
    "separable", {"dim": dim, "n_train": n_train, "n_test": n_test}, {"dim": 1, "n_train": 1, "n_test": 0},
    (n_train + n_test) * (dim + 1))


@register_dataset("gaussian_regression")
def gaussian_regression(*, n_train: int = 500, n_test: int = 500, p: int = 1000, noise: float = 0.1,
                        seed: int = 0) -> Dataset:
    """Gaussian design X ~ N(0, 1)^{n×p}, y = X β + noise·ε with β ~ N(0, I/p) (003; p > n allowed).

    Targets are float32 and `num_classes` is None (a regression task: MSE loss, no error rate).
    """
    if n_train < 1 or p < 1 or noise < 0:
        raise ValueError(f"gaussian_regression: need n_train >= 1, p >= 1, noise >= 0 (got {n_train}, {p}, {noise})")
    g = _gen(seed)
    beta = torch.randn(p, generator=g) / p**0.5  # (p,) so that Var(x·β) = 1
    x = torch.randn(n_train + n_test, p, generator=g)
    y = x @ beta + noise * torch.randn(n_train + n_test, generator=g)
    return Dataset("gaussian_regression", x[:n_train], y[:n_train], x[n_train:], y[n_train:], num_classes=None,
                   info={"beta_norm": float(beta.norm())})


gaussian_regression.check = lambda n_train=500, n_test=500, p=1000, **_: size_problem(  # type: ignore[attr-defined]
    "gaussian_regression", {"n_train": n_train, "n_test": n_test, "p": p}, {"n_train": 1, "n_test": 0, "p": 1},
    (n_train + n_test) * (p + 1))
