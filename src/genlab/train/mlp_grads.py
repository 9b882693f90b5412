"""The hand-derived gradient path of an ensemble of MLPs: K members' forward as batched matmuls (bmm) and their
gradients by hand, no autograd graph (a step of a small MLP is mostly autograd overhead).

    x: (K, B, *in_shape) → (K, B, C)       stacked params[name]: (K, out, in) weights, (K, out) biases
    masks[name]: (K, B, *feat)             a step's dropout multipliers (0 or 1/(1−p)), applied forward and back

Same gradients as autograd (tests/test_ensemble.py, tests/test_dropout.py).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from genlab.models.dropout import Dropout
from genlab.models.mlp import ACTIVATIONS

ELEMENTWISE = tuple(ACTIVATIONS.values())


def is_mlp(model: nn.Module) -> bool:
    """A Sequential of Flatten, Linear, elementwise activations and Dropout (linear, mlp, mlp_uniform): the bmm
    fast path."""
    return isinstance(model, nn.Sequential) and all(
        isinstance(m, (nn.Flatten, nn.Linear, Dropout, *ELEMENTWISE)) for m in model)


Masks = dict[str, torch.Tensor]  # dropout module name → (K, B, *feat) multipliers (0 or 1/(1−p)); {}: none


def _drop(h: torch.Tensor, masks: Masks | None, i: int) -> torch.Tensor:
    """Dropout layer i on (K, B, width): × its multiplier (cast as the solo module casts), identity without."""
    m = masks.get(str(i)) if masks else None
    return h if m is None else h * m.to(h.dtype)


def mlp_forward(model: nn.Sequential, params: dict[str, torch.Tensor], x: torch.Tensor,
                masks: Masks | None = None, inputs: list[torch.Tensor] | None = None) -> torch.Tensor:
    """(K, B, *in_shape) → (K, B, C) for an `is_mlp` model with stacked params ((K, out, in) weights);
    `masks` are the step's dropout multipliers (none in evaluation); `inputs`, if given, receives each
    layer's input in order (what `mlp_grads` differentiates through)."""
    h = x
    for i, mod in enumerate(model):
        if inputs is not None:
            inputs.append(h)
        if isinstance(mod, nn.Flatten):
            h = h.reshape(h.shape[0], h.shape[1], -1)
        elif isinstance(mod, nn.Linear):
            w, b = params[f"{i}.weight"], params.get(f"{i}.bias")
            h = torch.bmm(h, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        elif isinstance(mod, Dropout):
            h = _drop(h, masks, i)
        else:
            h = mod(h)
    return h


# dh/dz of an activation h = act(z), from z and h; activations not listed here go through autograd
ACT_GRAD: dict[type, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    nn.ReLU: lambda z, h: (h > 0).to(h.dtype),  # 0 at z = 0, as torch's relu backward
    nn.Tanh: lambda z, h: 1 - h * h,
    nn.Sigmoid: lambda z, h: h * (1 - h),
    nn.Identity: lambda z, h: torch.ones_like(h),
}


def mlp_grads(model: nn.Sequential, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
              loss, with_loss: bool = True, masks: Masks | None = None
              ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """Per-member mean losses (K,) and their gradients, by hand: no autograd graph (a step of a small MLP is
    mostly autograd overhead). x: (K, B, *in_shape), y: (K, B). Same gradients as autograd (tested).
    `with_loss=False` skips the loss values (the trainer checks the weights for divergence instead).
    `masks`: the step's dropout multipliers; y = x·m forward, so ∂x = ∂y·m backward (m = 0 or 1/(1−p))."""
    K, B = x.shape[:2]
    hs: list[torch.Tensor] = []  # hs[i]: the input of layer i
    h = mlp_forward(model, params, x, masks, inputs=hs)
    flat, yf = h.reshape(K * B, -1), y.reshape(-1)
    losses = loss.per_sample(flat, yf).view(K, B).mean(1) if with_loss else None
    g = loss.d_out(flat, yf).view(K, B, -1) / B  # (K, B, C) ∂ mean loss / ∂ out
    first = min(i for i, m in enumerate(model) if isinstance(m, nn.Linear))  # below it no gradient is needed
    grads: dict[str, torch.Tensor] = {}
    for i in range(len(model) - 1, first - 1, -1):
        mod, inp = model[i], hs[i]
        if isinstance(mod, nn.Linear):
            grads[f"{i}.weight"] = torch.bmm(g.transpose(1, 2), inp)  # (K, out, in)
            if f"{i}.bias" in params:
                grads[f"{i}.bias"] = g.sum(1)
            if i > first:
                g = torch.bmm(g, params[f"{i}.weight"])  # (K, B, in)
        elif isinstance(mod, nn.Flatten):
            g = g.reshape(inp.shape)
        elif isinstance(mod, Dropout):
            g = _drop(g, masks, i)  # (K, B, width) through the same multiplier
        else:
            g = g * ACT_GRAD[type(mod)](inp, hs[i + 1] if i + 1 < len(hs) else h)
    return losses, grads
