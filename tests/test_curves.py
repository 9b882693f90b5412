"""curve_connectivity (Garipov et al. 2018's trained Bézier curve) against closed forms and brute force: a ring of
minima where the line crosses the hole and the best quadratic curve (found by scipy on the exact integral) goes
around it; the midpoint control is the line; a net with itself has no barrier; BatchNorm endpoints are the nets'
own re-estimated losses. And every registered pair measure's value for a net with itself (registry-wide)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from genlab.losses import get_loss
from genlab.measures import MeasureData
from genlab.measures.connectivity import loss_and_error, mode_connectivity, reestimate_bn
from genlab.measures.curves import bezier, curve_connectivity, midpoint, train_control
from genlab.measures.pairs import compute_pair, get_pair_measure, list_pair_measures
from genlab.models import create_model
from genlab.registry import OptionsError, validate_options
from test_measures import toy_data, toy_net

CE = get_loss("cross_entropy")


class Ring(nn.Module):
    """f(x) = ‖w‖²·x, w ∈ R²: with MSE to target 1 at x = 1, L(w) = (‖w‖² − 1)², minimal on the unit circle."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))

    def forward(self, x):
        return (self.w ** 2).sum() * x


PHI = 0.3  # B at angle 0.3 rad, A at π: nearly opposite, so the chord passes 0.15 from the ring's centre
A_W, B_W = np.array([-1.0, 0.0]), np.array([math.cos(PHI), math.sin(PHI)])


def ring_data() -> MeasureData:
    one = torch.ones(4, 1, dtype=torch.float64)
    return MeasureData(one, one[:, 0], one, one[:, 0], get_loss("mse"), None, None)


def ring_loss(w: np.ndarray) -> np.ndarray:
    return ((w ** 2).sum(-1) - 1) ** 2


def ring_curve(c: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = np.asarray(t)[:, None]
    return (1 - t) ** 2 * A_W + 2 * t * (1 - t) * c + t ** 2 * B_W


def best_control() -> np.ndarray:
    """argmin_C ∫₀¹ L(θ(t)) dt by BFGS; L∘θ is a polynomial of degree 8 in t, so 5 Gauss–Legendre nodes
    integrate it exactly (brute force, independent of the measure's sampled training)."""
    from scipy.optimize import minimize

    nodes, weights = np.polynomial.legendre.leggauss(5)
    ts, ws = (nodes + 1) / 2, weights / 2
    res = minimize(lambda c: float((ws * ring_loss(ring_curve(c, ts))).sum()), (A_W + B_W) / 2 + [0, 0.01],
                   method="BFGS", options={"gtol": 1e-12})
    return res.x


def test_ring_the_trained_curve_goes_around_the_hole_as_the_best_bezier_curve_does():
    pytest.importorskip("scipy")
    points = 21
    t = np.linspace(0, 1, points)
    out = curve_connectivity(Ring(list(A_W)), Ring(list(B_W)), ring_data(), steps=300, lr=0.05, batch=2,
                             points=points)
    line = ring_loss((1 - t)[:, None] * A_W + t[:, None] * B_W)
    assert out["line_loss_barrier.train"] == pytest.approx(line.max(), rel=1e-12)  # the chord's closed form
    assert out["line_loss_barrier.train"] == pytest.approx(0.9558, abs=1e-4)  # L at distance ≈ cos(1.42)
    c = best_control()
    best = ring_loss(ring_curve(c, t))  # the best quadratic curve, on the same grid: barrier 0.0234
    assert best.max() == pytest.approx(0.0234, abs=1e-4)
    assert out["loss_barrier.train"] == pytest.approx(best.max(), abs=0.01)  # sampled SGD ends near it
    assert out["loss_barrier.train"] < out["line_loss_barrier.train"] / 20
    assert out["control_shift"] == pytest.approx(np.linalg.norm(c - (A_W + B_W) / 2), abs=0.03)  # ≈ 1.79
    assert out["mean_loss.train"] == pytest.approx(best.mean(), rel=0.05)
    assert out["endpoint_distance"] == pytest.approx(np.linalg.norm(B_W - A_W), rel=1e-12)
    assert out["path.loss.test.0"] == pytest.approx(0.0, abs=1e-15) and "error_barrier.train" not in out


def test_the_midpoint_control_is_the_line():
    """steps = 0: θ_C = ½(θ_A + θ_B), so (1−t)²A + t(1−t)(A+B) + t²B = (1−t)A + tB: the curve's values equal the
    line's and mode_connectivity's (BatchNorm re-estimated), to rounding; the barrier is ≥ 0."""
    a, b = toy_net(), toy_net()
    with torch.no_grad():
        for p in b.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel()),
                                     dtype=torch.float64))
    data = toy_data(a)
    out = curve_connectivity(a, b, data, steps=0, points=5)
    ref = mode_connectivity(a, b, data, points=5)
    assert out["control_shift"] == 0.0
    for k, v in ref.items():
        assert out[k] == pytest.approx(v, abs=1e-12) and out[f"line_{k}"] == v
    assert out["loss_barrier.train"] >= 0 and out["loss_barrier.train"] > 1e-3  # two different nets: a bump
    mid = midpoint(a, b)
    for k, p in a.named_parameters():
        assert torch.allclose(bezier(0.3, p, mid[k], dict(b.named_parameters())[k]),
                              torch.lerp(p, dict(b.named_parameters())[k], 0.3), atol=1e-15)


