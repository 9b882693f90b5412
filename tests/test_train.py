"""The trainer: determinism, convergence, losses, events, stop rules, divergence, schedules."""

import math

import pytest
import torch

from genlab.spec import RunConfig, ScheduleSpec
from genlab.train.events import cosine, flat_params, perturb
from genlab.losses import get_loss, list_losses
from genlab.train.loop import train
from genlab.train.optim import schedule_fn


def config(**over) -> RunConfig:
    base = {"experiment": "t", "seed": 0,
            "data": {"name": "separable", "dim": 5, "n_train": 200, "n_test": 200},
            "model": {"name": "linear"}, "init": {"name": "normal", "std": 0.1, "bias": "same"},
            "optim": {"lr": 0.5}, "train": {"epochs": 3, "batch_size": 8},
            "record": {"checkpoint": "none", "save_init": False}}
    for k, v in over.items():
        old = base.get(k, {})
        same = isinstance(v, dict) and v.get("name", old.get("name")) == old.get("name")
        base[k] = {**old, **v} if same else v
    return RunConfig.model_validate(base)


def test_same_config_same_numbers():
    cfg = config(events={"perturb_epochs": [2], "perturb_std": 0.3, "cosine_ref_epoch": 1})
    a, b = train(cfg), train(cfg)
    strip = lambda h: [{k: v for k, v in r.items() if k != "epoch_s"} for r in h]  # noqa: E731 (wall time)
    assert strip(a.history) == strip(b.history) and len(a.history) == 5
    other = train(config(seed=1))
    assert other.history[-1]["train_loss"] != a.history[-1]["train_loss"]


def test_linear_reaches_zero_training_error_on_separable_data():
    out = train(config(train={"epochs": 500, "batch_size": 200, "stop_at_zero_error": True}, optim={"lr": 5.0}))
    assert out.stop_reason == "zero_train_error" and out.history[-1]["train_error"] == 0.0
    assert out.epochs_run < 500


def test_stop_below_loss_and_max_epochs():
    out = train(config(train={"epochs": 200, "stop_below_loss": 0.3}))
    assert out.stop_reason == "train_loss_below" and out.history[-1]["train_loss"] < 0.3
    assert all(r["train_loss"] >= 0.3 for r in out.history[:-1])
    assert train(config()).stop_reason == "max_epochs"


def test_history_layout_epoch0_is_init():
    out = train(config())
    assert [r["epoch"] for r in out.history] == [0, 1, 2, 3]
    assert out.history[0]["train_error"] == pytest.approx(0.5, abs=0.25)  # an untrained classifier


def test_exponential_loss_is_exp_minus_yf():
    loss = get_loss("exp")
    f = torch.tensor([[0.5], [-2.0], [0.0]])
    y = torch.tensor([1, 1, 0])  # → ±1: +1, +1, −1
    expect = torch.tensor([math.exp(-0.5), math.exp(2.0), 1.0])
    assert torch.allclose(loss.per_sample(f, y), expect)
    assert loss.errors(f, y).tolist() == [False, True, True]  # y·f ≤ 0 counts as an error
    assert loss.num_outputs(2) == 1
    with pytest.raises(ValueError, match="2 classes"):
        loss.num_outputs(10)


@pytest.mark.parametrize("name", list_losses())
def test_every_loss_matches_its_formula(name):
    g = torch.Generator().manual_seed(0)
    loss = get_loss(name)
    out = torch.randn(6, loss.num_outputs(2), generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (6,), generator=g)
    if name == "cross_entropy":
        expect = -torch.log_softmax(out, 1)[torch.arange(6), y]
    elif name == "exp":
        expect = torch.exp(-(2.0 * y - 1) * out[:, 0])
    else:  # mse: ‖f − onehot(y)‖²
        expect = ((out - torch.nn.functional.one_hot(y, 2)) ** 2).sum(1)
    assert torch.allclose(loss.per_sample(out, y), expect)
    assert torch.allclose(loss(out, y), expect.mean())


def test_mse_regression_has_one_output_and_no_error():
    out = train(config(data={"name": "gaussian_regression", "n_train": 50, "n_test": 50, "p": 20, "noise": 0.0},
                       train={"loss": "mse", "epochs": 2}, optim={"lr": 0.01}))
    assert math.isnan(out.history[-1]["train_error"]) and out.history[-1]["train_loss"] < out.history[0]["train_loss"]


def test_perturbation_has_the_requested_std():
    model = torch.nn.Linear(500, 200)  # 100,200 parameters
    before = flat_params(model).clone()
    perturb(model, 0.3, torch.Generator().manual_seed(0))
    delta = flat_params(model) - before
    assert delta.std().item() == pytest.approx(0.3, rel=0.01)  # a standard deviation, not a variance
    assert abs(delta.mean().item()) < 0.003


