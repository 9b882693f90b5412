"""Walk a model's layers by module type, never by name.

`trace(model, x)` runs one forward pass with hooks on every leaf module and returns the linear operators
(Linear, Conv1d/2d/3d) in the order they run, each with the per-sample shape of its input and output. The
convolution's operator, and so its spectral norm, depends on that input size, which only a forward pass knows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LINEAR_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONV_FNS = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}


def conv_fn(m: nn.Module):
    """The functional conv for a conv module of any of CONV_FNS' types or their subclasses."""
    return next(fn for t, fn in CONV_FNS.items() if isinstance(m, t))


NO_LAYERS_MSG = ("the model has no nn.Linear or nn.Conv layer that runs in a forward pass; weight measures "
                 "need at least one")


@dataclass(frozen=True)
class Op:
    """One call of a linear/conv layer: the module and the shapes it saw (without the batch dimension)."""

    module: nn.Module
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    @property
    def weight(self) -> torch.Tensor:
        return self.module.weight

    @property
    def is_conv(self) -> bool:
        return isinstance(self.module, tuple(CONV_FNS))

    @property
    def units(self) -> int:
        """h_i of Neyshabur et al. 2017: the number of output units (channels × positions for a conv)."""
        return math.prod(self.out_shape)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The linear part (no bias, weights detached) on a batch (B, *in_shape) → (B, *out_shape)."""
        m, w = self.module, self.module.weight.detach()
        if not self.is_conv:
            return F.linear(x, w)
        if m.padding_mode != "zeros":
            raise ValueError(f"{type(m).__name__} with padding_mode={m.padding_mode!r}: only zero padding "
                             "is supported by operator measures; use padding_mode='zeros'")
        return conv_fn(m)(x, w, None, m.stride, m.padding, m.dilation, m.groups)


def leaf_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if not list(m.children())]


@torch.no_grad()
def run_with_hooks(model: nn.Module, x: torch.Tensor, hook) -> torch.Tensor:
    """Forward `x` in eval mode with `hook(module, inputs, output)` on every leaf; the mode is restored."""
    was = model.training
    model.eval()
    handles = [m.register_forward_hook(hook) for m in leaf_modules(model)]
    try:
        return model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was)


@torch.no_grad()
def output_sizes(model: nn.Module, x: torch.Tensor) -> list[int]:
    """The number of elements of each leaf module's output (0 for a non-tensor output) on the batch x, in call
    order: what a pass over x holds in activations (eval mode, no gradient)."""
    sizes: list[int] = []
    run_with_hooks(model, x, lambda m, i, out: sizes.append(out.numel() if torch.is_tensor(out) else 0))
    return sizes


def trace(model: nn.Module, x: torch.Tensor) -> list[Op]:
    """The linear/conv operators of `model` in execution order, with per-sample in/out shapes.

    Args:
      model: any nn.Module; its Linear/Conv layers are found by type.
      x: (B, *in_shape) a sample batch (one row is enough).

    Returns:
      A list of `Op`, one per layer call (a layer called twice appears twice).
    """
    ops: list[Op] = []

    def hook(m, inputs, out):
        if isinstance(m, LINEAR_TYPES):
            ops.append(Op(m, tuple(inputs[0].shape[1:]), tuple(out.shape[1:])))

    run_with_hooks(model, x, hook)
    if not ops:
        raise ValueError(NO_LAYERS_MSG)
    return ops


def unique_ops(ops: list[Op]) -> list[Op]:
    """First call of each distinct module (for measures over parameters rather than calls)."""
    seen: set[int] = set()
    out = []
    for op in ops:
        if id(op.module) not in seen:
            seen.add(id(op.module))
            out.append(op)
    return out


def operator_matrix(op: Op) -> torch.Tensor:
    """(out_units, in_units) the explicit matrix of the layer's linear map (small layers only: tests, checks)."""
    n = math.prod(op.in_shape)
    eye = torch.eye(n, dtype=op.weight.dtype, device=op.weight.device).reshape(n, *op.in_shape)
    with torch.no_grad():
        return op.apply(eye).reshape(n, -1).T