def test_a_net_with_itself_has_no_barrier_on_the_curve_or_the_line():
    net = toy_net()
    data = toy_data(net)
    for steps in (0, 30):
        out = curve_connectivity(net, copy.deepcopy(net), data, steps=steps, lr=1e-3, points=5)
        assert out["endpoint_distance"] == 0.0
        for k in ("loss_barrier.train", "loss_barrier.test", "error_barrier.train", "error_barrier.test"):
            assert out[k] == 0.0 and out[f"line_{k}"] == 0.0, (steps, k)
    assert out["control_shift"] > 0  # trained: the curve leaves the point to lower the loss ...
    assert out["mean_loss.train"] < out["line_mean_loss.train"]  # ... below the endpoints', hence barrier 0


def _fit(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 150) -> nn.Module:
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        CE.per_sample(net(x), y).mean().backward()
        opt.step()
    return net.eval()


def _mlp_pair(seed=0):
    """Two MLPs from different inits, each fitted (full-batch Adam) to the same 64 random-label rows: two minima
    with a barrier on the line between them (≈ 1.13 nats here)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 1, 12, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (64,), generator=gen)
    torch.manual_seed(seed)
    a, b = (_fit(create_model("mlp", (1, 12), 3, widths=[16]).double(), x, y) for _ in range(2))
    return a, b, MeasureData(x, y, x.flip(0), y.flip(0), CE, None, 3)


def test_same_seed_same_numbers_and_training_lowers_the_mean_loss_over_t():
    a, b, data = _mlp_pair()
    opts = dict(steps=40, lr=0.05, batch=16, points=7)
    one, two = curve_connectivity(a, b, data, **opts), curve_connectivity(a, b, data, **opts)
    assert one == two
    other = curve_connectivity(a, b, data, seed=1, **opts)
    assert other["control_shift"] != one["control_shift"]  # the seed drives the t and row draws
    assert one["line_loss_barrier.train"] > 1.0  # the line crosses a ridge ...
    assert one["mean_loss.train"] < one["line_mean_loss.train"] - 0.1  # ... the trained curve is lower on average
    assert one["loss_barrier.train"] < 0.8 * one["line_loss_barrier.train"]  # and at its worst point
    adam = curve_connectivity(a, b, data, optimizer="adam", **{**opts, "lr": 0.01})
    assert adam["mean_loss.train"] < adam["line_mean_loss.train"]
    before = copy.deepcopy(a.state_dict())
    train_control(a, b, data, data.x_train, data.y_train, steps=3, lr=0.1, optimizer="sgd", momentum=0.9,
                  batch=8, schedule="constant", seed=0)
    assert all(torch.equal(before[k], v) for k, v in a.state_dict().items())  # pure: the endpoints untouched


def test_conv4_with_batchnorm_endpoints_are_each_nets_own_reestimated_loss():
    torch.manual_seed(0)
    a, b = (create_model("conv4", (3, 16, 16), 10, width=4).double().eval() for _ in range(2))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(24, 3, 16, 16, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (24,), generator=gen)
    data = MeasureData(x, y, x[:12], y[:12], CE, None, 10)
    out = compute_pair(["curve_connectivity"], a, b, data,
                       options={"curve_connectivity": {"steps": 5, "batch": 8, "points": 3, "bn_batch": 8}})
    for j, net in ((0, a), (2, b)):
        own = copy.deepcopy(net)
        reestimate_bn(own, x, 8)
        for s, (xs, ys) in {"train": (x, y), "test": (x[:12], y[:12])}.items():
            loss, err = loss_and_error(own, data, xs, ys)
            assert out[f"curve_connectivity.path.loss.{s}.{j}"] == pytest.approx(loss, rel=1e-12)
            assert out[f"curve_connectivity.path.error.{s}.{j}"] == err
    assert out["curve_connectivity.control_shift"] > 0
    f32 = compute_pair(["curve_connectivity"], a, b, data, dtype=torch.float32,
                       options={"curve_connectivity": {"steps": 5, "batch": 8, "points": 3, "bn_batch": 8}})
    loss_keys = [k for k in out if ".loss." in k or "loss_barrier" in k]
    assert all(abs(f32[k] - out[k]) <= 1e-3 * max(1.0, abs(out[k])) for k in loss_keys)


def test_bad_options_name_the_field():
    a, b, data = _mlp_pair()
    with pytest.raises(ValueError, match="batch=1"):
        curve_connectivity(a, b, data, batch=1)
    with pytest.raises(ValueError, match="optimizer='lbfgs'"):
        curve_connectivity(a, b, data, optimizer="lbfgs")
    with pytest.raises(OptionsError, match="steps"):
        validate_options(get_pair_measure("curve_connectivity"), "curve_connectivity", {"steps": -1})
    with pytest.raises(ValueError, match="shapes differ"):
        curve_connectivity(nn.Linear(2, 1), nn.Linear(3, 1), data)


# ---- every registered pair measure ---------------------------------------------------------------------------

IDENTITY = {  # a net paired with itself: key suffix → the value every such key must take
    "cka": {"": 1.0},
    "mode_connectivity": {"_barrier.train": 0.0, "_barrier.test": 0.0},
    "curve_connectivity": {"_barrier.train": 0.0, "_barrier.test": 0.0, "endpoint_distance": 0.0},
}
FAST = {"curve_connectivity": {"steps": 10, "lr": 1e-3, "points": 3}, "mode_connectivity": {"points": 3}}


def test_every_pair_measure_has_its_identity_value():
    assert sorted(IDENTITY) == sorted(list_pair_measures())


@pytest.mark.parametrize("name", list_pair_measures())
def test_every_pair_measure_of_a_net_with_itself(name):
    """Its identity value on every matching key (1 for similarities, 0 for barriers), finite everywhere, the
    models unmodified."""
    net = toy_net()
    data = toy_data(net)
    before = copy.deepcopy(net.state_dict())
    out = compute_pair([name], net, copy.deepcopy(net), data, options={name: FAST.get(name, {})})
    assert out and all(math.isfinite(v) for v in out.values())
    checked = 0
    for suffix, want in IDENTITY[name].items():
        for k in (k for k in out if k.endswith(suffix)):
            assert out[k] == pytest.approx(want, abs=1e-12), k
            checked += 1
    assert checked > 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_barrier_path_draws_the_curve_solid_and_the_segment_dashed():
    import pandas as pd

    from genlab.figures import draw

    a, b, data = _mlp_pair()
    pair = compute_pair(["curve_connectivity"], a, b, data,
                        options={"curve_connectivity": {"steps": 20, "batch": 16, "points": 5}})
    res = pd.DataFrame([{"run_id": f"r{s}", "seed": s, **pair} for s in (0, 1)])
    fig = draw({"name": "barrier_path", "measure": "curve_connectivity", "quantity": "loss", "split": "train"},
               None, res)
    solid, dashed = fig.axes[0].get_lines()
    assert solid.get_linestyle() == "-" and dashed.get_linestyle() == "--"
    assert list(solid.get_ydata()) == [pair[f"curve_connectivity.path.loss.train.{j}"] for j in range(5)]
    assert list(dashed.get_ydata()) == [pair[f"curve_connectivity.line_path.loss.train.{j}"] for j in range(5)]
    with pytest.raises(ValueError, match="no result column matches"):  # the line's figure needs its own measure
        draw({"name": "barrier_path", "quantity": "loss"}, None, res)


def test_a_spec_measures_curves_on_its_seed_pairs_and_checks_their_options(tmp_path):
    """[pairs] measures = ["curve_connectivity"]: options checked when the spec loads (naming the option), values
    stored with both run ids and read back as each run's config-point mean."""
    from genlab.executors.pairs import measure_pairs
    from genlab.spec import SpecError
    from genlab.spec.loader import parse
    from genlab.spec.pairs import PairSpec
    from genlab.store import Store
    from test_pairs import BASE, _train_all

    opts = {"steps": 5, "batch": 16, "points": 3}
    spec = {**BASE, "seeds": [0, 1], "sweep": {}, "pairs": {"measures": ["curve_connectivity"],
                                                             "measure_options": {"curve_connectivity": opts}}}
    for bad, match in [({"steps": -1}, "steps"), ({"optimizer": "lbfgs"}, "optimizer"), ({"step": 5}, "step")]:
        with pytest.raises(SpecError, match=match):
            parse({**spec, "pairs": {**spec["pairs"], "measure_options": {"curve_connectivity": bad}}})
    store, exp = Store(tmp_path), parse(spec)
    _train_all(store, exp)
    done = measure_pairs(store, "pe", PairSpec.model_validate(exp.pairs))
    assert len(done) == 1
    (values,) = done.values()
    assert values["curve_connectivity.endpoint_distance"] > 0
    for j in (0, 2):  # t = 0, 1: the same two networks on the curve and on the line
        assert values[f"curve_connectivity.path.loss.test.{j}"] == values[f"curve_connectivity.line_path.loss.test.{j}"]
    results = store.results("pe")
    assert (results["curve_connectivity.line_loss_barrier.test"]
            == values["curve_connectivity.line_loss_barrier.test"]).all()
