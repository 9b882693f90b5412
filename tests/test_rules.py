"""Learning rules (genlab.models.rules): the backward each rule defines, on hand-checked layers and on every
registered model; the rules' effect on state_dicts, copies and measures; batch-Manhattan; the spec field."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genlab.measures import MeasureData, compute
from genlab.models import create_model, list_models
from genlab.losses import get_loss
from genlab.spec import OptimSpec, RunConfig
from genlab.train.loop import train
from genlab.train.optim import Manhattan, Optim, build_optimizer
from genlab.models.rules import (alignment_angles, angle_deg, apply_rule, list_rules, rule_generator, rule_layers,
                                rule_of, strip_rule)

SHAPE = (1, 8, 8)  # digits: every registered model builds at this shape (tests/test_models.py)
CE = get_loss("cross_entropy")


def batch(n: int = 8, shape=SHAPE, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)


def grads(model: nn.Module, x, y) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return [p.grad.clone() for p in model.parameters()]


def ruled(model: nn.Module, name: str, seed: int = 0, **options) -> nn.Module:
    return apply_rule(copy.deepcopy(model), name, rule_generator(seed), **options)


# ---- the backward of each rule ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mlp", "convnet3", "resnet20", "conv4", "tweaks_cnn", "vgg11_bn"])
def test_feedback_alignment_with_B_equal_W_is_backprop(name):
    torch.manual_seed(0)
    plain = create_model(name, SHAPE, 10).double()  # float64: only summation order may differ
    fa = ruled(plain, "feedback_alignment")
    with torch.no_grad():
        for layer in rule_layers(fa):
            layer.feedback_weight.copy_(layer.weight)  # B := W
    x, y = batch()
    for a, b in zip(grads(fa, x.double(), y), grads(plain, x.double(), y)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_sign_symmetry_backward_is_scaled_sign_W_transpose_delta_on_a_hand_checked_layer():
    layer = nn.Linear(3, 2, bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -2.0, 0.0], [-1.0, 0.25, 3.0]]))
        layer.bias.zero_()
    x = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    delta = torch.tensor([[1.0, -2.0]])  # ∂L/∂y for L = Σ δ·y
    for scale, s in (("none", 1.0), ("rms", math.sqrt((0.25 + 4 + 0 + 1 + 0.0625 + 9) / 6))):  # ‖W‖_F/√6
        net = apply_rule(nn.Sequential(copy.deepcopy(layer)), "sign_symmetry", rule_generator(0), scale=scale)
        x.grad = None
        (net(x) * delta).sum().backward()
        # sign(W) = [[1, -1, 0], [-1, 1, 1]]; sign(W)ᵀδ = [1·1 + (−1)(−2), −1·1 + 1·(−2), 0·1 + 1·(−2)] = [3, −3, −2]
        assert x.grad[0].tolist() == pytest.approx([3 * s, -3 * s, -2 * s], rel=1e-6)
        # the weight gradient is still δ xᵀ, the bias gradient δ
        assert net[0].weight.grad.tolist() == [[1.0, 2.0, 3.0], [-2.0, -4.0, -6.0]]
        assert net[0].bias.grad.tolist() == [1.0, -2.0]


@pytest.mark.parametrize("conv, transpose, shape", [(nn.Conv2d(2, 3, 3, stride=2, padding=1), F.conv_transpose2d,
                                                     (2, 2, 7, 7)),
                                                    (nn.Conv1d(2, 3, 5, padding=2), F.conv_transpose1d, (2, 2, 9))])
def test_sign_symmetry_conv_input_grad_is_the_transposed_conv_with_sign_W(conv, transpose, shape):
    torch.manual_seed(1)
    x = torch.randn(shape, requires_grad=True)
    net = apply_rule(nn.Sequential(copy.deepcopy(conv)), "sign_symmetry", rule_generator(0), scale="none")
    out = net(x)
    delta = torch.randn_like(out)
    (out * delta).sum().backward()
    opad = [x.shape[2 + i] - ((out.shape[2 + i] - 1) * conv.stride[i] - 2 * conv.padding[i]
                              + conv.kernel_size[i]) for i in range(x.dim() - 2)]
    expect = transpose(delta, torch.sign(conv.weight.detach()), None, conv.stride, conv.padding, opad)
    torch.testing.assert_close(x.grad, expect)
    w = conv.weight.detach().clone().requires_grad_()  # weight gradient: backprop's
    ((F.conv2d if x.dim() == 4 else F.conv1d)(x.detach(), w, conv.bias, conv.stride, conv.padding) * delta).sum().backward()
    torch.testing.assert_close(net[0].weight.grad, w.grad)


# ---- every registered model under every rule ----------------------------------------------------------------
@pytest.mark.parametrize("rule", list_rules())
@pytest.mark.parametrize("name", list_models())
def test_every_model_trains_one_step_under_every_rule(name, rule):
    torch.manual_seed(0)
    model = apply_rule(create_model(name, SHAPE, 10), rule, rule_generator(0))
    before = [m.weight.detach().clone() for m in rule_layers(model)]
    keys = set(create_model(name, SHAPE, 10).state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert math.isfinite(loss.item())
    changed = [not torch.equal(b, m.weight) for b, m in zip(before, rule_layers(model))]
    assert all(changed), f"{name}/{rule}: layers {[i for i, c in enumerate(changed) if not c]} did not move"
    assert set(model.state_dict()) == keys  # checkpoints: the registered architecture's keys only
    assert rule_of(model) == rule


def test_feedback_matrix_is_fixed_random_with_W_scale_and_reproducible():
    torch.manual_seed(0)
    plain = create_model("mlp", SHAPE, 10, widths=[32, 16])
    a, b = ruled(plain, "feedback_alignment", seed=3), ruled(plain, "feedback_alignment", seed=3)
    c = ruled(plain, "feedback_alignment", seed=4)
    for la, lb, lc in zip(rule_layers(a), rule_layers(b), rule_layers(c)):
        B = la.feedback_weight
        assert B.shape == la.weight.shape and torch.equal(B, lb.feedback_weight) and not torch.equal(B, lc.feedback_weight)
        assert B.norm().item() == pytest.approx(la.weight.norm().item(), rel=1e-5)
        assert abs(angle_deg(B, la.weight) - 90) < 15  # random: nearly orthogonal to W
    B0 = [m.feedback_weight.clone() for m in rule_layers(a)]
    opt = torch.optim.SGD(a.parameters(), lr=0.5)
    for _ in range(3):
        x, y = batch()
        opt.zero_grad()
        F.cross_entropy(a(x), y).backward()
        opt.step()
    assert all(torch.equal(b0, m.feedback_weight) for b0, m in zip(B0, rule_layers(a)))  # fixed: not trained


def test_ruled_model_checkpoints_copies_and_evaluation_are_those_of_the_plain_model():
    torch.manual_seed(0)
    plain = create_model("resnet20", SHAPE, 10)
    fa = ruled(plain, "feedback_alignment")
    x, y = batch()
    assert torch.equal(fa(x), plain(x))  # same forward (train mode, BN batch statistics)
    fresh = create_model("resnet20", SHAPE, 10)
    fresh.load_state_dict(fa.state_dict())  # strict: no extra keys
    buf = io.BytesIO()
    torch.save(fa, buf)
    buf.seek(0)
    for other in (copy.deepcopy(fa), torch.load(buf, weights_only=False)):
        assert rule_of(other) == "feedback_alignment"
        for a, b in zip(grads(other, x, y), grads(fa, x, y)):
            torch.testing.assert_close(a, b)
    strip_rule(fa)
    assert rule_of(fa) == "backprop" and not any("feedback_weight" in dict(m.named_buffers()) for m in fa.modules())
    for a, b in zip(grads(fa, x, y), grads(plain, x, y)):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="already has learning rule"):
        apply_rule(ruled(plain, "sign_symmetry"), "feedback_alignment", rule_generator(0))


def test_unsupported_layers_and_unknown_rules_are_refused():
    with pytest.raises(ValueError, match="padding_mode='circular'"):
        apply_rule(nn.Sequential(nn.Conv2d(1, 2, 3, padding_mode="circular")), "sign_symmetry", rule_generator(0))
    with pytest.raises(KeyError, match="unknown rule 'hebb'.*feedback_alignment"):
        apply_rule(nn.Linear(2, 2), "hebb", rule_generator(0))
    with pytest.raises(ValueError, match="option scale"):
        apply_rule(nn.Linear(2, 2), "sign_symmetry", rule_generator(0), scale="big")


# ---- alignment ------------------------------------------------------------------------------------------------
def test_alignment_angle_is_zero_for_backprop_and_for_the_last_layer_under_every_rule():
    torch.manual_seed(0)
    plain = create_model("mlp", SHAPE, 10, widths=[64, 64])
    x, y = batch(64)
    assert alignment_angles(plain, (x, y), CE) == {0: 0.0, 1: 0.0, 2: 0.0}
    for rule in ("feedback_alignment", "sign_symmetry"):
        a = alignment_angles(ruled(plain, rule), (x, y), CE)
        assert a[2] == 0.0  # the output layer's δ is the loss's own under every rule
        assert a[0] > 1.0 and a[1] > 1.0, a
    fa = alignment_angles(ruled(plain, "feedback_alignment"), (x, y), CE)
    assert 60 < fa[1] < 120  # at init a random B is nearly orthogonal to W: ~90° before alignment


def test_alignment_angles_leave_the_model_untouched():
    torch.manual_seed(0)
    model = ruled(create_model("conv4", SHAPE, 10, width=4), "feedback_alignment")
    state = copy.deepcopy(model.state_dict())
    alignment_angles(model, batch(), CE)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())  # BN statistics too
    assert all(p.grad is None for p in model.parameters())


def test_measures_see_the_plain_model_and_grad_alignment_the_rule():
    torch.manual_seed(0)
    plain = create_model("mlp", SHAPE, 10, widths=[32])
    x, y = batch(64)
    data = MeasureData(x, y, x, y, CE, num_classes=10)
    fa = ruled(plain, "feedback_alignment")
    names = ["grad_alignment_deg", "sharpness", "margin_q10"]
    a, b = compute(names, fa, data), compute(names, plain, data)
    assert b["grad_alignment_deg.layer0"] == 0.0 and b["grad_alignment_deg.mean"] == 0.0
    assert a["grad_alignment_deg.layer0"] > 10 and a["grad_alignment_deg.layer1"] == 0.0
    assert a["grad_alignment_deg.first"] == a["grad_alignment_deg.layer0"]
    assert a["sharpness.zeta"] == b["sharpness.zeta"] and a["margin_q10"] == b["margin_q10"]  # true gradients
    assert rule_of(fa) == "feedback_alignment"  # compute worked on copies


# ---- batch Manhattan ---------------------------------------------------------------------------------------
def test_manhattan_moves_every_weight_by_lr_times_the_sign_of_its_gradient():
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    opt = Optim(OptimSpec(name="manhattan", lr=0.1), [w])
    opt.step([w], [torch.tensor([1e-6, -40.0, 0.0, 2.0])], 0.1)
    assert w.tolist() == pytest.approx([0.9, -1.9, 0.5, 2.9])
    mom = Optim(OptimSpec(name="manhattan", lr=0.1, momentum=0.5, weight_decay=0.0), [w])
    for _ in range(2):
        mom.step([w], [torch.tensor([1.0, 1.0, -1.0, 0.0])], 0.1)
    assert w.tolist() == pytest.approx([0.9 - 0.1 - 0.15, -1.9 - 0.1 - 0.15, 0.5 + 0.25, 2.9])  # v = 1, 1.5


def test_manhattan_from_the_spec():
    cfg = RunConfig.model_validate({"experiment": "t", "data": {"name": "digits"}, "model": {"name": "mlp"},
                                    "optim": {"name": "manhattan", "lr": 1e-3, "momentum": 0.9}})
    opt = Optim(cfg.optim, [torch.zeros(2)])
    assert opt.opt is Manhattan and float(opt.hp.momentum) == pytest.approx(0.9)
    wrapped = build_optimizer([nn.Parameter(torch.zeros(2))], cfg.optim)  # torch.optim's face of the same entry
    assert isinstance(wrapped, torch.optim.Optimizer) and wrapped.impl[0].opt is Manhattan


# ---- the spec field and the trainer --------------------------------------------------------------------------
def run_config(**train_over) -> RunConfig:
    return RunConfig.model_validate({
        "experiment": "t", "seed": 0, "data": {"name": "digits", "n_train": 200},
        "model": {"name": "mlp", "widths": [32]}, "optim": {"lr": 0.1},
        "train": {"epochs": 2, "batch_size": 50, **train_over}, "record": {"checkpoint": "none", "save_init": False}})


def test_default_rule_keeps_run_ids_and_other_rules_change_them():
    base = run_config()
    assert "rule" not in base.canonical_json()  # OMIT_DEFAULT: runs stored before rules keep their ids
    assert run_config(rule="backprop").run_id == base.run_id
    fa, ss = run_config(rule="feedback_alignment"), run_config(rule="sign_symmetry")
    assert len({base.run_id, fa.run_id, ss.run_id}) == 3
    assert ss.train.rule_options == {"scale": "rms"}  # resolved, so the hash holds every option
    assert run_config(rule="sign_symmetry", rule_options={"scale": "rms"}).run_id == ss.run_id


@pytest.mark.parametrize("train_over, match", [
    ({"rule": "hebb"}, r"train\.rule: unknown rule 'hebb'; known rules: backprop, feedback_alignment"),
    ({"rule": "sign_symmetry", "rule_options": {"scale": 2}}, r"train\.rule_options\.scale: Input should be 'rms'"),
    ({"rule": "feedback_alignment", "rule_options": {"scale": "rms"}},
     r"train\.rule_options\.scale: unknown option \(known: none\)")])
def test_bad_rules_in_the_spec_name_the_field(train_over, match):
    from genlab.spec.loader import parse

    raw = {"name": "t", "data": {"name": "digits"}, "model": {"name": "mlp"}, "train": train_over}
    with pytest.raises(ValueError, match=match):
        parse(raw, where="rules.toml")


def test_training_under_a_rule_is_deterministic_and_differs_from_backprop():
    strip = lambda h: [{k: v for k, v in r.items() if k != "epoch_s"} for r in h]  # noqa: E731
    a, b = train(run_config(rule="feedback_alignment")), train(run_config(rule="feedback_alignment"))
    bp = train(run_config())
    assert strip(a.history) == strip(b.history)
    assert a.history[0] == {**bp.history[0]}  # the same init: only the updates differ
    assert a.history[-1]["train_loss"] != bp.history[-1]["train_loss"]
    assert a.history[-1]["train_loss"] < a.history[0]["train_loss"]  # it learns
    assert rule_of(a.model) == "feedback_alignment" and set(a.model.state_dict()) == set(bp.model.state_dict())


# ---- the study's figure -------------------------------------------------------------------------------------
def rules_results():
    """2 rules × (3 runs + 1 RL run); backprop's rule column is missing (NaN), as for runs stored before rules."""
    import numpy as np
    import pandas as pd

    rows = []
    for rule, off in ((None, 0.01), ("feedback_alignment", 0.03)):
        for i, tr in enumerate([2.0, 2.1, 2.2, 2.29]):
            rows.append({"run_id": f"{rule}{i}", "train.rule": rule, "data.corrupt_prob": 1.0 if i == 3 else 0.0,
                         "normalized_loss.train": tr, "normalized_loss.test": tr + off,
                         "test_error": 0.05 + (0.02 if rule else 0.0) + 0.01 * i, "grad_alignment_deg.first": np.nan})
    return pd.DataFrame(rows)


