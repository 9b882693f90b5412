"""Small convolutional nets of the seeds: `convnet3` (000 ch. 4), `conv4` (003) and `tweaks_cnn` (002).

All take `in_shape` from the data set: (C, H, W) images build 2-D convolutions, (C, L) signals (mnist1d with
as_image) build the same net in 1-D. Spatial sizes are worked out at build time, and a 2×2 max-pool that
would shrink a map below 1 pixel is left out, so a spec written for 32×32 CIFAR also runs on 8×8 digits;
at the seeds' input sizes every pool is kept and the parameter counts are the seeds'.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from torch import nn

from genlab.models import register_model
from genlab.models.conv import Conv1d, Conv2d
from genlab.models.dropout import Dropout
from genlab.models.pooling import MaxPool1x2, MaxPool2x2


class Ops(NamedTuple):
    """The layer classes for 1-D or 2-D inputs."""

    conv: type[nn.Module]
    bn: type[nn.Module]
    maxpool: type[nn.Module]  # a 2×2 (or length-2) max-pool, built with no arguments
    avgpool: type[nn.Module]  # adaptive


def ops_for(in_shape: tuple[int, ...], model: str) -> Ops:
    """Conv/BN/pool classes for in_shape (C, H, W) → 2-D, (C, L) → 1-D."""
    if len(in_shape) == 3:
        return Ops(Conv2d, nn.BatchNorm2d, MaxPool2x2, nn.AdaptiveAvgPool2d)
    if len(in_shape) == 2:
        return Ops(Conv1d, nn.BatchNorm1d, MaxPool1x2, nn.AdaptiveAvgPool1d)
    raise ValueError(f"{model} needs inputs shaped (C, H, W) or (C, L), got {in_shape}; for flat inputs "
                     f"use an image data set without `flatten` (or mnist1d with as_image = true)")


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution along one axis: ⌊(size + 2·padding − kernel) / stride⌋ + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def pool_if_possible(o: Ops, sizes: list[int]) -> tuple[nn.Module, list[int]]:
    """A 2×2 max-pool and the halved sizes, or Identity when a side is already below 2 pixels."""
    if min(sizes) < 2:
        return nn.Identity(), sizes
    return o.maxpool(), [s // 2 for s in sizes]


@register_model("convnet3")
def convnet3(in_shape: tuple[int, ...], num_outputs: int, *, width: int = 64, kernel_size: int = 5,
             stride: int = 2, padding: int = 2, bias: bool = False) -> nn.Module:
    """000 ch. 4's 3-layer convnet: conv(k×k, stride, pad) → ReLU → conv → ReLU → linear, no biases.

    With the thesis's 5×5 filters, stride 2, padding 2 a 32×32 image becomes 16×16 then 8×8, so the linear
    layer reads width·8·8. Parameters: width=64 → 64·5·5·3 + 64·5·5·64 + 64·8·8·10 = 148,160 (the thesis's
    count, §4); width=32 (figs. 4-2 to 4-4) → 48,480. No biases keep the net positively homogeneous, which
    the Frobenius-norm normalization of 000 relies on.

    References: 000 ch. 4 (figs. 4-2 to 4-8).
    """
    o = ops_for(in_shape, "convnet3")
    c, sizes = in_shape[0], list(in_shape[1:])
    for _ in range(2):
        sizes = [conv_out(s, kernel_size, stride, padding) for s in sizes]
    if min(sizes) < 1:
        raise ValueError(f"convnet3: input {in_shape} is too small for two {kernel_size}×{kernel_size} "
                         f"stride-{stride} convolutions; lower kernel_size or stride")
    return nn.Sequential(
        o.conv(c, width, kernel_size, stride, padding, bias=bias), nn.ReLU(),
        o.conv(width, width, kernel_size, stride, padding, bias=bias), nn.ReLU(),
        nn.Flatten(), nn.Linear(width * math.prod(sizes), num_outputs, bias=bias))


@register_model("conv4")
def conv4(in_shape: tuple[int, ...], num_outputs: int, *, width: int = 64, kernel_size: int = 3,
          batch_norm: bool = True) -> nn.Module:
    """003's Conv-4: four blocks conv(k×k, 'same' padding, bias) → BN → ReLU → max-pool 2, widths c, 2c, 4c,
    8c, then global average pooling and a linear layer 8c → 10.

    003 gives the width c and the counts 6,666 (c=4) and 1,558,026 (c=64) but not the layout; this one
    reproduces both exactly with k=3: for c=4, convs 112 + 296 + 1,168 + 4,640, BN 2·(4+8+16+32) = 120,
    linear 32·10 + 10 = 330. The final pooling must reduce to 1×1 for the linear layer to have 8c inputs
    (flattening the 2×2 map of a 32×32 input would give 4× more); the seed does not say whether it averages
    or takes the maximum — the count is the same. Other kernel sizes (003 varies k) scale only the convs.

    References: 003 §3.2-3.3; Frankle & Carbin, "The Lottery Ticket Hypothesis", ICLR 2019 (the Conv-n
    family), https://arxiv.org/abs/1803.03635
    """
    o = ops_for(in_shape, "conv4")
    c_in, sizes = in_shape[0], list(in_shape[1:])
    layers: list[nn.Module] = []
    for i in range(4):
        c_out = width * 2**i
        sizes = [conv_out(s, kernel_size, 1, kernel_size // 2) for s in sizes]  # same size for odd k
        pool, sizes = pool_if_possible(o, sizes)
        layers += [o.conv(c_in, c_out, kernel_size, padding=kernel_size // 2),
                   o.bn(c_out) if batch_norm else nn.Identity(), nn.ReLU(), pool]
        c_in = c_out
    return nn.Sequential(*layers, o.avgpool(1), nn.Flatten(), nn.Linear(c_in, num_outputs))


@register_model("tweaks_cnn")
def tweaks_cnn(in_shape: tuple[int, ...], num_outputs: int, *, dropout: float = 0.0, batch_norm: bool = False,
               widths: list[int] = [32, 64], hidden: int = 512) -> nn.Module:
    """002's CIFAR CNN: two blocks of [conv 3×3 'same' → conv 3×3 'valid' → max-pool 2], flatten, a dense
    layer of `hidden` units, dropout, and the linear classifier (the Keras `cifar10_cnn` example).

    On 32×32 inputs the maps go 32 → 30 → 15 → 13 → 6, so the dense layer reads 64·6·6 = 2,304 values:
    896 + 9,248 + 18,496 + 36,928 + 1,180,160 + 5,130 = 1,250,858 parameters ("about 1,250,000", 002 §2).

    Args:
        dropout: probability of *dropping* a hidden unit before the classifier (002 fig. 1 sweeps it; its
            text calls p the probability of keeping a unit — p_keep = 1 − dropout).
        batch_norm: BatchNorm after every conv and the dense layer (002 §5), adding 2 parameters per channel.
        widths: the channels of the two blocks; hidden: units of the dense layer.

    References: 002 §2, §3, §5; Srivastava et al., "Dropout", JMLR 2014; Ioffe & Szegedy, "Batch
    Normalization", ICML 2015, https://arxiv.org/abs/1502.03167
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"tweaks_cnn: dropout is a drop probability in [0, 1), got {dropout}")
    o = ops_for(in_shape, "tweaks_cnn")
    c_in, sizes = in_shape[0], list(in_shape[1:])
    norm = (lambda c: o.bn(c)) if batch_norm else (lambda c: nn.Identity())  # noqa: E731
    layers: list[nn.Module] = []
    for w in widths:
        pad = 0 if min(sizes) >= 3 else 1  # 'valid', unless the map is already smaller than the kernel
        sizes = [conv_out(s, 3, 1, pad) for s in sizes]
        pool, sizes = pool_if_possible(o, sizes)
        layers += [o.conv(c_in, w, 3, padding=1), norm(w), nn.ReLU(),
                   o.conv(w, w, 3, padding=pad), norm(w), nn.ReLU(), pool]
        c_in = w
    return nn.Sequential(
        *layers, nn.Flatten(), nn.Linear(c_in * math.prod(sizes), hidden),
        nn.BatchNorm1d(hidden) if batch_norm else nn.Identity(), nn.ReLU(),
        Dropout(dropout), nn.Linear(hidden, num_outputs))
