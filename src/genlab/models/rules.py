"""Learning rules: what each Linear/Conv layer sends backwards (000 ch. 2: "the backward pass is itself
composed of functions"). A rule is applied once to a built, initialized model:

    model = apply_rule(model, "feedback_alignment", rule_generator(seed))

For every nn.Linear / nn.Conv1d/2d/3d (found by type, never by name) the layer's forward is routed through
`Feedback`, a torch.autograd.Function, with the layer's own operator op(x, W) (y = x Wᵀ or a convolution):

    forward:   y  = op(x, W) + b                exactly the layer's own output
    backward:  ∂x = opᵀ(δ, B)                   the error sent down uses the rule's feedback matrix B
               ∂W = the true weight gradient given δ (δ·xᵀ for a Linear), ∂b = Σ δ

so the error reaching a layer depends on the rule, and each layer updates its weights with its local δ·xᵀ.
    backprop            B = W                                    (nothing is installed: the model as built)
    feedback_alignment  B = G·‖W₀‖_F/‖G‖_F, G ~ N(0, 1) drawn once from the generator, W₀ the initial W:
                        a fixed random matrix of W's shape and scale (Lillicrap et al. 2016)
    sign_symmetry       B = sign(W)·‖W‖_F/√numel(W): the signs of the current W at W's rms scale, so
                        ‖B‖_F = ‖W‖_F (Liao, Leibo & Poggio 2016; scale="none" gives sign(W) itself)

Design: the layer keeps its class and parameters, and gets an instance `forward` (a functools.partial, so
deepcopy and pickle work) plus, for feedback alignment, B as a *non-persistent* buffer `feedback_weight`.
So state_dict keys and values are those of the registered architecture (checkpoints load into a plain
model), type(layer) is unchanged (measures dispatch on it), and .to(device/dtype) and deepcopy carry B.
A parametrization would rename the state_dict keys; a subclass swap would change type(layer).
`strip_rule(model)` restores plain backprop; `genlab.measures.compute` strips its copy, so measures
(sharpness, Hessian, margins) see true gradients. Outside autograd (no_grad, eval) the plain forward runs.

References: Lillicrap, Cownden, Tweed & Akerman, "Random synaptic feedback weights support error
backpropagation for deep learning", Nat. Commun. 2016; Liao, Leibo & Poggio, "How important is weight
symmetry in backpropagation?", AAAI 2016, https://arxiv.org/abs/1510.05067
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.registry import Registry

LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
RULE_ATTR = "genlab_rule"  # the LayerRule object on a ruled layer
FEEDBACK_BUFFER = "feedback_weight"  # feedback alignment's fixed B (non-persistent: not in state_dict)
RULE_STREAM = 0x72756C65  # "rule": the rule generator is SeedSequence([seed, RULE_STREAM]), apart from
                          # train.loop's STREAMS, so adding rules left every existing run's numbers as they were


class LayerRule(Protocol):
    """What a rule does to one layer: `setup` once at apply time, `feedback` at every forward with grad."""

    name: str

    def setup(self, layer: nn.Module, generator: torch.Generator) -> None: ...

    def feedback(self, layer: nn.Module) -> torch.Tensor: ...  # B, shaped like layer.weight, no grad


RuleFn = Callable[..., "LayerRule | None"]  # fn(*, options) -> a LayerRule, or None for plain backprop
_RULES: Registry[RuleFn] = Registry("rule")
register_rule = _RULES.register
get_rule = _RULES.get
list_rules = _RULES.names


# ---- the operators: forward as the layer, backward with B for the input and W's true gradient -------------
@dataclass(frozen=True)
class Operator:
    """A layer's operator without its tensors: linear, or a convolution with its hyper-parameters."""

    dims: int  # 0 for Linear, else the convolution's spatial dimensions
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1

    def forward(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if self.dims == 0:
            return F.linear(x, w, b)
        conv = (F.conv1d, F.conv2d, F.conv3d)[self.dims - 1]
        return conv(x, w, b, self.stride, self.padding, self.dilation, self.groups)

    def input_grad(self, g: torch.Tensor, x: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        """opᵀ(δ, B): (…, out) @ (out, in) for Linear; the transposed convolution with B for a conv."""
        if self.dims == 0:
            return g @ B
        return self._conv_backward(g, x, B, (True, False, False))[0]

    def weight_grad(self, g: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """∂L/∂W given δ = g: Σ_batch δ xᵀ for Linear ((out, in)); the conv's weight gradient."""
        if self.dims == 0:
            return g.reshape(-1, g.shape[-1]).T @ x.reshape(-1, x.shape[-1])
        return self._conv_backward(g, x, w, (False, True, False))[1]

    def bias_grad(self, g: torch.Tensor) -> torch.Tensor:
        """Σ δ over every axis but the channel/feature axis: (out,)."""
        if self.dims == 0:
            return g.reshape(-1, g.shape[-1]).sum(0)
        return g.sum(dim=[0, *range(2, g.dim())])

    def _conv_backward(self, g, x, w, mask):
        return torch.ops.aten.convolution_backward(g, x, w, None, list(self.stride), list(self.padding),
                                                   list(self.dilation), False, [0] * self.dims, self.groups,
                                                   list(mask))


def op_of(layer: nn.Module) -> Operator:
    """The `Operator` of a Linear/ConvNd layer. Raises ValueError for what the rule's backward cannot express."""
    if isinstance(layer, nn.Linear):
        return Operator(0)
    if getattr(layer, "padding_mode", "zeros") != "zeros":
        raise ValueError(f"{type(layer).__name__} with padding_mode={layer.padding_mode!r}: learning rules "
                         "support zero padding only")
    pad = layer.padding
    if isinstance(pad, str):  # 'valid' → 0; 'same' → the symmetric padding it means (odd effective kernel)
        span = [d * (k - 1) for d, k in zip(layer.dilation, layer.kernel_size)]
        if pad == "same" and (any(s % 2 for s in span) or any(s != 1 for s in layer.stride)):
            raise ValueError(f"{type(layer).__name__}(padding='same') with kernel {layer.kernel_size}: only "
                             "odd kernels with stride 1 are supported by learning rules; give integer padding")
        pad = tuple(0 for _ in span) if pad == "valid" else tuple(s // 2 for s in span)
    dims = len(layer.kernel_size)
    return Operator(dims, tuple(layer.stride), tuple(pad), tuple(layer.dilation), layer.groups)


class Feedback(torch.autograd.Function):
    """y = op(x, W) + b; backward: ∂x = opᵀ(δ, B), ∂W and ∂b as backprop's. B is an input without grad."""

    generate_vmap_rule = True  # forward/backward are plain torch ops: torch.func.vmap works (ensembles)

    @staticmethod
    def forward(x, weight, bias, feedback, op: Operator):
        return op.forward(x, weight, bias)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, bias, feedback, op = inputs
        ctx.save_for_backward(x, weight, feedback)
        ctx.op, ctx.has_bias = op, bias is not None

    @staticmethod
    def backward(ctx, g):
        x, w, B = ctx.saved_tensors
        op = ctx.op
        gx = op.input_grad(g, x, B) if ctx.needs_input_grad[0] else None
        gw = op.weight_grad(g, x, w) if ctx.needs_input_grad[1] else None
        gb = op.bias_grad(g) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb, None, None


def _ruled_forward(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The instance forward of a ruled layer (bound with functools.partial: picklable, deep-copyable)."""
    if not torch.is_grad_enabled():  # evaluation: the plain operator, the same numbers
        return type(layer).forward(layer, x)
    B = getattr(layer, RULE_ATTR).feedback(layer)
    return Feedback.apply(x, layer.weight, layer.bias, B.to(layer.weight.dtype), op_of(layer))


# ---- the rules -----------------------------------------------------------------------------------------------
@register_rule("backprop")
def backprop() -> None:
    """Backpropagation: the error goes down through Wᵀ (the model is left exactly as built)."""
    return None


@dataclass(frozen=True)
class FeedbackAlignment:
    name: str = "feedback_alignment"

    def setup(self, layer: nn.Module, generator: torch.Generator) -> None:
        w = layer.weight.detach()
        g = torch.randn(w.shape, generator=generator, dtype=torch.float64)  # on the CPU: the same B anywhere
        B = g * (w.double().norm() / g.norm())  # W's shape and Frobenius norm (0 if W is 0)
        layer.register_buffer(FEEDBACK_BUFFER, B.to(device=w.device, dtype=w.dtype), persistent=False)

    def feedback(self, layer: nn.Module) -> torch.Tensor:
        return getattr(layer, FEEDBACK_BUFFER)


@register_rule("feedback_alignment")
def feedback_alignment() -> LayerRule:
    """Feedback alignment (Lillicrap et al. 2016): a fixed random B (W's shape and initial Frobenius norm,
    Gaussian, drawn once from the rule generator) replaces W in the backward pass."""
    return FeedbackAlignment()


@dataclass(frozen=True)
class SignSymmetry:
    scale: str = "rms"
    name: str = "sign_symmetry"

    def setup(self, layer: nn.Module, generator: torch.Generator) -> None:
        return None

    def feedback(self, layer: nn.Module) -> torch.Tensor:
        w = layer.weight.detach()
        s = torch.sign(w)
        return s if self.scale == "none" else s * (w.norm() / math.sqrt(w.numel()))


@register_rule("sign_symmetry")
def sign_symmetry(*, scale: Literal["rms", "none"] = "rms") -> LayerRule:
    """Sign symmetry (Liao, Leibo & Poggio 2016): B = sign(W) of the current weights, times the rms of W
    (‖B‖_F = ‖W‖_F) for scale="rms", or unscaled for scale="none"."""
    return SignSymmetry(scale)


# ---- applying and removing ----------------------------------------------------------------------------------
def rule_generator(seed: int) -> torch.Generator:
    """The CPU generator a run's rule draws from: SeedSequence([seed, RULE_STREAM]), apart from the loop's."""
    state = np.random.SeedSequence([seed, RULE_STREAM]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def rule_layers(model: nn.Module) -> list[nn.Module]:
    """The Linear/Conv layers a rule acts on, in `model.modules()` order (the indices of `alignment_angles`)."""
    return [m for m in model.modules() if isinstance(m, LAYER_TYPES)]


def rule_of(model: nn.Module) -> str:
    """The name of the rule applied to `model` ("backprop" when none is)."""
    for m in rule_layers(model):
        if hasattr(m, RULE_ATTR):
            return getattr(m, RULE_ATTR).name
    return "backprop"


def apply_rule(model: nn.Module, name: str, generator: torch.Generator, **options: Any) -> nn.Module:
    """Route every Linear/Conv layer of `model` through rule `name` (in place; returns `model`).

    Args:
      model: a built, initialized model (rules that copy W's scale read it now).
      name: a registered rule (`list_rules()`); options: its keyword options, checked against its signature.
      generator: what random rules draw from, layer by layer in `rule_layers` order (`rule_generator(seed)`).
    """
    from genlab.registry import call_entry

    if rule_of(model) != "backprop":
        raise ValueError(f"the model already has learning rule {rule_of(model)!r}; strip_rule(model) first")
    rule = call_entry(_RULES, {"name": name, **options})
    if rule is None:
        return model
    layers = rule_layers(model)
    if not layers:
        raise ValueError(f"learning rule {name!r}: the model has no nn.Linear or nn.Conv layer to act on")
    for layer in layers:
        op_of(layer)  # refuse unsupported layers before changing any
    for layer in layers:
        rule.setup(layer, generator)
        setattr(layer, RULE_ATTR, rule)
        layer.forward = functools.partial(_ruled_forward, layer)
    return model


def strip_rule(model: nn.Module) -> nn.Module:
    """Remove any learning rule from `model` (in place; returns it): plain backprop, same state_dict."""
    for layer in rule_layers(model):
        if hasattr(layer, RULE_ATTR):
            delattr(layer, RULE_ATTR)
            layer.__dict__.pop("forward", None)
            layer._buffers.pop(FEEDBACK_BUFFER, None)
            layer._non_persistent_buffers_set.discard(FEEDBACK_BUFFER)
    return model


# ---- alignment with the true gradient -------------------------------------------------------------------------
def _weight_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Callable) -> list[torch.Tensor | None]:
    layers = rule_layers(model)
    ws = [m.weight for m in layers]
    grads = torch.autograd.grad(loss(model(x), y), ws, allow_unused=True)
    return [None if g is None else g.detach() for g in grads]


def angle_deg(a: torch.Tensor, b: torch.Tensor) -> float:
    """The angle between two tensors as vectors, in degrees (NaN if either is 0), in float64.

    2·atan2(‖â − b̂‖, ‖â + b̂‖) for unit vectors â, b̂: exact near 0° and 180°, where acos(cos) is not.
    """
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return math.nan
    a, b = a / na, b / nb
    return math.degrees(2 * math.atan2(float((a - b).norm()), float((a + b).norm())))


def alignment_angles(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], loss: Callable) -> dict[int, float]:
    """Per Linear/Conv layer, the angle (degrees) between the rule's weight update and the true gradient.

    Both are ∂loss/∂W on `batch` = (x, y) at the current weights and in the model's current mode (train:
    BatchNorm uses batch statistics, as in a training step); the rule's comes from the model as it is, the
    true one from a copy with the rule stripped. Pure: the model (weights, BatchNorm statistics) is untouched.
    0° for backprop; the last layer is 0° under every rule (its δ is the loss's own). NaN where a gradient
    is 0 (e.g. every unit dead). Keys are indices into `rule_layers(model)`.
    """
    x, y = batch
    ruled = copy.deepcopy(model)
    true = strip_rule(copy.deepcopy(model))
    g_rule, g_true = _weight_grads(ruled, x, y, loss), _weight_grads(true, x, y, loss)
    return {i: (math.nan if a is None or b is None else angle_deg(a, b))
            for i, (a, b) in enumerate(zip(g_rule, g_true))}
