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


def lr_fn(optim: OptimSpec, schedule: ScheduleSpec, epochs: int) -> Callable[[float], float]:
    """lr(t) = optim.lr × factor(t): the learning rate of the step taken at time t (epochs, fractional)."""
    factor = schedule_fn(schedule, epochs)
    return lambda t: optim.lr * factor(t)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


class Stacked:
    """torch.optim.SGD / torch.optim.Adam / `Manhattan`, the same arithmetic, on stacked (K, ...) parameters whose members
    each have their own hyperparameters (lr, momentum, nesterov, weight decay, betas, eps).

    `step(params, grads, lr)` updates the params in place; lr is (K,) for this step. `keep(idx)` keeps the
    state of the members at `idx` (when the others have stopped). All members must share `optim.name`.
    """

    def __init__(self, specs: list[OptimSpec], params: list[torch.Tensor]):
        names = {s.name for s in specs}
        if len(names) != 1:
            raise ValueError(f"an ensemble's members must share optim.name, got {sorted(names)}")
        self.name = names.pop()
        dev = params[0].device
        col = lambda f: torch.tensor([float(f(s)) for s in specs], dtype=params[0].dtype, device=dev)  # noqa: E731
        self.wd, self.momentum = col(lambda s: s.weight_decay), col(lambda s: s.momentum)
        self.nesterov = col(lambda s: s.nesterov)
        self.b1, self.b2, self.eps = col(lambda s: s.betas[0]), col(lambda s: s.betas[1]), col(lambda s: s.eps)
        self.bufs: list[torch.Tensor | None] = [None] * len(params)  # sgd momentum; adam: first moments
        self.sq: list[torch.Tensor | None] = [None] * len(params)  # adam: second moments
        self.t = 0
        self._flags()

    def _flags(self) -> None:  # skip arithmetic no member needs (the numbers are the same)
        self.any_wd, self.any_momentum = bool((self.wd != 0).any()), bool((self.momentum != 0).any())
        self.any_nesterov = bool((self.nesterov != 0).any())

    @staticmethod
    def _b(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return v.view(-1, *([1] * (like.dim() - 1)))  # (K,) → (K, 1, ..., 1)

    @torch.no_grad()
    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor], lr: torch.Tensor) -> None:
        self.t += 1
        for i, (p, g) in enumerate(zip(params, grads)):
            b = lambda v: self._b(v, p)  # noqa: E731
            if self.name == "manhattan":  # as `Manhattan`: v ← μ·v + sign(g) + λ·w; w ← w − lr·v
                s = torch.sign(g) + b(self.wd) * p if self.any_wd else torch.sign(g)
                if self.any_momentum:
                    if self.bufs[i] is None:
                        self.bufs[i] = s.clone()
                    else:
                        self.bufs[i].mul_(b(self.momentum)).add_(s)
                    s = self.bufs[i]
                p.sub_(b(lr) * s)
                continue
            d = g + b(self.wd) * p if self.any_wd else g  # L2: λ·w added to the gradient, as torch.optim does
            if self.name == "sgd" and not self.any_momentum:
                p.addcmul_(b(-lr), d)  # p − lr·d, one kernel (the same rounding: −x is exact)
            elif self.name == "sgd":
                if self.bufs[i] is None:
                    self.bufs[i] = d.clone()  # torch.optim.SGD: the first buffer is the gradient itself
                else:
                    self.bufs[i].mul_(b(self.momentum)).add_(d)
                buf = self.bufs[i]
                # momentum 0: buf = d each step (torch skips the buffer; same numbers)
                upd = torch.where(b(self.nesterov) > 0, d + b(self.momentum) * buf, buf) if self.any_nesterov else buf
                p.sub_(b(lr) * upd)
            else:  # adam
                if self.bufs[i] is None:
                    self.bufs[i], self.sq[i] = torch.zeros_like(p), torch.zeros_like(p)
                m, v = self.bufs[i], self.sq[i]
                m.lerp_(d, 1 - b(self.b1))
                v.mul_(b(self.b2)).addcmul_(d, d * (1 - b(self.b2)))
                bc1, bc2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
                denom = (v.sqrt() / b(bc2.sqrt())).add_(b(self.eps))
                p.sub_(b(lr / bc1) * m / denom)

    def member_state(self, k: int) -> dict:
        """Member k's slice of the state, in the canonical form a solo run's snapshot has (train/resume.py)."""
        from genlab.train.resume import plain_optim

        take = lambda ts: [None if t is None else t[k] for t in ts]  # noqa: E731
        return plain_optim(self.name, self.t, take(self.bufs), take(self.sq), float(self.momentum[k]))

    def load_member_state(self, k: int, state: dict, params: list[torch.Tensor]) -> None:
        """Put member k's slice back (canonical form; all members of a group resume at the same step count)."""
        self.t = state["t"]
        for store, saved in ((self.bufs, state["bufs"]), (self.sq, state["sq"])):
            for i, t in enumerate(saved):
                if t is not None:
                    if store[i] is None:
                        store[i] = torch.zeros_like(params[i])
                    store[i][k] = t.to(params[i].device)

    def keep(self, idx: torch.Tensor) -> None:
        for name in ("wd", "momentum", "nesterov", "b1", "b2", "eps"):
            setattr(self, name, getattr(self, name)[idx])
        self.bufs = [None if t is None else t[idx] for t in self.bufs]
        self.sq = [None if t is None else t[idx] for t in self.sq]
        self._flags()
