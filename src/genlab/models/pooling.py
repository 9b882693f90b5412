"""2×2 (and length-2) max-pools that are faster where nothing is differentiated: evaluation and measures.

`MaxPool2x2` is `nn.MaxPool2d(2)` (kernel 2, stride 2, floor mode) and `MaxPool1x2` is `nn.MaxPool1d(2)`: the
same module type to everything that inspects a net (path norms, fused ensembles), the same output. Where autograd
records nothing (`torch.no_grad()`, `torch.inference_mode()`) the output is the elementwise maximum of the
window's strided views instead of PyTorch's pooling kernel, which on a CPU computes an int64 argmax index
per output and costs ~5× more at these sizes (1 thread: (64, 16, 8, 8) 175 → 31 µs, (64, 64, 32, 32)
15.8 → 5.7 ms; `python benchmarks/bench_pool.py`). Training keeps PyTorch's kernel: a hand-made backward
measured no faster, and the maxima's own gradient would change the float order of the backward pass. The test is
grad mode alone, not `x.requires_grad`: inside `torch.func.vmap` (the stacked ensembles) a batched activation
reports requires_grad False while its graph is recorded.

Equal values: the maximum of the same numbers is exact; a NaN in a window gives NaN both ways (torch.maximum
and the pooling kernel propagate it); an odd trailing row or column is dropped, as floor mode does.
"""

from __future__ import annotations

import torch
from torch import nn


def max2x2(x: torch.Tensor) -> torch.Tensor:
    """(..., H, W) → (..., H // 2, W // 2): the maximum of each 2×2 window, windows not overlapping."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return torch.maximum(torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2]),
                         torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2]))


def max1x2(x: torch.Tensor) -> torch.Tensor:
    """(..., L) → (..., L // 2): the maximum of each pair of neighbours, pairs not overlapping."""
    n = x.shape[-1] // 2 * 2
    return torch.maximum(x[..., 0:n:2], x[..., 1:n:2])


class MaxPool2x2(nn.MaxPool2d):
    """nn.MaxPool2d(2), by strided maxima where no gradient is recorded (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) if torch.is_grad_enabled() else max2x2(x)


class MaxPool1x2(nn.MaxPool1d):
    """nn.MaxPool1d(2), by strided maxima where no gradient is recorded (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) if torch.is_grad_enabled() else max1x2(x)