def rules_history():
    import pandas as pd

    rows = [{"run_id": f"{r}{i}", "train.rule": r, "data.corrupt_prob": 0.0, "epoch": e,
             "grad_alignment_deg.first": (0.0 if r is None else 90.0 - 10 * e + i)}
            for r in (None, "feedback_alignment") for i in range(2) for e in (1, 2, 3)]
    return pd.DataFrame(rows)


FIGURE_CASES = {"learning_rules": lambda: ({}, rules_history(), rules_results())}


def test_learning_rules_figure_draws_accuracy_angles_and_each_rules_fit():
    from genlab.figures import draw

    fig = draw({"name": "learning_rules"}, rules_history(), rules_results())
    acc, ang, loss = fig.axes
    assert [t.get_text() for t in acc.get_xticklabels()] == ["backprop", "feedback alignment"]
    heights = [p.get_height() for p in acc.patches]
    assert heights == pytest.approx([1 - 0.06, 1 - 0.08])  # mean test accuracy of the 3 correctly labelled runs
    curves = {ln.get_label(): ln.get_ydata().tolist() for ln in ang.get_lines() if not ln.get_label().startswith("_")}
    assert curves == {"backprop": [0.0, 0.0, 0.0], "feedback alignment": [80.5, 70.5, 60.5]}  # mean over runs
    fits = {ln.get_label().split(":")[0]: ln for ln in loss.get_lines()}
    for name, off in (("backprop", 0.01), ("feedback alignment", 0.03)):
        x, y = fits[name].get_data()
        assert (y - x) == pytest.approx(off) and f"slope 1 ± 0, intercept {off:.3g} ± 0" in fits[name].get_label()  # RL run included
    assert [len(c.get_offsets()) for c in loss.collections] == [3, 1, 3, 1]  # runs, then the RL star, per rule


