"""CIFAR-sized VGG nets (004's VGG-16 with batch normalization): stacks of 3×3 convolutions and max-pools,
global pooling, one linear classifier.

The CIFAR variant keeps the ImageNet conv stacks (Simonyan & Zisserman's configurations A, B, D, E) but
replaces the three 4096-wide dense layers with a single 512 → 10 layer, as in the widely used
`kuangliu/pytorch-cifar` implementation. On 32×32 inputs five pools leave a 1×1 map.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from genlab.models import register_model
from genlab.models.convnets import ops_for, pool_if_possible

# channels per conv layer, "M" for a 2×2 max-pool (Simonyan & Zisserman, table 1)
CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def _build_vgg(in_shape: tuple[int, ...], num_outputs: int, depth: int, batch_norm: bool,
               width_factor: float) -> nn.Module:
    if depth not in CONFIGS:
        raise ValueError(f"vgg: depth must be one of {sorted(CONFIGS)}, got {depth}")
    o = ops_for(in_shape, f"vgg{depth}")
    c_in, sizes = in_shape[0], list(in_shape[1:])
    layers: list[nn.Module] = []
    for v in CONFIGS[depth]:
        if v == "M":
            pool, sizes = pool_if_possible(o, sizes)
            layers.append(pool)
            continue
        c_out = max(1, round(int(v) * width_factor))
        layers += [o.conv(c_in, c_out, 3, padding=1), o.bn(c_out) if batch_norm else nn.Identity(), nn.ReLU()]
        c_in = c_out
    return nn.Sequential(*layers, o.avgpool(1), nn.Flatten(), nn.Linear(c_in, num_outputs))


@register_model("vgg")
def vgg(in_shape: tuple[int, ...], num_outputs: int, *, depth: Literal[11, 13, 16, 19] = 16,
        batch_norm: bool = True, width_factor: float = 1.0) -> nn.Module:
    """VGG-`depth` for CIFAR-sized inputs: conv 3×3 (pad 1, bias) → BN → ReLU stacks, 2×2 max-pools, global
    average pooling, linear 512 → num_outputs.

    Parameters on 3×32×32, 10 classes, with BN: VGG-11 9,231,114; VGG-16 14,728,266 (004: "VGG-16 with batch
    normalization", ~15M). `width_factor` scales every conv's channels (1.0 = the paper's).

    References: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
    ICLR 2015, https://arxiv.org/abs/1409.1556; 004 §3.1 (after Neyshabur et al. 2017).
    """
    return _build_vgg(in_shape, num_outputs, depth, batch_norm, width_factor)


@register_model("vgg11_bn")
def vgg11_bn(in_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """VGG-11 with batch normalization (configuration A), CIFAR-sized: 9.2M parameters."""
    return _build_vgg(in_shape, num_outputs, 11, True, 1.0)


@register_model("vgg16_bn")
def vgg16_bn(in_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """VGG-16 with batch normalization (configuration D), CIFAR-sized: 14.7M parameters (004)."""
    return _build_vgg(in_shape, num_outputs, 16, True, 1.0)
