"""Optimizers as registered (init, update) pairs, optax style: one implementation for a solo run and for K
stacked ensemble members.

An optimizer is a class registered by name (`@register_optimizer("sgd")`) holding two pure functions:

    state = opt.init(params, hp)                          an `OptState`: t = 0, no buffers yet
    state = opt.update(params, grads, state, lr, hp)      one step; params (and buffers) move in place

    params, grads: one tensor per parameter (model.parameters() order): a solo model's (*shape), or K members'
                   stacked (K, *shape); a None gradient leaves its parameter and buffers alone
    hp:            `Hyper`, the hyperparameters as tensors: 0-d for a solo run, (K,) for stacked members (each
                   its own momentum, weight decay, betas, eps), broadcast against a parameter by `bcast`
    lr:            this step's learning rate, 0-d or (K,)

so a stacked member's step is the same arithmetic as its solo step (tests/test_optimizers.py). Buffers are made
at the first step, as torch.optim makes them. Every entry's state has the form resume snapshots keep
(train/resume.py: {name, t, bufs, sq}); an entry's `plain(state, momentum)` says which parts a snapshot holds.
Adding an optimizer is one class here (or in a plugin): the spec's `optim.name` is checked against this registry,
and both trainers and resume take it from here. The hyperparameters are `OptimSpec`'s fields.

`Optim` binds an entry to its parameters' hyperparameters and holds the state: what the solo stepper
(train/loop.py) and the stacked one (train/stacked.py) keep. `TorchOptim` is the same behind torch.optim's
interface, for code that wants one (executors/calibrate.py); the training path does not use torch.optim.
Schedules live in train/schedules.py (`schedule_fn`, `lr_fn` are re-exported here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

import torch

from genlab.registry import Registry
from genlab.train.schedules import lr_fn, schedule_fn  # noqa: F401  (the learning rate's other half)

if TYPE_CHECKING:
    from genlab.spec import OptimSpec

Tensors = list[torch.Tensor]
MaybeTensors = list["torch.Tensor | None"]


class OptState(NamedTuple):
    """An optimizer's state: t = steps taken (0 where the optimizer keeps no count); per parameter its
    momentum buffer / Adam's first moment (`bufs`) and Adam's second moment (`sq`), None until made."""

    t: int
    bufs: MaybeTensors
    sq: MaybeTensors


class Hyper(NamedTuple):
    """OptimSpec's hyperparameters as tensors, 0-d (one run) or (K,) (K members), in the parameters' dtype;
    the flags skip arithmetic no member needs (the numbers are the same without it)."""

    weight_decay: torch.Tensor  # L2 coefficient λ: λ·w is added to the gradient (as torch.optim does)
    momentum: torch.Tensor  # μ (sgd, manhattan)
    nesterov: torch.Tensor  # 1.0 / 0.0 (sgd)
    b1: torch.Tensor  # Adam's β₁, β₂, ε
    b2: torch.Tensor
    eps: torch.Tensor
    any_wd: bool
    any_momentum: bool
    any_nesterov: bool


def hyper(specs: "OptimSpec | list[OptimSpec]", like: torch.Tensor) -> Hyper:
    """The hyperparameters of one spec (0-d tensors) or of a list of K specs ((K,) tensors), on `like`'s device
    and dtype."""
    rows = specs if isinstance(specs, list) else [specs]
    shape = (len(rows),) if isinstance(specs, list) else ()

    def col(f) -> torch.Tensor:
        return torch.tensor([float(f(s)) for s in rows], dtype=like.dtype, device=like.device).view(shape)

    return _flagged(col(lambda s: s.weight_decay), col(lambda s: s.momentum), col(lambda s: s.nesterov),
                    col(lambda s: s.betas[0]), col(lambda s: s.betas[1]), col(lambda s: s.eps))


def _flagged(wd, momentum, nesterov, b1, b2, eps) -> Hyper:
    return Hyper(wd, momentum, nesterov, b1, b2, eps, bool((wd != 0).any()), bool((momentum != 0).any()),
                 bool((nesterov != 0).any()))


def keep_members(hp: Hyper, idx: torch.Tensor) -> Hyper:
    """The (K,) hyperparameters of the members at `idx` only."""
    return _flagged(*(getattr(hp, f)[idx] for f in ("weight_decay", "momentum", "nesterov", "b1", "b2", "eps")))


def bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A 0-d hyperparameter as is; a (K,) one as (K, 1, ..., 1), to broadcast against a (K, *shape) parameter."""
    return v if v.dim() == 0 else v.view(-1, *([1] * (like.dim() - 1)))