@pytest.mark.parametrize("rule", ["feedback_alignment", "sign_symmetry"])
def test_rules_work_under_torch_func_vmap_for_ensembles(rule):
    from torch.func import functional_call, grad, stack_module_state, vmap

    torch.manual_seed(0)
    models = [apply_rule(create_model("convnet3", SHAPE, 10, width=4), rule, rule_generator(i)) for i in range(3)]
    params, buffers = stack_module_state(models)  # FA's B is a (non-persistent) buffer: stacked too
    base = copy.deepcopy(models[0]).to("meta")
    x, y = batch(5)

    def loss(p, b, x, y):
        return F.cross_entropy(functional_call(base, (p, b), (x,)), y)

    g = vmap(grad(loss), in_dims=(0, 0, None, None))(params, buffers, x, y)
    for i, m in enumerate(models):
        for (name, gi), expect in zip(g.items(), grads(m, x, y)):
            torch.testing.assert_close(gi[i], expect, rtol=1e-5, atol=1e-7)


# ---- the ensemble trainer ----------------------------------------------------------------------------------
def test_ensemble_members_under_a_rule_equal_their_solo_runs():
    from test_ensemble import check, config

    check([config(train={"rule": "feedback_alignment"}), config(train={"rule": "feedback_alignment"}, seed=1,
                                                                optim={"lr": 0.05, "momentum": 0.9})])
    conv = {"data": {"name": "digits"}, "model": {"name": "conv4", "width": 4}}
    check([config(**conv, train={"epochs": 2, "batch_size": 64, "rule": "sign_symmetry"}),
           config(**conv, train={"epochs": 2, "batch_size": 64, "rule": "sign_symmetry"}, seed=2)])


