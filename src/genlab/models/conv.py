"""Convolutions whose one output position sees the whole input, computed as a matmul.

On small maps — digits' 8×8 after a few 2×2 pools: VGG's last blocks, Conv-4's fourth conv, the tweaks CNN's
second 'valid' conv — a conv often has a single output position whose window covers every input position:
a 3×3 conv with padding 1 on a 1×1 map reads only its centre tap, a 3×3 'valid' conv on a 3×3 map all nine.
Then, with p the padding and t over the input's positions,

    out[b, o] = bias[o] + Σ_{c, t} w[o, c, p + t] · x[b, c, t]        (one matmul; per group, a batched one)

oneDNN runs these as general convolutions, and slowly: one VGG-11 (¼ width) step on 8×8 digits spent 28 % of
its time in the backward of three 128→128 3×3 convs on 1×1 maps, ~40× what the matmul costs. As matmuls
(CPU, 1 thread): a solo VGG-11 ¼ step on digits 5.1 → 4.0 ms, a fused step of 8 members 29.1 → 20.4 ms; whole
training, medians of 3 interleaved: 004's confusion-set VGG (20 epochs) solo 1.66 → 1.34 CPU s, an ensemble of
3 4.78 → 3.93; 003's vflip Conv-4 (5 epochs) solo 0.41 → 0.38, ensemble of 3 0.97 → 0.81.
The same products, summed in another order (float rounding); the taps outside the window get a zero gradient,
as from the conv.

`conv_nd` is the functional form (the fused ensembles' convs), `Conv1d`/`Conv2d` the layers the model
builders use: nn.Conv1d/2d subclasses (same parameters, state_dict and isinstance), so measures and learning
rules see ordinary convs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

CONV_FN = {1: F.conv1d, 2: F.conv2d}  # by the number of spatial dims


def pairs(v: int | tuple[int, ...], n: int) -> tuple[int, ...]:
    """A conv's stride/padding/dilation, an int or a tuple, as an n-tuple."""
    return (v,) * n if isinstance(v, int) else tuple(v)


def one_window(in_size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
               padding: tuple[int, ...] | str, dilation: tuple[int, ...]) -> bool:
    """Whether a zero-padded conv has one output position per axis whose window holds every input position:
    dilation 1, ⌊(S + 2p − k) / s⌋ + 1 = 1 and S ≤ k − p (the window [−p, k − p) covers [0, S))."""
    if isinstance(padding, str):
        return False  # 'same' / 'valid' strings: left to the conv
    return all(d == 1 and (s_in + 2 * p - k) // s + 1 == 1 and s_in <= k - p
               for s_in, k, s, p, d in zip(in_size, kernel, stride, padding, dilation))


def conv_nd(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, stride, padding, dilation,
            groups: int) -> torch.Tensor:
    """F.conv1d/conv2d(x, w, b, stride, padding, dilation, groups) for zero padding; a (batched) matmul over the
    window's taps where `one_window` holds.  x: (B, G·C, *S), w: (G·O, C, *k) → (B, G·O, 1, ...)."""
    n = x.dim() - 2
    stride, dilation = pairs(stride, n), pairs(dilation, n)
    pad = padding if isinstance(padding, str) else pairs(padding, n)
    size, kernel = tuple(x.shape[2:]), tuple(w.shape[2:])
    if not one_window(size, kernel, stride, pad, dilation):
        return CONV_FN[n](x, w, b, stride, padding, dilation, groups)
    B, G, O = x.shape[0], groups, w.shape[0] // groups
    taps = w[(slice(None), slice(None), *(slice(p, p + s) for p, s in zip(pad, size)))]  # (G·O, C, *S)
    feats = taps.shape[1] * math.prod(size)  # C·∏S
    if G == 1:
        out = F.linear(x.reshape(B, feats), taps.reshape(O, feats), b)  # (B, O)
    else:
        xs = x.reshape(B, G, feats).transpose(0, 1)  # (G, B, C·∏S)
        wt = taps.reshape(G, O, feats).transpose(1, 2)  # (G, C·∏S, O)
        out = torch.bmm(xs, wt) if b is None else torch.baddbmm(b.reshape(G, 1, O), xs, wt)  # (G, B, O)
        out = out.transpose(0, 1).reshape(B, G * O)
    return out.reshape(B, G * O, *(1,) * n)


class _OneWindow:
    """_conv_forward by `conv_nd` for zero padding (a matmul where one window covers the input)."""

    def _conv_forward(self, input, weight, bias):
        if self.padding_mode != "zeros":
            return super()._conv_forward(input, weight, bias)
        return conv_nd(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(_OneWindow, nn.Conv1d):
    """nn.Conv1d, computed by `conv_nd`."""


class Conv2d(_OneWindow, nn.Conv2d):
    """nn.Conv2d, computed by `conv_nd`."""
