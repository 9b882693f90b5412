"""Optimizers and learning-rate schedules from their specs.

A schedule is a pure function t ↦ factor, t in epochs (fractional inside an epoch); lr(t) = optim.lr × factor(t).
"""

from __future__ import annotations

import bisect
import math
from typing import Callable, Iterable

import torch

from genlab.spec import OptimSpec, ScheduleSpec


class Manhattan(torch.optim.Optimizer):
    """Batch Manhattan (Liao, Leibo & Poggio 2016, "How important is weight symmetry in backpropagation?"):
    each weight moves by lr in the direction of the *sign* of its batch gradient, so only the gradient's
    signs matter (what sign-symmetric and random feedback get right more easily than magnitudes).

        v ← μ·v + sign(g) + λ·w        (μ = momentum, λ = weight_decay: L2 shrinkage outside the sign)
        w ← w − lr·v

    With μ = λ = 0 every weight moves by exactly ±lr (0 where g = 0) per step.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            mu, wd = group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                v = torch.sign(p.grad)
                if wd:
                    v = v.add(p, alpha=wd)
                if mu:
                    buf = self.state[p].get("momentum_buffer")
                    v = v if buf is None else buf.mul_(mu).add_(v)
                    self.state[p]["momentum_buffer"] = v
                p.add_(v, alpha=-group["lr"])
        return loss


def build_optimizer(params: Iterable[torch.nn.Parameter], spec: OptimSpec) -> torch.optim.Optimizer:
    if spec.name == "manhattan":
        return Manhattan(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    if spec.name == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov,
                               weight_decay=spec.weight_decay)
    return torch.optim.Adam(params, lr=spec.lr, betas=spec.betas, eps=spec.eps, weight_decay=spec.weight_decay)


def schedule_fn(spec: ScheduleSpec, epochs: int) -> Callable[[float], float]:
    """factor(t) for t ∈ [0, epochs)."""
    if spec.name == "constant":
        return lambda t: 1.0
    if spec.name == "piecewise":
        ms, fs = list(spec.milestones), list(spec.factors)
        return lambda t: fs[bisect.bisect_right(ms, t)]
    warm, lo = spec.warmup_epochs, spec.min_factor

    def cosine(t: float) -> float:
        if t < warm:
            return (t + 1e-12) / warm
        span = max(epochs - warm, 1e-12)
        return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min((t - warm) / span, 1.0)))

    return cosine


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr
