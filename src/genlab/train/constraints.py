"""Training with normalized weights (000 ch. 5): projection to unit-norm layers, and a Lagrange-multiplier loss.

000 ch. 5 trains networks whose layers V_k are kept at unit Frobenius norm, with the scale of the function
held by one scalar ρ ("the product of norms of each layer" in plain training):

* `project`: after every epoch each Linear/Conv weight is divided by its Frobenius norm, V_k ← V_k / ‖V_k‖_F.
  With `rho = true` the network is trained as f(x) = ρ · f_V(x) (`RhoScaled`, ρ a trainable scalar starting
  at 1) and the divided-out norms are absorbed, ρ ← ρ · ∏_k ‖V_k‖_F. For a bias-free ReLU net f_V is
  positively homogeneous of degree 1 in each V_k, so the function is unchanged exactly. Biases (plain,
  non-residual nets) are divided by the product of the norms of their own and all earlier layers, which keeps
  that identity. With `rho = false` the norms are thrown away: the predicted labels stay, the loss changes.
* `lagrange`: the loss is L = mean_i L_i + Σ_k λ_k² (‖V_k‖_F − 1)² (the thesis writes Σ_i L_i; genlab's
  losses are batch means, so λ² is in loss units per sample). After each step λ_k takes a gradient-ascent
  step on L, λ_k ← λ_k + η_λ · 2 λ_k (‖V_k‖ − 1)², which grows λ_k while its layer's norm is off 1 (a λ_k
  that starts at 0 stays 0), or is held at `lam_init` (`fixed_lambda`). With `rho = true` the scale of the
  function is the trainable ρ, so the constraint does not cap the logits.

The kinds are registered entries (`CONSTRAINTS`, `@register_constraint`): "none", "project", "lagrange", each
saying what it adds to the loss, after a step and at an epoch's end; `Hook` carries the state (λ) and calls it.

Checkpoints and measures see the plain architecture: `plain(model)` folds ρ into the output layer
(W_L ← ρ W_L, b_L ← ρ b_L, exact for any net whose output is linear in its last layer), so `final.pt` loads
into the registered model and log ∏‖W_k‖ of the plain net is log ρ + Σ_k log ‖V_k‖.

Layers are the Linear/Conv modules in registration order, which is the execution order of the plain nets
(mlp, convnet3, conv4); BatchNorm nets are scale-invariant per layer in training mode, but their running
statistics are not rescaled by a projection.

References:
  000 ch. 5 (§5.1), the Lagrange loss L = Σ_i L_i + Σ_k λ_k² (‖V_k‖ − 1)².
  Poggio, Liao, Miranda, Banburski, Rosasco, Hidary, "Theory IIIb: Dynamics and Generalization in Deep
  Networks", CBMM Memo 090, 2019 (https://arxiv.org/abs/1903.04991): f = ρ f_V with unit-norm V_k.
  Salimans & Kingma, "Weight Normalization", 2016 (https://arxiv.org/abs/1602.07868).
"""

from __future__ import annotations

import copy
import math
from typing import Any, NamedTuple

import torch
from torch import nn

from genlab.models.init import LAYERS
from genlab.registry import Registry
from genlab.spec import ConstraintSpec

ZERO_NORM_MSG = ("a layer has all-zero weights, so it cannot be projected to unit norm; "
                 "initialize with a nonzero std (init.std > 0)")


class RhoScaled(nn.Module):
    """f(x) = ρ · f_V(x): the network `net` (whose layers are the V_k) times a trainable scale ρ > 0.

    ρ is stored as log ρ (a product of norms spans decades) but trained as ρ: the SGD step on ρ is
    ∝ f_V, bounded for unit-norm layers. (A step on log ρ is ∝ f = ρ f_V and blew up at large ρ in our
    ch. 5 runs; the price of the step on ρ is that ρ grows slowly in the Lagrange runs.)
    """

    def __init__(self, net: nn.Module, rho: float = 1.0):
        super().__init__()
        if rho <= 0:
            raise ValueError(f"RhoScaled: ρ must be positive (it is a product of norms), got {rho}")
        self.net = net
        self.rho = nn.Parameter(torch.tensor(float(rho)))

    @property
    def log_rho(self) -> float:
        return math.log(self.rho.item()) if self.rho.item() > 0 else float("-inf")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rho * self.net(x)