def test_cosine_is_one_at_reference_and_perturbation_rows():
    cfg = config(train={"epochs": 4}, events={"perturb_epochs": [2, 3], "perturb_std": 0.5, "cosine_ref_epoch": 2})
    h = train(cfg).history
    rows = [(r["epoch"], r.get("event"), r.get("cosine")) for r in h]
    assert rows[0][2] is None and rows[1][2] is None  # no reference yet
    at_ref = [r for r in h if r["epoch"] == 2]
    assert len(at_ref) == 2 and at_ref[1]["event"] == "perturb"
    assert at_ref[0]["cosine"] == pytest.approx(1.0, abs=1e-6)
    assert at_ref[1]["cosine"] < 0.999  # the perturbation moved the weights
    assert cosine(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) == 0.0


def test_divergence_is_recorded_with_history():
    out = train(config(train={"loss": "exp", "epochs": 50}, optim={"lr": 1e6},
                       init={"name": "normal", "std": 10.0}))
    assert out.status == "diverged" and out.stop_reason == "non_finite_loss"
    assert len(out.history) >= 2 and out.epochs_run < 50


def test_schedules():
    pw = schedule_fn(ScheduleSpec(name="piecewise", milestones=[50, 100, 150], factors=[1, 1, 0.1, 0.01]), 200)
    assert [pw(t) for t in (0, 49.9, 50, 100, 149.99, 150, 199)] == [1, 1, 1, 0.1, 0.1, 0.01, 0.01]
    cos = schedule_fn(ScheduleSpec(name="cosine", min_factor=0.1), 10)
    assert cos(0) == pytest.approx(1.0) and cos(5) == pytest.approx(0.55) and cos(10) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="len\\(factors\\)"):
        ScheduleSpec(name="piecewise", milestones=[1], factors=[1.0])


def test_lr_schedule_reaches_the_optimizer():
    out = train(config(train={"epochs": 4}, schedule={"name": "piecewise", "milestones": [2], "factors": [1, 0.1]}))
    assert [r["lr"] for r in out.history[1:]] == pytest.approx([0.5, 0.5, 0.05, 0.05])  # after 2 epochs, as MultiStepLR


def test_per_run_perturbation_draws_differ_across_a_std_sweep_and_repeat():
    from genlab.train.setup import build

    def noise(std: float, draw: str) -> torch.Tensor:
        cfg = config(events={"perturb_epochs": [1], "perturb_std": std, "perturb_draw": draw})
        return torch.randn(20, generator=build(cfg, torch.device("cpu"))[3]["perturb"])

    assert torch.equal(noise(0.1, "per_seed"), noise(1.0, "per_seed"))  # one direction, scaled by std
    assert not torch.allclose(noise(0.1, "per_run"), noise(1.0, "per_run"))  # each run its own
    assert torch.equal(noise(0.5, "per_run"), noise(0.5, "per_run"))  # and the same again for the same run
    assert "perturb_draw" not in config().canonical_json()  # the default keeps old run ids


def test_evaluation_runs_large_batches_in_cache_sized_passes(monkeypatch):
    """On a CPU each evaluation batch is forwarded in passes of `objective.rows_per_pass` rows (its largest
    activation near PASS_BYTES): the passes cover every row once, through `data.inputs`, and the loss and error
    equal one pass per batch (float64: to rounding; the error count exactly). Without a PASS_BYTES entry for
    the device the batch is one pass, as before."""
    from types import SimpleNamespace

    from torch import nn

    from genlab.measures import objective
    from genlab.train.evaluate import evaluate

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 16 * 16, 5)).double()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(100, 3, 16, 16, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (100,), generator=gen)
    data = SimpleNamespace(inputs=lambda t: 2 * t, num_classes=5)  # a transform the passes must apply
    rows: list[int] = []
    seen: list[torch.Tensor] = []
    net[0].register_forward_hook(lambda m, i, o: rows.append(len(i[0])) or seen.append(i[0]))
    loss = get_loss("cross_entropy")

    monkeypatch.setitem(objective.PASS_BYTES, "cpu", 16 * 4 * 16 * 16 * 8)  # 16 rows of the conv's output
    objective._ROWS.clear()
    sized = evaluate(net, data, x, y, loss, batch_size=40)
    assert rows == [1, 16, 16, 8, 16, 16, 8, 16, 4]  # one row measures the net, then 40, 40, 20 in passes
    assert torch.equal(torch.cat(seen[1:]), 2 * x)
    rows.clear()
    monkeypatch.delitem(objective.PASS_BYTES, "cpu")
    whole = evaluate(net, data, x, y, loss, batch_size=40)
    assert rows == [40, 40, 20]
    assert sized["loss"] == pytest.approx(whole["loss"], rel=1e-12) and sized["error"] == whole["error"]
    with torch.no_grad():
        out = net.eval()(2 * x)
    assert whole["loss"] == pytest.approx(float(loss.per_sample(out, y).mean()), rel=1e-12)
    assert whole["error"] == float((out.argmax(1) != y).double().mean())
