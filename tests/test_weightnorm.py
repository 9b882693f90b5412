"""Weight-normalized training (000 ch. 5): projection with ρ absorbed, the Lagrange penalty, λ ascent, the trainer hook."""

import copy
import math

import pytest
import torch
from torch import nn

from genlab.models import create_model
from genlab.spec import ConstraintSpec, RunConfig
from genlab.train.loop import train
from genlab.train.constraints import (Hook, RhoScaled, lambda_ascent, layer_norms, penalty, plain, project,
                                     weight_layers)


def random_net(name: str, in_shape, **opts) -> nn.Module:
    torch.manual_seed(0)
    net = create_model(name, in_shape, 10, **opts).double()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)  # norms far from 1, so the projection has something to do
    return net


@pytest.mark.parametrize("name,in_shape,opts", [("convnet3", (1, 8, 8), {"width": 8}),
                                                 ("mlp", (6,), {"widths": [7, 5], "bias": False}),
                                                 ("mlp", (6,), {"widths": [7, 5], "bias": True})])
def test_projection_gives_unit_layers_and_absorbs_rho_exactly(name, in_shape, opts):
    net = random_net(name, in_shape, **opts)
    x = torch.randn(16, *in_shape, dtype=torch.float64)
    f = net(x).detach()
    norms = layer_norms(net).detach()
    wrapped = RhoScaled(copy.deepcopy(net)).double()
    log_rho = project(wrapped, absorb=True)
    assert log_rho == pytest.approx(float(norms.log().sum()))
    assert layer_norms(wrapped).detach() == pytest.approx(torch.ones(len(norms), dtype=torch.float64), abs=1e-12)
    assert wrapped.rho.item() == pytest.approx(float(norms.prod()), rel=1e-12)
    f_v = wrapped.net(x).detach()
    assert torch.allclose(f, wrapped.rho.item() * f_v, rtol=1e-10, atol=1e-12)  # f = ρ f_V exactly
    assert not torch.allclose(f, f_v)  # the unit-norm net alone is a different function


def test_projection_without_absorbing_rescales_the_output_by_the_product_of_norms():
    net = random_net("convnet3", (1, 8, 8), width=8)
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    f = net(x).detach()
    log_rho = project(net, absorb=False)
    assert torch.allclose(net(x).detach() * math.exp(log_rho), f, rtol=1e-10)
    assert (f.argmax(1) == net(x).argmax(1)).all()  # the predicted labels stay


def test_plain_folds_rho_into_the_output_layer():
    net = random_net("mlp", (6,), widths=[7], bias=True)
    wrapped = RhoScaled(copy.deepcopy(net)).double()
    with torch.no_grad():
        wrapped.rho.fill_(2.5)
    x = torch.randn(5, 6, dtype=torch.float64)
    folded = plain(wrapped)
    assert type(folded) is type(net) and set(folded.state_dict()) == set(net.state_dict())
    assert torch.allclose(folded(x), wrapped(x), rtol=1e-12)
    assert float(layer_norms(folded).detach().log().sum()) == pytest.approx(float(layer_norms(net).detach().log().sum()) + math.log(2.5))
    assert plain(net) is net


def hand_net() -> nn.Module:
    """Two bias-free Linear layers: ‖W1‖ = 5 ([[3, 4]]), ‖W2‖ = 1 ([[0.6], [0.8]])."""
    net = nn.Sequential(nn.Linear(2, 1, bias=False), nn.ReLU(), nn.Linear(1, 2, bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[3.0, 4.0]], dtype=torch.float64))
        net[2].weight.copy_(torch.tensor([[0.6], [0.8]], dtype=torch.float64))
    return net


def test_lagrange_penalty_on_a_hand_made_net():
    net = hand_net()
    lam = torch.tensor([2.0, 3.0], dtype=torch.float64)
    p = penalty(layer_norms(net), lam)
    assert p.item() == pytest.approx(2.0**2 * (5 - 1) ** 2 + 3.0**2 * 0.0)  # = 64
    p.backward()
    # ∂/∂W1 λ1²(‖W1‖−1)² = 2 λ1² (‖W1‖−1) W1/‖W1‖ = 2·4·4·[3, 4]/5
    assert net[0].weight.grad[0].tolist() == pytest.approx([2 * 4 * 4 * 3 / 5, 2 * 4 * 4 * 4 / 5])
    assert net[2].weight.grad.abs().max() == pytest.approx(0.0, abs=1e-12)


def test_lambda_ascent_grows_lambda_only_where_the_norm_is_off_one():
    lam = torch.tensor([2.0, 3.0, 0.0])
    norms = torch.tensor([5.0, 1.0, 7.0])
    new = lambda_ascent(lam, norms, lr=0.1)
    assert new.tolist() == pytest.approx([2.0 + 0.1 * 2 * 2.0 * 16, 3.0, 0.0])  # λ=0 stays 0 (a fixed point)