class Optimizer(Protocol):
    """What a registered optimizer provides (static methods of its class)."""

    def init(self, params: Tensors, hp: Hyper) -> OptState: ...

    def update(self, params: Tensors, grads: MaybeTensors, state: OptState, lr: torch.Tensor, hp: Hyper
               ) -> OptState: ...

    def plain(self, state: OptState, momentum: float) -> OptState: ...


OPTIMIZERS: Registry = Registry("optimizer")
register_optimizer = OPTIMIZERS.register
get_optimizer = OPTIMIZERS.get


def empty(params: Tensors, hp: Hyper) -> OptState:
    """The state before the first step: no count, no buffers (they are made at the first step)."""
    return OptState(0, [None] * len(params), [None] * len(params))


def _l2(g: torch.Tensor, p: torch.Tensor, hp: Hyper) -> torch.Tensor:
    """g + λ·w (L2 weight decay added to the gradient, as torch.optim does); g itself where no member has λ."""
    return g + bcast(hp.weight_decay, p) * p if hp.any_wd else g


def _heavy_ball(bufs: MaybeTensors, i: int, d: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """buf ← μ·buf + d, the first buffer being d itself (torch.optim.SGD's); returns the buffer."""
    if bufs[i] is None:
        bufs[i] = d.clone()
    else:
        bufs[i].mul_(mu).add_(d)
    return bufs[i]


def _no_count(state: OptState, momentum: float) -> OptState:
    """A momentum optimizer's snapshot: its buffers (none where momentum is 0: unused), no count, no moments."""
    n = len(state.bufs)
    return OptState(0, state.bufs if momentum != 0 else [None] * n, [None] * n)


@register_optimizer("sgd")
class SGD:
    """Stochastic gradient descent with heavy-ball or Nesterov momentum and L2 weight decay, as torch.optim.SGD
    (dampening 0):

        d ← g + λ·w;   buf ← μ·buf + d (buf = d at the first step);   w ← w − lr·(d + μ·buf if nesterov else buf)

    With μ = 0 there is no buffer: w ← w − lr·d. Hyperparameters: optim.lr, momentum, nesterov, weight_decay.
    """

    init = staticmethod(empty)
    plain = staticmethod(_no_count)

    @staticmethod
    def update(params: Tensors, grads: MaybeTensors, state: OptState, lr: torch.Tensor, hp: Hyper) -> OptState:
        bufs, neg_lr = list(state.bufs), -lr
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            d = _l2(g, p, hp)
            if not hp.any_momentum:
                p.addcmul_(bcast(neg_lr, p), d)  # w − lr·d in one kernel (the same rounding: −x is exact)
                continue
            buf = _heavy_ball(bufs, i, d, bcast(hp.momentum, p))  # μ = 0 for a member: buf = d, the same numbers
            if hp.any_nesterov:
                buf = torch.where(bcast(hp.nesterov, p) > 0, d + bcast(hp.momentum, p) * buf, buf)
            p.sub_(bcast(lr, p) * buf)
        return OptState(state.t, bufs, state.sq)


@register_optimizer("adam")
class Adam:
    """Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization"), L2 weight decay added to the
    gradient as torch.optim.Adam does (not AdamW's decoupled decay):

        d ← g + λ·w;   m ← β₁·m + (1−β₁)·d;   v ← β₂·v + (1−β₂)·d²;   t ← t + 1
        w ← w − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε)

    m and v start at 0. Hyperparameters: optim.lr, betas = (β₁, β₂), eps, weight_decay.
    """

    init = staticmethod(empty)

    @staticmethod
    def update(params: Tensors, grads: MaybeTensors, state: OptState, lr: torch.Tensor, hp: Hyper) -> OptState:
        t = state.t + 1
        bc1, bc2 = 1 - hp.b1 ** t, 1 - hp.b2 ** t  # bias corrections, 0-d or (K,)
        bufs, sq = list(state.bufs), list(state.sq)
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            d = _l2(g, p, hp)
            if bufs[i] is None:
                bufs[i], sq[i] = torch.zeros_like(p), torch.zeros_like(p)
            m, v, b2 = bufs[i], sq[i], bcast(hp.b2, p)
            m.lerp_(d, 1 - bcast(hp.b1, p))
            v.mul_(b2).addcmul_(d, d * (1 - b2))
            denom = (v.sqrt() / bcast(bc2.sqrt(), p)).add_(bcast(hp.eps, p))
            p.sub_(bcast(lr / bc1, p) * m / denom)
        return OptState(t, bufs, sq)

    @staticmethod
    def plain(state: OptState, momentum: float) -> OptState:
        return state  # the step count (bias correction) and both moments


@register_optimizer("manhattan")
class Manhattan:
    """Batch Manhattan (Liao, Leibo & Poggio 2016, "How important is weight symmetry in backpropagation?"):
    each weight moves by lr in the direction of the *sign* of its batch gradient, so only the gradient's
    signs matter (what sign-symmetric and random feedback get right more easily than magnitudes).

        v ← μ·v + sign(g) + λ·w        (μ = momentum, λ = weight_decay: L2 shrinkage outside the sign)
        w ← w − lr·v

    With μ = λ = 0 every weight moves by exactly ±lr (0 where g = 0) per step.
    """

    init = staticmethod(empty)
    plain = staticmethod(_no_count)

    @staticmethod
    def update(params: Tensors, grads: MaybeTensors, state: OptState, lr: torch.Tensor, hp: Hyper) -> OptState:
        bufs = list(state.bufs)
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            s = _l2(torch.sign(g), p, hp)
            if hp.any_momentum:
                s = _heavy_ball(bufs, i, s, bcast(hp.momentum, p))
            p.sub_(bcast(lr, p) * s)
        return OptState(state.t, bufs, state.sq)


class Optim:
    """A registered optimizer bound to hyperparameters, holding its state: what a trainer keeps.

    `Optim(spec, params)`: one solo run (0-d hyperparameters). `Optim([spec_1, …, spec_K], params)`: K members
    whose parameters are stacked (K, *shape), each with its own hyperparameters (all share `optim.name`).
    `step(params, grads, lr)` takes one step (lr: 0-d, (K,) or a float); `member_state(k)` is member k's state
    in the canonical form a snapshot holds (k = None: the solo run's), `load_member_state` puts one back;
    `keep(idx)` keeps only the members at `idx` (when the others have stopped).
    """

    def __init__(self, specs: "OptimSpec | list[OptimSpec]", params: Tensors):
        names = {s.name for s in (specs if isinstance(specs, list) else [specs])}
        if len(names) != 1:
            raise ValueError(f"an ensemble's members must share optim.name, got {sorted(names)}")
        self.name = names.pop()
        self.opt: Optimizer = get_optimizer(self.name)
        self.hp = hyper(specs, params[0])
        self.state = self.opt.init(params, self.hp)

    @torch.no_grad()
    def step(self, params: Tensors, grads: MaybeTensors, lr: torch.Tensor | float) -> None:
        if not isinstance(lr, torch.Tensor):
            lr = torch.tensor(lr, dtype=params[0].dtype, device=params[0].device)
        self.state = self.opt.update(params, grads, self.state, lr, self.hp)

    def member_state(self, k: int | None = None) -> dict:
        """Member k's slice of the state (the solo state for k = None), canonical (train/resume.py)."""
        from genlab.train.resume import plain_optim

        take = (lambda ts: list(ts)) if k is None else (lambda ts: [None if t is None else t[k] for t in ts])
        momentum = float(self.hp.momentum if k is None else self.hp.momentum[k])
        return plain_optim(self.name, self.opt.plain(OptState(self.state.t, take(self.state.bufs),
                                                               take(self.state.sq)), momentum))

    def load_member_state(self, k: int | None, state: dict, params: Tensors) -> None:
        """Put member k's state back (canonical form; all members of a group resume at the same step count)."""
        bufs, sq = list(self.state.bufs), list(self.state.sq)
        for store, saved in ((bufs, state["bufs"]), (sq, state["sq"])):
            for i, t in enumerate(saved):
                if t is None:
                    continue
                t = t.to(params[i].device)
                if k is None:
                    store[i] = t.clone()
                else:
                    if store[i] is None:
                        store[i] = torch.zeros_like(params[i])
                    store[i][k] = t
        self.state = OptState(int(state["t"]), bufs, sq)

    def keep(self, idx: torch.Tensor) -> None:
        self.hp = keep_members(self.hp, idx)
        take = lambda ts: [None if t is None else t[idx] for t in ts]  # noqa: E731
        self.state = OptState(self.state.t, take(self.state.bufs), take(self.state.sq))


class TorchOptim(torch.optim.Optimizer):
    """A registered optimizer behind torch.optim's interface (param groups, zero_grad, step) for code that
    holds a torch optimizer; each param group's "lr" is read at every step, as torch.optim does."""

    def __init__(self, params, spec: "OptimSpec"):
        super().__init__(params, {"lr": spec.lr})
        self.spec = spec
        self.impl = [Optim(spec, g["params"]) for g in self.param_groups]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else torch.enable_grad()(closure)()
        for g, impl in zip(self.param_groups, self.impl):
            impl.step(g["params"], [p.grad for p in g["params"]], g["lr"])
        return loss


def build_optimizer(params, spec: "OptimSpec") -> torch.optim.Optimizer:
    """The run's optimizer as a torch optimizer (`TorchOptim`): for code outside the trainers."""
    return TorchOptim(params, spec)