def inner(model: nn.Module) -> nn.Module:
    """The network of the V_k: `model.net` for a `RhoScaled`, else the model itself."""
    return model.net if isinstance(model, RhoScaled) else model


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The Linear/Conv modules of the network of V_k, in registration order (= execution order, plain nets)."""
    layers = [m for m in inner(model).modules() if isinstance(m, LAYERS)]
    if not layers:
        raise ValueError(f"weight normalization needs Linear/Conv layers; {type(model).__name__} has none")
    return layers


def layer_norms(model: nn.Module) -> torch.Tensor:
    """(L,) ‖V_k‖_F of each layer's weight, differentiable (kernel entries for a conv)."""
    return torch.stack([torch.linalg.vector_norm(m.weight) for m in weight_layers(model)])


@torch.no_grad()
def project(model: nn.Module, absorb: bool = True) -> float:
    """V_k ← V_k / ‖V_k‖_F for every layer (biases ÷ ∏_{j≤k} ‖V_j‖); returns Σ_k log ‖V_k‖ (natural log).

    With `absorb` and a `RhoScaled` model, ρ ← ρ · ∏_k ‖V_k‖, so f = ρ f_V is unchanged for bias-free (or
    plain, non-residual) ReLU nets. Otherwise the divided-out scale is discarded.
    """
    log_total = 0.0
    for m in weight_layers(model):
        norm = float(torch.linalg.vector_norm(m.weight))
        if norm == 0 or not math.isfinite(norm):
            raise ValueError(f"project: {ZERO_NORM_MSG} (got norm {norm})")
        log_total += math.log(norm)
        m.weight.div_(norm)
        if m.bias is not None:
            m.bias.div_(math.exp(log_total))
    if absorb and isinstance(model, RhoScaled):
        model.rho.mul_(math.exp(log_total))
    return log_total


