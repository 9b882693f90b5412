"""Losses, registered by name. Each knows how many outputs it needs and how to count errors.

A `Loss` is three pure functions of (outputs, labels): the mean loss, the number of errors, and the
per-sample loss (for measures that need it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from genlab.registry import Registry


@dataclass(frozen=True)
class Loss:
    name: str
    per_sample: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (B, k), (B,) → (B,)
    errors: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None  # → (B,) bool, or None (regression)
    num_outputs: Callable[[int | None], int]  # number of classes (None: regression) → model outputs
    # ∂ per_sample_i / ∂ out_i, (B, k): lets the ensemble trainer's MLP path skip autograd (checked against it)
    d_out: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    # the batch mean in one fused call where torch has one (a training step's loss: per_sample(...).mean() is
    # two more kernels and an intermediate per step, +17 % of a small solo step); None: per_sample(...).mean()
    mean: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean over the batch (a 0-d tensor)."""
        return self.mean(out, y) if self.mean is not None else self.per_sample(out, y).mean()


_LOSSES: Registry[Callable[[], Loss]] = Registry("loss")
register_loss = _LOSSES.register
list_losses = _LOSSES.names


def get_loss(name: str) -> Loss:
    return _LOSSES.get(name)()


def _argmax_errors(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return out.argmax(dim=1) != y


def _need_classes(loss: str):
    def n(num_classes: int | None) -> int:
        if num_classes is None:
            raise ValueError(f"loss {loss!r} needs a classification data set; use loss = 'mse' for regression")
        return num_classes

    return n


@register_loss("cross_entropy")
def cross_entropy() -> Loss:
    """−log softmax(f)_y, in nats; one output per class."""
    return Loss("cross_entropy", lambda out, y: F.cross_entropy(out, y, reduction="none"), _argmax_errors,
                _need_classes("cross_entropy"),
                lambda out, y: out.softmax(1) - F.one_hot(y, out.shape[1]).to(out.dtype),  # softmax − onehot
                F.cross_entropy)  # reduction="mean": the same value in one kernel (tests/test_fixed_cost.py)


def _signed(y: torch.Tensor) -> torch.Tensor:
    return 2.0 * y.to(torch.float32) - 1.0  # {0, 1} → {−1, +1}


def _binary_outputs(num_classes: int | None) -> int:
    if num_classes != 2:
        raise ValueError(f"loss 'exp' is binary: it needs 2 classes, the data set has {num_classes}")
    return 1


@register_loss("exp")
def exp() -> Loss:
    """exp(−y·f) with y ∈ {−1, +1} (from labels {0, 1}) and one output f (000 §3.6). Error: y·f ≤ 0."""
    return Loss("exp", lambda out, y: torch.exp(-_signed(y) * out[:, 0]),
                lambda out, y: _signed(y) * out[:, 0] <= 0, _binary_outputs,
                lambda out, y: (-_signed(y) * torch.exp(-_signed(y) * out[:, 0])).unsqueeze(1))  # −y·e^{−y f}


def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y.dtype.is_floating_point:  # regression: one output
        return (out[:, 0] - y) ** 2
    target = F.one_hot(y, out.shape[1]).to(out.dtype)  # (B, C)
    return ((out - target) ** 2).sum(dim=1)


def _mse_d_out(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y.dtype.is_floating_point:
        return 2 * (out - y.unsqueeze(1).to(out.dtype))  # one output
    return 2 * (out - F.one_hot(y, out.shape[1]).to(out.dtype))


@register_loss("mse")
def mse() -> Loss:
    """Squared error ‖f − t‖², summed over outputs, t = the target or the one-hot label. Error: argmax."""
    return Loss("mse", _mse, None, lambda num_classes: 1 if num_classes is None else num_classes, _mse_d_out)


def error_fn(loss: Loss, num_classes: int | None):
    """The error counter to use: None for regression."""
    if num_classes is None:
        return None
    return loss.errors or _argmax_errors
