"""Optimizers and learning-rate schedules from their specs.

A schedule is a pure function t ↦ factor, t in epochs (fractional inside an epoch); lr(t) = optim.lr × factor(t).
"""

from __future__ import annotations

import bisect
import math
from typing import Callable, Iterable

import torch

from genlab.spec import OptimSpec, ScheduleSpec


def build_optimizer(params: Iterable[torch.nn.Parameter], spec: OptimSpec) -> torch.optim.Optimizer:
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


def lr_fn(optim: OptimSpec, schedule: ScheduleSpec, epochs: int) -> Callable[[float], float]:
    """lr(t) = optim.lr × factor(t): the learning rate of the step taken at time t (epochs, fractional)."""
    factor = schedule_fn(schedule, epochs)
    return lambda t: optim.lr * factor(t)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr
