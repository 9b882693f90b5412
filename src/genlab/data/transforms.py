"""Batched image transforms as pure tensor functions on the training device (no torchvision, no workers).

Images are (B, C, H, W); 1-D signals (B, C, L) are treated as (B, C, 1, L), so a "horizontal" flip reverses
them and a crop shifts them along L. Every random choice draws from the `torch.Generator` passed in, which
must live on the batch's device.

    x = normalize(to_float(xb_uint8, 1 / 255), mean, std)   # (B, C, H, W) float32
    x = random_crop(x, padding=4, gen=g)                       # same shape, shifted by up to ±4 px
    x = random_hflip(x, gen=g)                                 # half the images mirrored
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def _as_4d(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """(B, C, L) → (B, C, 1, L); (B, C, H, W) unchanged. Returns the view and whether it was 1-D."""
    if x.dim() == 3:
        return x.unsqueeze(2), True
    if x.dim() == 4:
        return x, False
    raise ValueError(f"expected images (B, C, H, W) or signals (B, C, L), got shape {tuple(x.shape)}; "
                     f"reshape flat inputs to their image shape first")


def to_float(x: torch.Tensor, scale: float) -> torch.Tensor:
    """uint8 (or float) pixels times `scale` (1/255 for bytes), as float32."""
    return x.to(torch.float32) * scale


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(x - mean_c) / std_c per channel c (dim 1); mean/std have one value per channel."""
    shape = (1, len(mean)) + (1,) * (x.dim() - 2)
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x - m) / s


def channel_stats(x: torch.Tensor, scale: float, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of `to_float(x, scale)` over (n, C, ...), in chunks (no
    float copy of a whole uint8 set)."""
    c = x.shape[1]
    s1 = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, len(x), chunk):
        xf = to_float(x[i:i + chunk], scale).to(torch.float64).transpose(0, 1).reshape(c, -1)
        s1 += xf.sum(1).cpu()
        s2 += (xf * xf).sum(1).cpu()
    n = x.numel() // c
    mean = s1 / n
    std = (s2 / n - mean * mean).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror left↔right (the last dim): (B, C, H, W) or (B, C, L)."""
    return x.flip(-1)


def vflip(x: torch.Tensor) -> torch.Tensor:
    """Turn upside down (dim H) — 003's flipped test set. Images only."""
    if x.dim() != 4:
        raise ValueError(f"a vertical flip needs images (B, C, H, W), got shape {tuple(x.shape)}")
    return x.flip(-2)


def random_hflip(x: torch.Tensor, gen: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each sample left↔right with probability p (one Bernoulli draw per sample)."""
    flip = torch.rand(len(x), generator=gen, device=x.device) < p  # (B,) bool
    shape = (len(x),) + (1,) * (x.dim() - 1)
    return torch.where(flip.view(shape), x.flip(-1), x)


def random_crop(x: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad by `padding` on each side, then cut the original size at a random offset per sample.

    Equivalent to a random translation by (dy, dx) ∈ [−padding, padding]² with zero fill (0 is the mean
    colour once normalized). One gather on the padded batch: (B, C, H+2p, W+2p) → (B, C, H, W). Signals
    (B, C, L) shift along L only.
    """
    if padding < 0:
        raise ValueError(f"random_crop: padding must be >= 0, got {padding}")
    if padding == 0:
        return x
    x4, one_d = _as_4d(x)
    b, c, h, w = x4.shape
    py = 0 if one_d else padding  # 1-D signals are not padded in the dummy H dim
    padded = F.pad(x4, (padding, padding, py, py))  # (B, C, H+2py, W+2p)
    dy = torch.randint(0, 2 * py + 1, (b,), generator=gen, device=x.device)  # (B,) row offsets
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=x.device)  # (B,) column offsets
    rows = (dy[:, None] + torch.arange(h, device=x.device))  # (B, H) source rows
    cols = (dx[:, None] + torch.arange(w, device=x.device))  # (B, W) source columns
    idx_b = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_b, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    out = out.permute(0, 3, 1, 2)
    return out.squeeze(2) if one_d else out


AUGMENTS = ("none", "crop_flip", "flip", "crop")


def augment(x: torch.Tensor, kind: str, gen: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Apply the named augmentation: "none", "crop" (random crop), "flip" (random mirror) or "crop_flip"."""
    if kind not in AUGMENTS:
        raise ValueError(f"unknown augment {kind!r}; choose one of {list(AUGMENTS)}")
    if kind in ("crop", "crop_flip"):
        x = random_crop(x, padding, gen)
    if kind in ("flip", "crop_flip"):
        x = random_hflip(x, gen)
    return x
