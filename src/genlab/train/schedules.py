"""Learning-rate schedules, registered by name: lr(t) = optim.lr × factor(t), t in epochs (fractional inside an
epoch: the step s of S in epoch e is taken at t = e − 1 + s/S).

An entry is `(spec: ScheduleSpec, epochs: int) -> factor`, a pure function t ↦ factor for t ∈ [0, epochs);
its parameters are ScheduleSpec's fields. `schedule_fn(spec, epochs)` looks the entry up; `lr_fn` scales it.
"""

from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING, Callable

from genlab.registry import Registry

if TYPE_CHECKING:
    from genlab.spec import OptimSpec, ScheduleSpec

Factor = Callable[[float], float]  # t (epochs) ↦ the factor multiplying optim.lr

SCHEDULES: Registry = Registry("schedule")
register_schedule = SCHEDULES.register


@register_schedule("constant")
def constant(spec: "ScheduleSpec", epochs: int) -> Factor:
    """factor(t) = 1: the learning rate is optim.lr throughout."""
    return lambda t: 1.0


@register_schedule("piecewise")
def piecewise(spec: "ScheduleSpec", epochs: int) -> Factor:
    """factor(t) = factors[j], j = the number of milestones ≤ t (as torch's MultiStepLR with per-interval
    factors): `factors[0]` before `milestones[0]`, `factors[-1]` from the last milestone on."""
    ms, fs = list(spec.milestones), list(spec.factors)
    return lambda t: fs[bisect.bisect_right(ms, t)]


@register_schedule("cosine")
def cosine(spec: "ScheduleSpec", epochs: int) -> Factor:
    """Linear warmup from 0 over `warmup_epochs` (w), then a half cosine from 1 down to `min_factor` (lo) at
    the last epoch (Loshchilov & Hutter 2017, "SGDR", without restarts):

        factor(t) = t / w                                          for t < w
                  = lo + (1 − lo) · ½ (1 + cos(π · min((t − w) / (epochs − w), 1)))   after
    """
    warm, lo = spec.warmup_epochs, spec.min_factor

    def factor(t: float) -> float:
        if t < warm:
            return (t + 1e-12) / warm
        span = max(epochs - warm, 1e-12)
        return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min((t - warm) / span, 1.0)))

    return factor


def schedule_fn(spec: "ScheduleSpec", epochs: int) -> Factor:
    """factor(t) for t ∈ [0, epochs), from the registered schedule `spec.name`."""
    return SCHEDULES.get(spec.name)(spec, epochs)


def lr_fn(optim: "OptimSpec", schedule: "ScheduleSpec", epochs: int) -> Callable[[float], float]:
    """lr(t) = optim.lr × factor(t): the learning rate of the step taken at time t (epochs, fractional)."""
    factor = schedule_fn(schedule, epochs)
    return lambda t: optim.lr * factor(t)
