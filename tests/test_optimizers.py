"""The registered optimizers and schedules (train/optim.py, train/schedules.py), walked over their registries:
every optimizer's stacked step (K members, each its own hyperparameters) equals each member's solo step; its
state resumes (out → in → the same continuation); SGD and Adam match torch.optim; every schedule's factor
matches its closed form; a new entry needs no other file."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from genlab.spec import OptimSpec, RunConfig, ScheduleSpec
from genlab.train.optim import OPTIMIZERS, Optim, OptState, _l2, bcast, register_optimizer
from genlab.train.schedules import SCHEDULES, schedule_fn

SHAPES = [(3, 4), (4,), (2, 3, 2)]  # a weight, a bias, a conv-like kernel
STEPS = 6
# three members that differ in every hyperparameter (each optimizer reads the ones it has): momentum and weight
# decay on, Nesterov for one, momentum 0 for one (no buffer is used for it)
MEMBERS = [
    OptimSpec(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8),
    OptimSpec(lr=0.05, momentum=0.5, weight_decay=0.0, betas=(0.8, 0.99), eps=1e-6),
    OptimSpec(lr=0.02, momentum=0.0, weight_decay=1e-3, betas=(0.5, 0.9), eps=1e-3),
]
TORCH = {"sgd": lambda ps, s: torch.optim.SGD(ps, lr=s.lr, momentum=s.momentum, nesterov=s.nesterov,
                                              weight_decay=s.weight_decay),
         "adam": lambda ps, s: torch.optim.Adam(ps, lr=s.lr, betas=s.betas, eps=s.eps, weight_decay=s.weight_decay)}


def specs(name: str) -> list[OptimSpec]:
    return [s.model_copy(update={"name": name}) for s in MEMBERS]


def start(k: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(100 + k)
    return [torch.randn(s, generator=g) for s in SHAPES]


def grads_at(params: list[torch.Tensor], k: int, step: int) -> list[torch.Tensor]:
    """Member k's gradient at a step: depends on the weights (a quadratic's, ∇ ½‖w − c‖² = w − c) plus seeded
    noise, so trajectories that drift apart would show."""
    g = torch.Generator().manual_seed(1000 * k + step)
    return [p - 0.5 + 0.3 * torch.randn(p.shape, generator=g) for p in params]


def lr_at(spec: OptimSpec, step: int) -> float:
    return spec.lr * (1.0 if step < 3 else 0.3)  # a schedule's drop in the middle


def run_solo(spec: OptimSpec, k: int, steps: range, params=None, opt=None):
    params = params if params is not None else start(k)
    opt = opt or Optim(spec, params)
    for s in steps:
        opt.step(params, grads_at(params, k, s), lr_at(spec, s))
    return params, opt


def run_stacked(ss: list[OptimSpec], steps: range, params=None, opt=None):
    K = len(ss)
    params = params if params is not None else [torch.stack(ps) for ps in zip(*(start(k) for k in range(K)))]
    opt = opt or Optim(ss, params)
    for s in steps:
        per = [grads_at([p[k] for p in params], k, s) for k in range(K)]
        lr = torch.tensor([lr_at(sp, s) for sp in ss])
        opt.step(params, [torch.stack(gs) for gs in zip(*per)], lr)
    return params, opt


def test_the_registry_holds_the_three_optimizers_each_a_documented_pair():
    assert {"sgd", "adam", "manhattan"} <= set(OPTIMIZERS.names())
    for name in OPTIMIZERS.names():
        entry = OPTIMIZERS.get(name)
        assert callable(entry.init) and callable(entry.update) and callable(entry.plain) and entry.__doc__


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_stacked_members_equal_their_solo_runs(name):
    ss = specs(name)
    stacked, _ = run_stacked(ss, range(STEPS))
    for k, sp in enumerate(ss):
        solo, _ = run_solo(sp, k, range(STEPS))
        moved = max(float((a - b).abs().max()) for a, b in zip(solo, start(k)))
        assert moved > 10 * sp.lr * 1e-3  # the steps did move the weights
        for a, b in zip(solo, stacked):
            torch.testing.assert_close(b[k], a, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_state_out_and_in_continues_identically(name):
    ss = specs(name)
    for k, sp in enumerate(ss):  # solo: out after 3 steps, into a fresh optimizer, 3 more = 6 straight
        straight, _ = run_solo(sp, k, range(STEPS))
        half, opt = run_solo(sp, k, range(3))
        saved = opt.member_state()
        fresh = Optim(sp, half)
        fresh.load_member_state(None, saved, half)
        resumed, _ = run_solo(sp, k, range(3, STEPS), half, fresh)
        assert all(torch.equal(a, b) for a, b in zip(straight, resumed))
    straight, _ = run_stacked(ss, range(STEPS))  # stacked: every member's slice out and back in
    half, opt = run_stacked(ss, range(3))
    fresh = Optim(ss, half)
    for k in range(len(ss)):
        fresh.load_member_state(k, opt.member_state(k), half)
    resumed, _ = run_stacked(ss, range(3, STEPS), half, fresh)
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed))


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_a_member_state_resumes_solo_and_has_the_canonical_form(name):
    ss = specs(name)
    half, opt = run_stacked(ss, range(3))
    for k, sp in enumerate(ss):
        state = opt.member_state(k)
        assert set(state) == {"name", "t", "bufs", "sq"} and state["name"] == name
        assert len(state["bufs"]) == len(SHAPES) and all(b is None or b.device.type == "cpu" for b in state["bufs"])
        if sp.momentum == 0 and name != "adam":
            assert state["bufs"] == [None] * len(SHAPES)  # an unused buffer is not kept
        mine = [p[k].clone() for p in half]
        solo = Optim(sp, mine)
        solo.load_member_state(None, state, mine)
        ahead, _ = run_solo(sp, k, range(3, STEPS), mine, solo)
        whole, _ = run_solo(sp, k, range(STEPS))
        for a, b in zip(ahead, whole):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(TORCH))
def test_sgd_and_adam_match_torch_optim(name):
    for k, sp in enumerate(specs(name)):
        ours, _ = run_solo(sp, k, range(STEPS))
        ref = [t.clone().requires_grad_() for t in start(k)]
        opt = TORCH[name](ref, sp)
        for s in range(STEPS):
            for p, g in zip(ref, grads_at([r.detach() for r in ref], k, s)):
                p.grad = g
            for group in opt.param_groups:
                group["lr"] = lr_at(sp, s)
            opt.step()
        for a, b in zip(ours, ref):
            torch.testing.assert_close(a, b.detach(), rtol=1e-5, atol=1e-6)


def test_stopped_members_leave_the_others_state_alone():
    ss = specs("adam")
    params, opt = run_stacked(ss, range(3))
    keep = torch.tensor([0, 2])
    before = [opt.member_state(k) for k in (0, 2)]
    opt.keep(keep)
    assert float(opt.hp.eps[1]) == pytest.approx(1e-3) and opt.hp.momentum.shape == (2,)
    for j, k in enumerate((0, 2)):
        after = opt.member_state(j)
        assert after["t"] == before[j]["t"] and all(torch.equal(a, b) for a, b in zip(after["sq"], before[j]["sq"]))


def test_a_new_optimizer_is_one_registration_away():
    """An entry registered anywhere is accepted by the spec and trained by both trainers (here: plain gradient
    descent under another name, which must then equal "sgd" exactly)."""
    from genlab.train.ensemble import train_ensemble
    from genlab.train.loop import train

    @register_optimizer("gd_test")
    class GD:
        """w ← w − lr·(g + λ·w) (test entry)."""

        init = staticmethod(OPTIMIZERS.get("sgd").init)
        plain = staticmethod(OPTIMIZERS.get("sgd").plain)

        @staticmethod
        def update(params, grads, state, lr, hp):
            for p, g in zip(params, grads):
                p.addcmul_(bcast(-lr, p), _l2(g, p, hp))
            return OptState(state.t, state.bufs, state.sq)

    try:
        def cfg(name, seed):
            return RunConfig.model_validate({
                "experiment": "t", "seed": seed, "data": {"name": "digits", "n_train": 100},
                "model": {"name": "mlp", "widths": [16]}, "optim": {"name": name, "lr": 0.1, "weight_decay": 1e-3},
                "train": {"epochs": 2, "batch_size": 25}, "record": {"checkpoint": "none", "save_init": False}})
        solo, ref = train(cfg("gd_test", 0)), train(cfg("sgd", 0))
        assert [r["train_loss"] for r in solo.history] == [r["train_loss"] for r in ref.history]
        ens = train_ensemble([cfg("gd_test", 0), cfg("gd_test", 1)])
        assert ens[0].history[-1]["train_loss"] == pytest.approx(solo.history[-1]["train_loss"], rel=1e-5)
    finally:
        del OPTIMIZERS._entries["gd_test"], OPTIMIZERS._origins["gd_test"]


@pytest.mark.parametrize("field, value", [("optim", {"name": "adamw"}), ("schedule", {"name": "cosin"}),
                                          ("constraint", {"name": "projekt"})])
def test_an_unknown_name_is_refused_with_the_known_ones(field, value):
    with pytest.raises(ValidationError, match=rf"{field}.name\n.*unknown .*known .*did you mean"):
        RunConfig.model_validate({"experiment": "t", "data": {"name": "digits"}, "model": {"name": "mlp"},
                                  field: value})


# ---- schedules ------------------------------------------------------------------------------------------------
def cos_closed(t: float, epochs: int, warm: float, lo: float) -> float:
    if t < warm:
        return t / warm
    return lo + (1 - lo) * (1 + math.cos(math.pi * min((t - warm) / (epochs - warm), 1))) / 2


# per schedule: (spec, epochs, [(t, closed-form factor)]); a schedule registered without a case here fails
SCHEDULE_CASES = {
    "constant": [(ScheduleSpec(), 10, [(t, 1.0) for t in (0, 0.5, 9.99)])],
    "piecewise": [(ScheduleSpec(name="piecewise", milestones=[2, 5], factors=[1.0, 0.1, 0.01]), 8,
                   [(0, 1.0), (1.99, 1.0), (2, 0.1), (4.5, 0.1), (5, 0.01), (7.9, 0.01)])],
    "cosine": [(ScheduleSpec(name="cosine", min_factor=0.1), 10,
                [(t, cos_closed(t, 10, 0, 0.1)) for t in (0, 2.5, 5, 7.5, 10)]),
               (ScheduleSpec(name="cosine", warmup_epochs=2), 10,
                [(t, cos_closed(t, 10, 2, 0.0)) for t in (0, 0.5, 1, 2, 6, 9.5)])],
}


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_matches_its_closed_form(name):
    assert name in SCHEDULE_CASES, f"schedule {name!r} has no closed-form case in SCHEDULE_CASES"
    assert SCHEDULES.get(name).__doc__
    for spec, epochs, points in SCHEDULE_CASES[name]:
        factor = schedule_fn(spec, epochs)
        for t, want in points:
            assert factor(t) == pytest.approx(want, abs=1e-9), (name, t)
