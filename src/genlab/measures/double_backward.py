"""Convolutions of inputs that need no gradient, made cheap to differentiate twice (Hessian-vector products).

PyTorch's double backward of a convolution (`_convolution_double_backward`, ATen, torch 2.x) computes the
gradient with respect to the convolution's *input* — a transposed convolution over the input's full map —
whenever the weight's second-order direction is given, whether or not the input needs a gradient. A network's
first convolution reads the data, which never does, so every Hessian-vector product paid a transposed
convolution back to the images for nothing: ConvNet3-32 on 512 CIFAR-shaped points, float32, 1 thread, one
product through the kept graph 60 → 44 ms without it (a two-conv net; 19 % of the measure's product time).

`ConstInputConvs()` is a `TorchFunctionMode`: inside it, `torch.conv1d` / `torch.conv2d` (what nn.Conv1d/2d
and F.conv1d/2d call) on an input that needs no gradient and a weight that does run as `_ConvOfConstant`,
whose backward is `_WeightGradient` — the weight gradient as a function of the output gradient, whose own
backward is the forward convolution of the (constant) input with the direction (the term double backward
needs, and no other). Values are the same ops in the same order as autograd's own (tests/test_hessian_conv.py:
equal bit for bit in float64). Other calls (a string padding, a 3-D conv, an input that needs a gradient) pass
through unchanged.
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

from genlab.models.conv import pairs

SPATIAL = {torch.conv1d: 1, torch.conv2d: 2}  # the convolutions taken over, and their spatial dimensions
ARGS = ("bias", "stride", "padding", "dilation", "groups")  # after (input, weight), positionally or by name


class _WeightGradient(torch.autograd.Function):
    """gO ↦ ∂L/∂w of a convolution of a constant input x; its backward: direction ggW ↦ conv(x, ggW)."""

    @staticmethod
    def forward(ctx, g_out, x, weight, stride, padding, dilation, groups):
        ctx.save_for_backward(x)
        ctx.conf = (stride, padding, dilation, groups)
        zeros = [0] * (x.dim() - 2)
        return torch.ops.aten.convolution_backward(g_out, x, weight, None, stride, padding, dilation, False, zeros,
                                                   groups, [False, True, False])[1]

    @staticmethod
    def backward(ctx, gg_weight):
        x, = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        zeros = [0] * (x.dim() - 2)
        gg_out = torch.ops.aten.convolution(x, gg_weight, None, stride, padding, dilation, False, zeros, groups)
        return gg_out, None, None, None, None, None, None


class _ConvOfConstant(torch.autograd.Function):
    """conv(x, w) + b for an x that needs no gradient: its backward gives w's (through `_WeightGradient`, so a
    second differentiation needs no transposed convolution) and b's, and none for x."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, dilation, groups)
        ctx.has_bias = bias is not None
        zeros = [0] * (x.dim() - 2)
        return torch.ops.aten.convolution(x, weight, bias, stride, padding, dilation, False, zeros, groups)

    @staticmethod
    def backward(ctx, g_out):
        x, weight = ctx.saved_tensors
        g_weight = _WeightGradient.apply(g_out, x, weight, *ctx.conf)
        g_bias = g_out.sum([0, *range(2, g_out.dim())]) if ctx.has_bias else None
        return None, g_weight, g_bias, None, None, None, None


class ConstInputConvs(TorchFunctionMode):
    """Within it, convolutions of inputs that need no gradient are `_ConvOfConstant` (module docstring)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        n = SPATIAL.get(func)
        if n is None or len(args) < 2:
            return func(*args, **kwargs)
        x, weight = args[0], args[1]
        opts = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1,
                **dict(zip(ARGS, args[2:])), **kwargs}
        if (x.requires_grad or not weight.requires_grad or not torch.is_grad_enabled()
                or isinstance(opts["padding"], str) or x.dim() != n + 2):
            return func(*args, **kwargs)
        return _ConvOfConstant.apply(x, weight, opts["bias"], pairs(opts["stride"], n), pairs(opts["padding"], n),
                                     pairs(opts["dilation"], n), int(opts["groups"]))