def test_hook_updates_lambda_unless_fixed():
    net = hand_net()
    for fixed, grows in ((False, True), (True, False)):
        hook = Hook(ConstraintSpec(name="lagrange", lam_init=1.0, lam_lr=0.1, fixed_lambda=fixed, rho=False))
        model = hook.wrap(net)
        assert hook.loss_term(model).item() == pytest.approx(16.0)  # λ=1: (5−1)² + 0
        hook.after_step(model)
        assert (float(hook.state.lam[0]) > 1.0) is grows and float(hook.state.lam[1]) == 1.0
    with pytest.raises(ValueError, match="needs no hook"):
        Hook(ConstraintSpec())


def test_projecting_zero_weights_says_how_to_fix_it():
    net = nn.Sequential(nn.Linear(2, 2, bias=False))
    nn.init.zeros_(net[0].weight)
    with pytest.raises(ValueError, match="init.std > 0"):
        project(net)
    with pytest.raises(ValueError, match="needs Linear/Conv layers"):
        weight_layers(nn.ReLU())


def config(constraint: dict | None = None, epochs: int = 10) -> RunConfig:
    d = {"experiment": "wn", "seed": 0, "data": {"name": "digits", "n_train": 300},
         "model": {"name": "convnet3", "width": 8}, "init": {"name": "normal", "std": 0.1},
         "optim": {"lr": 0.01, "momentum": 0.9}, "train": {"epochs": epochs, "batch_size": 64},
         "record": {"checkpoint": "none", "save_init": False, "measures": ["log_prod_frobenius"]}}
    if constraint is not None:
        d["constraint"] = constraint
    return RunConfig.model_validate(d)


def test_default_constraint_keeps_run_ids_and_others_change_them():
    plain_cfg = config()
    assert "constraint" not in plain_cfg.canonical_json()
    assert config({"name": "none"}).run_id == plain_cfg.run_id
    assert config({"name": "project"}).run_id != plain_cfg.run_id
    assert '"constraint":{' in config({"name": "project"}).canonical_json()


def test_trainer_projects_each_epoch_with_rho_absorbed():
    out = train(config({"name": "project"}))
    rows = [r for r in out.history if r["epoch"] > 0]
    assert all({"norm_dev", "log_rho", "log_prod_norms"} <= set(r) for r in rows)
    assert all(r["norm_dev"] > 0 for r in rows[1:])  # SGD moves the unit-norm layers off 1 within an epoch
    # the plain net at the end has ρ in its output layer: its log product of norms is log ρ (layers unit)
    assert out.measures["log_prod_frobenius"] == pytest.approx(rows[-1]["log_rho"], abs=1e-5)
    assert rows[-1]["log_prod_norms"] == pytest.approx(rows[-1]["log_rho"], abs=1e-5)
    assert min(r["train_error"] for r in rows) < 0.3  # it learns (faster than plain SGD: the steps scale with ρ)
    assert type(out.model).__name__ != "RhoScaled"


def test_trainer_lagrange_pulls_the_norms_to_one_and_grows_lambda():
    out = train(config({"name": "lagrange", "lam_init": 1.0, "lam_lr": 0.01}))
    rows = [r for r in out.history if r["epoch"] > 0]
    assert rows[-1]["lambda_mean"] > rows[0]["lambda_mean"] > 1.0
    assert rows[-1]["norm_dev"] < 0.15 < rows[0]["norm_dev"]  # the constraint holds ‖V_k‖ near 1 ...
    free = train(config())  # ... where plain SGD leaves them off 1
    assert float((layer_norms(free.model).detach() - 1).abs().max()) > 5 * rows[-1]["norm_dev"]
    assert rows[-1]["train_error"] < 0.7 and free.history[-1]["train_error"] < 0.7


def test_overflowed_weights_end_the_run_as_diverged_not_as_a_zero_norm_error():
    hook = Hook(ConstraintSpec(name="project", rho=True))
    net = hook.wrap(random_net("mlp", (6,), widths=[7, 5], bias=False))
    with torch.no_grad():
        weight_layers(net)[1].weight[0, 0] = float("inf")  # what one step at a huge lr can leave behind
    row = hook.end_epoch(net)  # no projection of an infinite layer, and no "all-zero weights" error
    assert not math.isfinite(row["norm_dev"]) and "log_rho" not in row
    out = train(config({"name": "project", "rho": True}, epochs=5).model_copy(
        update={"optim": config().optim.model_copy(update={"lr": 1e8})}))
    assert out.status == "diverged" and out.stop_reason == "non_finite_loss" and out.epochs_run < 5


def test_every_registered_constraint_kind_is_documented_and_hooked_when_active():
    from genlab.train.constraints import CONSTRAINTS, hook_for

    assert set(CONSTRAINTS.names()) >= {"none", "project", "lagrange"}
    for name in CONSTRAINTS.names():
        kind = CONSTRAINTS.get(name)
        assert kind.__doc__
        hook = hook_for(ConstraintSpec(name=name))
        assert (hook is None) == (not kind.active) and (hook is None or hook.kind is kind)