def penalty(norms: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """Σ_k λ_k² (‖V_k‖ − 1)², a scalar in loss units; gradients flow into the norms, not into λ.

    Args:
      norms: (L,) layer norms ‖V_k‖_F (`layer_norms`, differentiable).
      lam: (L,) multipliers λ_k.
    """
    return (lam.detach() ** 2 * (norms - 1) ** 2).sum()


def lambda_ascent(lam: torch.Tensor, norms: torch.Tensor, lr: float) -> torch.Tensor:
    """One gradient-ascent step on L in λ: λ_k + lr · ∂L/∂λ_k = λ_k + lr · 2 λ_k (‖V_k‖ − 1)². Returns (L,)."""
    return lam + lr * 2 * lam * (norms.detach() - 1) ** 2


@torch.no_grad()
def plain(model: nn.Module) -> nn.Module:
    """The registered architecture computing the same function: ρ folded into the output layer of a copy.

    A model that is not `RhoScaled` is returned as is (no copy).
    """
    if not isinstance(model, RhoScaled):
        return model
    net = copy.deepcopy(model.net)
    last = weight_layers(net)[-1]
    rho = model.rho.item()
    last.weight.mul_(rho)
    if last.bias is not None:
        last.bias.mul_(rho)
    return net


class LagrangeState(NamedTuple):
    """The multipliers: (L,) λ_k, one per layer."""

    lam: torch.Tensor


# ---- the kinds of [constraint], registered: what each adds to a step and to an epoch's end -------------------

CONSTRAINTS: Registry = Registry("constraint")
register_constraint = CONSTRAINTS.register


@register_constraint("none")
class Unconstrained:
    """Plain training: no ρ, no projection, no penalty (the trainer builds no `Hook`)."""

    active = False


@register_constraint("project")
class Project:
    """After every epoch each layer is projected to unit norm, V_k ← V_k / ‖V_k‖_F (`project`), ρ absorbing the
    divided-out norms when `rho = true` (000 ch. 5 §5.1); nothing is added to the loss."""

    active = True

    @staticmethod
    def loss_term(model: nn.Module, lam: torch.Tensor) -> torch.Tensor | float:
        return 0.0

    @staticmethod
    def after_step(model: nn.Module, lam: torch.Tensor, spec: ConstraintSpec) -> torch.Tensor:
        return lam

    @staticmethod
    def end_epoch(model: nn.Module) -> None:
        project(model, absorb=True)

    @staticmethod
    def facts(lam: torch.Tensor) -> dict[str, Any]:
        return {}


@register_constraint("lagrange")
class Lagrange:
    """The loss gets Σ_k λ_k² (‖V_k‖_F − 1)² (`penalty`), and after each optimizer step λ_k takes a
    gradient-ascent step (`lambda_ascent`; held at `lam_init` with `fixed_lambda`). The history gets
    lambda_mean = mean λ_k."""

    active = True

    @staticmethod
    def loss_term(model: nn.Module, lam: torch.Tensor) -> torch.Tensor | float:
        return penalty(layer_norms(model), lam.to(model_device(model)))

    @staticmethod
    def after_step(model: nn.Module, lam: torch.Tensor, spec: ConstraintSpec) -> torch.Tensor:
        if spec.fixed_lambda:
            return lam
        with torch.no_grad():
            norms = layer_norms(model).cpu()
        return lambda_ascent(lam, norms, spec.lam_lr)

    @staticmethod
    def end_epoch(model: nn.Module) -> None:
        pass

    @staticmethod
    def facts(lam: torch.Tensor) -> dict[str, Any]:
        return {"lambda_mean": float(lam.mean())}


class Hook:
    """What the trainer calls when the [constraint] kind is active (not "none"): wrap once, then per step and
    per epoch; each call goes to the registered kind (`CONSTRAINTS`).

    The λ_k are explicit state (`LagrangeState`), replaced by each update, never mutated in place.
    """

    def __init__(self, spec: ConstraintSpec):
        self.kind = CONSTRAINTS.get(spec.name)
        if not self.kind.active:
            raise ValueError(f"constraint.name = {spec.name!r} needs no hook; build one only for an active kind "
                             f"({', '.join(n for n in CONSTRAINTS.names() if CONSTRAINTS.get(n).active)})")
        self.spec = spec
        self.state: LagrangeState | None = None

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model to train: `RhoScaled(model)` if `rho`, else the model; sets λ_k = lam_init."""
        self.state = LagrangeState(torch.full((len(weight_layers(model)),), float(self.spec.lam_init)))
        return RhoScaled(model) if self.spec.rho else model

    def loss_term(self, model: nn.Module) -> torch.Tensor | float:
        """What the kind adds to the batch loss (the Lagrange penalty; 0 for `project`)."""
        return self.kind.loss_term(model, self.state.lam)

    def after_step(self, model: nn.Module) -> None:
        """After an optimizer step (λ ascent for lagrange without fixed_lambda)."""
        self.state = LagrangeState(self.kind.after_step(model, self.state.lam, self.spec))

    def end_epoch(self, model: nn.Module) -> dict[str, Any]:
        """The kind's end of epoch (projection for `project`), then the epoch's facts for the history row.

        Returns: norm_dev = max_k |‖V_k‖ − 1| before any projection; log_rho = log ρ (RhoScaled);
        log_prod_norms = log ρ + Σ_k log ‖V_k‖, the log product of the layer norms of the plain net;
        lambda_mean = mean λ_k (lagrange).
        """
        with torch.no_grad():
            norms = layer_norms(model).double().cpu()
        row = {"norm_dev": float((norms - 1).abs().max())}
        if not torch.isfinite(norms).all():  # the weights overflowed: the loss is not finite either, so the
            return row                       # trainer ends the run as diverged (nothing to project)
        self.kind.end_epoch(model)
        log_rho = 0.0
        if isinstance(model, RhoScaled):
            log_rho = row["log_rho"] = model.log_rho
        with torch.no_grad():
            row["log_prod_norms"] = log_rho + float(layer_norms(model).double().log().sum())
        return {**row, **self.kind.facts(self.state.lam)}


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def hook_for(spec: ConstraintSpec) -> Hook | None:
    """A `Hook` for an active kind (`project`, `lagrange`), None for `none` (plain training)."""
    return Hook(spec) if CONSTRAINTS.get(spec.name).active else None
