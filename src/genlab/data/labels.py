"""Label and split operations for classification sets: validation splits, class-balanced subsets, label
corruption, confusion sets, and per-class accuracy. Pure functions; every random choice draws from the
`torch.Generator` passed in (a CPU generator: these run once, at build time).

References:
    Zhang, Bengio, Hardt, Recht, Vinyals, "Understanding deep learning requires rethinking generalization",
    ICLR 2017 (label corruption with probability p; random labels). https://arxiv.org/abs/1611.03530
    Neyshabur, Bhojanapalli, McAllester, Srebro, "Exploring generalization in deep learning", NeurIPS 2017
    (confusion sets; growing training subsets). https://arxiv.org/abs/1706.08947
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch

if TYPE_CHECKING:
    from torch import nn

    from genlab.data import Dataset

CorruptMode = Literal["uniform", "other"]


def validation_split(n: int, val_size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A random split of range(n) into (train_idx, val_idx) with len(val_idx) == val_size (both sorted).

    002 uses val_size=10000 on CIFAR-10's 50,000 training images (40k/10k/10k).
    """
    if not 0 <= val_size < n:
        raise ValueError(f"val_size must be in [0, {n}) for a training set of {n}, got {val_size}")
    perm = torch.randperm(n, generator=gen)
    return perm[val_size:].sort().values, perm[:val_size].sort().values


def per_class_counts(n: int, num_classes: int) -> list[int]:
    """How many of n samples each class gets in a balanced subset: n // K each, the first n % K one more."""
    return [n // num_classes + (c < n % num_classes) for c in range(num_classes)]


def balanced_subset(y: torch.Tensor, n: int, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """Indices (sorted) of a class-balanced random subset of size n of labels y (n,).

    Each class's samples are permuted once by `gen`, and the first k_c are kept, so with the same
    generator state a larger n gives a superset (004 grows the training set over nested subsets).
    """
    counts = per_class_counts(n, num_classes)
    picked = []
    for c, k in enumerate(counts):
        idx = (y == c).nonzero().flatten()  # (n_c,) positions of class c
        perm = idx[torch.randperm(len(idx), generator=gen)]
        if k > len(idx):
            raise ValueError(f"a class-balanced subset of {n} needs {k} samples of class {c} but only {len(idx)} "
                             f"are available; lower n_train / n_test (or val_size)")
        picked.append(perm[:k])
    return torch.cat(picked).sort().values


def random_labels(n: int, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """(n,) int64 labels drawn uniformly from range(num_classes)."""
    return torch.randint(0, num_classes, (n,), generator=gen)


def corrupt_labels(y: torch.Tensor, num_classes: int, prob: float, gen: torch.Generator,
                   mode: CorruptMode = "uniform") -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each label, with probability `prob`, by a random class (Zhang et al. 2017, §3).

    Args:
        y: (n,) int64 true labels.
        prob: the corruption probability p in [0, 1]; p=1 gives fully random labels.
        mode: "uniform" draws the new label from all K classes (so about p/K of the drawn labels stay
            right, as in Zhang et al.); "other" draws from the K-1 other classes (every drawn label changes).

    Returns:
        (y_new, mask): y_new (n,) int64, and mask (n,) bool — True where a label was redrawn.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> y2, m = corrupt_labels(torch.zeros(1000, dtype=torch.long), 10, 0.2, g)
        >>> 150 < int(m.sum()) < 250
        True
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"corrupt_prob must be in [0, 1], got {prob}")
    if mode not in ("uniform", "other"):
        raise ValueError(f"corrupt_mode must be 'uniform' or 'other', got {mode!r}")
    mask = torch.rand(len(y), generator=gen) < prob  # (n,) which labels are redrawn
    if mode == "uniform":
        new = random_labels(len(y), num_classes, gen)
    else:  # a shift by 1..K-1 modulo K is uniform over the other classes
        new = (y + torch.randint(1, num_classes, (len(y),), generator=gen)) % num_classes
    return torch.where(mask, new, y), mask


def confusion_indices(n_pool: int, exclude: torch.Tensor, m: int, gen: torch.Generator) -> torch.Tensor:
    """m random indices (sorted) of range(n_pool) not in `exclude`: the samples of a confusion set (004)."""
    free = torch.ones(n_pool, dtype=torch.bool)
    free[exclude] = False
    cand = free.nonzero().flatten()
    if m > len(cand):
        raise ValueError(f"confusion_size={m} needs {m} samples outside the training subset but only "
                         f"{len(cand)} remain; lower confusion_size or n_train")
    return cand[torch.randperm(len(cand), generator=gen)[:m]].sort().values


@torch.no_grad()
def per_class_accuracy(model: "nn.Module", data: "Dataset", x: torch.Tensor, y: torch.Tensor,
                       batch_size: int = 1000) -> torch.Tensor:
    """Accuracy per class on (x, y), in eval mode (003 fig. 3: per-class accuracy on the flipped test set).

    Args:
        model: the classifier; data: its Dataset (for `inputs`, the uint8 → float preprocessing, and
            `num_classes`); x, y: a split as stored (e.g. data.x_test, data.y_test or data.extra_tests[k]).

    Returns:
        (num_classes,) float32, the fraction of class-c samples predicted as c; NaN for classes absent in y.
    """
    if data.num_classes is None:
        raise ValueError(f"per_class_accuracy needs a classification set; {data.name!r} has no classes")
    was_training = model.training
    model.eval()
    k = data.num_classes
    right = torch.zeros(k, dtype=torch.float64)
    total = torch.zeros(k, dtype=torch.float64)
    for i in range(0, len(x), batch_size):
        yb = y[i:i + batch_size]
        out = model(data.inputs(x[i:i + batch_size]))
        if not torch.isfinite(out).all():  # a diverged model: no prediction, not argmax of NaN
            model.train(was_training)
            return torch.full((k,), float("nan"))
        pred = out.argmax(-1)
        total += torch.bincount(yb, minlength=k).cpu().double()
        right += torch.bincount(yb[pred == yb], minlength=k).cpu().double()
    model.train(was_training)
    return (right / total).float()  # 0/0 → NaN for absent classes
