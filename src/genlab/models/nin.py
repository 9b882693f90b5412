"""Network in Network (Lin, Chen & Yan 2014) as Jiang et al. (2020) and Dziugaite et al. (2020) sweep it: the
architecture of the measure-ranking studies, with depth, width and dropout as separate options."""

from __future__ import annotations

from torch import nn

from genlab.models import register_model
from genlab.models.dropout import Dropout
from genlab.models.convnets import Ops, ops_for


def nin_block(o: Ops, c_in: int, c_out: int, batch_norm: bool) -> list[nn.Module]:
    """conv 3×3 stride 2 → two conv 1×1, each → BN → ReLU: (B, c_in, H, W) → (B, c_out, ⌈H/2⌉, ⌈W/2⌉)
    (or the 1-D analogue on (B, c_in, L))."""
    layers: list[nn.Module] = []
    for k, (a, s, p) in enumerate([(3, 2, 1), (1, 1, 0), (1, 1, 0)]):
        layers.append(o.conv(c_in if k == 0 else c_out, c_out, kernel_size=a, stride=s, padding=p))
        layers += ([o.bn(c_out)] if batch_norm else []) + [nn.ReLU()]
    return layers


@register_model("nin")
def nin(in_shape: tuple[int, ...], num_outputs: int, *, depth: int = 2, width: int = 192, dropout: float = 0.0,
        batch_norm: bool = True) -> nn.Module:
    """`depth` NiN blocks of `width` channels (each: conv 3×3 stride 2 → conv 1×1 → conv 1×1, BN and ReLU
    after each conv, then Dropout(`dropout`) when > 0), a conv 1×1 to the classes (→ BN), global average
    pooling. (B, C, H, W) → (B, num_outputs); (B, C, L) inputs (mnist1d as_image) get the 1-D layers.

    References: Lin, Chen & Yan, "Network in network", ICLR 2014; Jiang et al., "Fantastic generalization
    measures and where to find them", ICLR 2020, §A (the NiN grid: depth, width, dropout, lr, batch size, wd).
    """
    o = ops_for(in_shape, "nin")
    if depth < 1 or width < 1 or not 0 <= dropout < 1:
        raise ValueError(f"nin: depth >= 1, width >= 1 and 0 <= dropout < 1, got {depth}, {width}, {dropout}")
    layers: list[nn.Module] = []
    for d in range(depth):
        layers += nin_block(o, in_shape[0] if d == 0 else width, width, batch_norm)
        layers += [Dropout(dropout)] if dropout > 0 else []
    layers.append(o.conv(width, num_outputs, kernel_size=1))
    layers += [o.bn(num_outputs)] if batch_norm else []
    layers += [o.avgpool(1), nn.Flatten()]
    return nn.Sequential(*layers)