def test_ensemble_members_under_batch_manhattan_equal_their_solo_runs():
    from test_ensemble import check, config

    check([config(optim={"name": "manhattan", "lr": 0.01}),
           config(optim={"name": "manhattan", "lr": 0.005, "momentum": 0.9}, seed=1),
           config(optim={"name": "manhattan", "lr": 0.01, "weight_decay": 0.01}, seed=2)])


def test_ensembles_group_by_rule_and_refuse_mixed_rules():
    from genlab.executors.ensemble import group_key
    from genlab.train.ensemble import train_ensemble
    from test_ensemble import config

    bp, fa = config(), config(train={"rule": "feedback_alignment"})
    assert group_key(bp) != group_key(fa) and group_key(fa) == group_key(config(train={"rule": "feedback_alignment"},
                                                                                 seed=5))
    with pytest.raises(ValueError, match="must share train.rule"):
        train_ensemble([bp, fa])


def test_learning_rules_figure_draws_the_findings_fit_on_the_runs_meeting_the_precondition():
    from genlab.figures import draw

    res = rules_results().assign(train_error=0.0, **{"grad_alignment_deg.first": 45.0})
    res.loc[0, "train_error"] = 0.106  # one run never fitted its training set: out of panel (c), and listed
    res.loc[1, "grad_alignment_deg.first"] = float("nan")  # the angle undefined for one run: listed, not dropped silently
    fig = draw({"name": "learning_rules", "require": "train_error == 0"}, rules_history(), res)
    loss = fig.axes[2]
    assert sum(len(c.get_offsets()) for c in loss.collections) == len(res) - 1
    notes = " ".join(fig.genlab_notes)
    assert "Left out 1 of" in notes and "train_error 0.106" in notes and "No grad_alignment_deg.first (NaN)" in notes
    with pytest.raises(ValueError, match="fit must be"):
        draw({"name": "learning_rules", "fit": "cubic"}, rules_history(), res)
