"""Horizontal fusion of K conv nets (HFTA, Wang et al., MLSys 2021): the members' convolutions as one
convolution with K× the channels and `groups = K`, BatchNorm over the fused channels, pooling as is, and the
linear layers as batched matmuls. The ensemble trainer's (`train.ensemble.Stacked`) alternative to
vmap(functional_call) for Sequential conv families (convnet3, conv4).

    params[name]: (K, *shape)            stacked as in Stacked (conv weight (K, C_out, C_in, *k))
    x: (K, B, C, *S)  →  h: (B, K·C, *S)  member k's channels are [k·C, (k+1)·C): a grouped conv with
                                          weight (K·C_out, C_in, *k) and groups = K convolves each member's
                                          channels with its own filters only
    BatchNorm: per channel over (B, *S) — per member per channel, what the solo net computes; running
               statistics are flat views of the stacked (K, C) buffers, updated in place as solo updates them
    Flatten: (B, K·C, *S) → (K, B, C·∏S)  (channel-major within a member: the solo flatten order)
    Linear: (K, B, F) → (K, B, out) by baddbmm

A member's numbers equal its solo run's to float tolerance (a grouped conv sums the same products, maybe in
another order; tests/test_fused.py). Each member keeps its own data order, labels and hyperparameters: the
optimizer and everything else is the Stacked trainer's.

Reference: Wang, Rao, Ren, Liu, Pekhimenko, "Horizontally Fused Training Array: An Effective Hardware
Utilization Squeezer for Training Novel Deep Learning Models", MLSys 2021, https://arxiv.org/abs/2102.02344
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models.conv import conv_nd
from genlab.models.mlp import ACTIVATIONS

CONVS = (nn.Conv1d, nn.Conv2d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
SHAPE_FREE = (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AvgPool1d,
              nn.AvgPool2d, nn.Identity, *ACTIVATIONS.values())  # act per channel: fused channels are fine
# 2-D fused maps channels-last (NHWC), per device type: oneDNN's grouped convs, BN and pools then run without
# reordering to its blocked layout. CPU, 8 members, batch 64, 1 thread, one training step (bench_flops.py's
# step): Conv-4 c16 on 1×8×8 44.6 → 61.7 GFLOP/s, on 3×32×32 42.3 → 71.2; ConvNet3-32 52.9 → 61.9, 81.9 → 96.5.
# Whole training, 8 runs on digits (bench_ensemble.py's families, medians of 5 interleaved): Conv-4 ensemble
# 1.18× → 1.44× its solo runs, ConvNet3-32 1.19× → 1.18×. Not measured on a GPU: off there.
# 1-D maps (B, K·C, L) have no channels-last format: where CHANNELS_LAST holds they run lifted to (B, K·C, 1, L),
# convs with (1, k) kernels and pools with (1, k) windows, channels-last like 2-D ones. 003's random-label
# Conv-4 on mnist1d (width 22, 9 members, batch 64, one step, 1 thread): 46.5 ms as 1-D, 47.0 lifted but NCHW,
# 20.3 lifted and channels-last — where 9 solo steps take 37 ms.
CHANNELS_LAST = {"cpu": True}
LAYOUT = 2  # the fused maps' layout version (the stacking calibration's cache keys on it): 2 lifts 1-D maps


def is_fusable(model: nn.Module) -> bool:
    """A Sequential of convs (zero padding), BatchNorm (with a momentum), channel-wise pools/activations, one
    Flatten, then Linear/activations: what `fused_forward` computes exactly. Dropout and other layers: no."""
    if not isinstance(model, nn.Sequential):
        return False
    flat = False
    for m in model:
        if isinstance(m, nn.Flatten):
            if flat or m.start_dim != 1:
                return False
            flat = True
        elif isinstance(m, CONVS):
            if flat or m.padding_mode != "zeros" or isinstance(m.padding, str):
                return False
        elif isinstance(m, NORMS):
            if flat or m.momentum is None or not m.track_running_stats:
                return False
        elif isinstance(m, nn.Linear):
            if not flat:
                return False
        elif not isinstance(m, SHAPE_FREE):
            return False
    return flat and any(isinstance(m, CONVS) for m in model)


def fuse_input(x: torch.Tensor) -> torch.Tensor:
    """(K, B, C, *S) → (B, K·C, *S), member-major channels."""
    K, B, C = x.shape[:3]
    return x.transpose(0, 1).reshape(B, K * C, *x.shape[3:])


def fused_forward(model: nn.Sequential, params: dict[str, torch.Tensor], bufs: dict[str, torch.Tensor],
                  x: torch.Tensor, shared_x: bool = False) -> torch.Tensor:
    """(K, B, *in_shape), or (B, *in_shape) shared by all members, → (K, B, out) for an `is_fusable` model with
    stacked params/buffers; BatchNorm in training mode when `model.training` (its running statistics in
    `bufs` updated in place)."""
    K = next(iter(params.values())).shape[0]
    first = True
    h = x if shared_x else fuse_input(x)
    last = -1  # channels-last maps go back to NCHW after the last conv/BN: the activations and pools after it
    lift = h.dim() == 3 and CHANNELS_LAST.get(h.device.type, False)  # 1-D maps as (B, K·C, 1, L)
    if lift:
        h = h.unsqueeze(2)
    if h.dim() == 4 and CHANNELS_LAST.get(h.device.type, False):  # then get their gradient in their own layout
        h = h.contiguous(memory_format=torch.channels_last)  # the same values; convs, BN and pools keep it
        last = max(i for i, m in enumerate(model) if isinstance(m, CONVS + NORMS))  # (from the Flatten's copy:
        # ReLU's backward on mixed layouts took 33× its time: ConvNet3-32, 8 members, 4.40 → 4.15 ms a step)
    flat = False
    for i, mod in enumerate(model):
        if isinstance(mod, CONVS):
            w = params[f"{i}.weight"]  # (K, C_out, C_in / g, *k)
            b = params.get(f"{i}.bias")
            # a shared input is every member's: the first conv reads it once with all K·C_out filters (groups 1)
            groups = mod.groups if (first and shared_x) else K * mod.groups
            w = w.reshape(-1, *w.shape[2:])
            stride, padding, dilation = mod.stride, mod.padding, mod.dilation
            if lift:  # a (1, k) kernel over the (1, L) map
                w, stride, padding, dilation = w.unsqueeze(2), (1, *stride), (0, *padding), (1, *dilation)
            h = conv_nd(h, w, None if b is None else b.reshape(-1), stride, padding, dilation,
                        groups)  # a batched matmul where one window covers the map
            first = False
        elif isinstance(mod, NORMS):
            training = model.training
            rm, rv = bufs[f"{i}.running_mean"], bufs[f"{i}.running_var"]
            if training:
                bufs[f"{i}.num_batches_tracked"].add_(1)
            h = F.batch_norm(h, rm.view(-1), rv.view(-1), _flat(params.get(f"{i}.weight")),
                             _flat(params.get(f"{i}.bias")), training, mod.momentum, mod.eps)
        elif isinstance(mod, nn.Flatten):
            B = h.shape[0]
            h = h.reshape(B, K, -1).transpose(0, 1)  # (K, B, C·∏S)
            flat = True
        elif isinstance(mod, nn.Linear):
            w, b = params[f"{i}.weight"], params.get(f"{i}.bias")
            h = torch.bmm(h, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        elif lift and not flat:  # pools and activations on the lifted (B, K·C, 1, L) maps
            h = _lifted(mod, h)
        else:  # pools and activations work per channel (before the first conv: on the shared input itself)
            h = mod(h)
        if i == last:
            h = h.contiguous()
    return h


def _lifted(mod: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """A 1-D pool as the 2-D pool with (1, k) windows on (B, C, 1, L) maps; anything else (an activation) as is."""
    if isinstance(mod, nn.MaxPool1d):
        return F.max_pool2d(h, (1, _one(mod.kernel_size)), (1, _one(mod.stride)), (0, _one(mod.padding)),
                            (1, _one(mod.dilation)), mod.ceil_mode)
    if isinstance(mod, nn.AvgPool1d):
        return F.avg_pool2d(h, (1, _one(mod.kernel_size)), (1, _one(mod.stride)), (0, _one(mod.padding)),
                            mod.ceil_mode, mod.count_include_pad)
    if isinstance(mod, nn.AdaptiveAvgPool1d):
        return F.adaptive_avg_pool2d(h, (1, _one(mod.output_size)))
    return mod(h)


def _one(v: int | tuple[int, ...]) -> int:
    return v[0] if isinstance(v, (tuple, list)) else v


def _flat(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.reshape(-1)
