"""CIFAR ResNets of He et al. (2016, §4.2): ResNet-20/32/44/56/110, depth 6n + 2, option A shortcuts.

A 3×3 conv to 16 channels, three stages of n basic blocks at 16, 32, 64 channels (the last two start with
stride 2), global average pooling and a linear layer. Option A shortcuts are parameter-free: where a block
halves the map and doubles the channels, the shortcut subsamples x[..., ::2, ::2] and zero-pads channels.
000 ch. 4 trains ResNet-56 (junyuseu's PyTorch implementation).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models import register_model
from genlab.models.convnets import Ops, ops_for


class PadShortcut(nn.Module):
    """Option A: x subsampled by `stride` along every spatial axis, channels zero-padded to `c_out`."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.extra, self.stride = c_out - c_in, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[(slice(None), slice(None)) + (slice(None, None, self.stride),) * (x.dim() - 2)]
        lo = self.extra // 2
        pad = [0, 0] * (x.dim() - 2) + [lo, self.extra - lo]  # F.pad lists the last dim first; channels last
        return F.pad(x, pad)


class BasicBlock(nn.Module):
    """conv3×3 → BN → ReLU → conv3×3 → BN, plus the shortcut, then ReLU."""

    def __init__(self, o: Ops, c_in: int, c_out: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1 = o.conv(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = o.bn(c_out)
        self.conv2 = o.conv(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = o.bn(c_out)
        if stride == 1 and c_in == c_out:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "A":
            self.shortcut = PadShortcut(c_in, c_out, stride)
        else:  # option B: a 1×1 projection with BN
            self.shortcut = nn.Sequential(o.conv(c_in, c_out, 1, stride, bias=False), o.bn(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, depth: int, width: int, shortcut: str):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"resnet: depth must be 6n + 2 (20, 32, 44, 56, 110), got {depth}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"resnet: shortcut must be 'A' (zero padding) or 'B' (projection), got {shortcut!r}")
        o, n = ops_for(in_shape, f"resnet{depth}"), (depth - 2) // 6
        self.stem = nn.Sequential(o.conv(in_shape[0], width, 3, 1, 1, bias=False), o.bn(width), nn.ReLU())
        blocks, c_in = [], width
        for stage in range(3):
            c_out = width * 2**stage
            for i in range(n):
                blocks.append(BasicBlock(o, c_in, c_out, 2 if (stage > 0 and i == 0) else 1, shortcut))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(o.avgpool(1), nn.Flatten(), nn.Linear(c_in, num_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


@register_model("resnet")
def resnet(in_shape: tuple[int, ...], num_outputs: int, *, depth: int = 20, width: int = 16,
           shortcut: Literal["A", "B"] = "A") -> nn.Module:
    """CIFAR ResNet of depth 6n + 2 with base width 16 (stages 16, 32, 64) and option A shortcuts.

    Parameters on 3×32×32, 10 classes: ResNet-20 272,474 (paper: 0.27M), ResNet-32 464,154 (0.46M),
    ResNet-56 855,770 (0.85M). Any spatial size works (global pooling).

    References: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, §4.2 and
    table 6, https://arxiv.org/abs/1512.03385; 000 ch. 4 (ResNet-56).
    """
    return CifarResNet(in_shape, num_outputs, depth, width, shortcut)


@register_model("resnet20")
def resnet20(in_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """ResNet-20 (n = 3), 0.27M parameters."""
    return CifarResNet(in_shape, num_outputs, 20, 16, "A")


@register_model("resnet32")
def resnet32(in_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """ResNet-32 (n = 5), 0.46M parameters."""
    return CifarResNet(in_shape, num_outputs, 32, 16, "A")


@register_model("resnet56")
def resnet56(in_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """ResNet-56 (n = 9), 0.85M parameters (000 ch. 4)."""
    return CifarResNet(in_shape, num_outputs, 56, 16, "A")
