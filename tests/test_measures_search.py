"""Search-based measures against closed forms: sharpness on a quadratic loss, PAC-Bayes σ where E[L(w+u)] is
known, and the Hessian's top eigenvalue and trace against the explicit Hessian of a tiny model."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.func import functional_call

from genlab.measures import MeasureData
from genlab.measures.hessian import HessianConfig, hessian
from genlab.measures import pacbayes
from genlab.measures.pacbayes import FlatnessConfig, largest_sigma, pacbayes_flatness, pacbayes_mag_flatness
from genlab.measures.sharpness import SharpnessConfig, sharpness
from genlab.losses import get_loss

MSE = get_loss("mse")


def quadratic(n: int = 12, c: int = 5, seed: int = 0) -> tuple[nn.Module, MeasureData]:
    """f(x) = W x on x = the n basis vectors, MSE to one-hot labels: L(W) = (1/n) Σ_{j,k} (W_jk − T_jk)²,
    a separable quadratic with diagonal Hessian (2/n) I."""
    gen = torch.Generator().manual_seed(seed)
    net = nn.Linear(n, c, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(torch.randn(c, n, generator=gen, dtype=torch.float64))
    x = torch.eye(n, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=gen)
    return net, MeasureData(x, y, x, y, MSE, None, c)


def _target(net: nn.Module, data: MeasureData) -> torch.Tensor:
    return nn.functional.one_hot(data.y_train, net.out_features).T.to(torch.float64)  # (c, n) = T


def test_sharpness_matches_closed_form_on_a_quadratic():
    net, data = quadratic()
    alpha = 0.05
    w = net.weight.detach()
    d = w - _target(net, data)  # (c, n)
    n = data.n_train
    base = float((d ** 2).sum()) / n
    worst = float(((d.abs() + alpha * (w.abs() + 1)) ** 2).sum()) / n  # each coordinate at its far corner
    out = sharpness(net, data, cfg=SharpnessConfig(alpha=alpha, iterations=8, step=0.25, restarts=3,
                                                   max_samples=None))
    assert out["loss"] == pytest.approx(base, rel=1e-12)
    assert out["max_loss"] == pytest.approx(worst, rel=1e-9)
    assert out["zeta"] == pytest.approx((worst - base) / (1 + base), rel=1e-9)
    assert out["last_step_gain"] == 0.0  # converged: the corner is a fixed point of the projected ascent


def test_pacbayes_sigma_matches_closed_form():
    """E_u L(w + u) − L(w) = σ² P / n for u ~ N(0, σ²I) (P = c·n weights), so σ* = √(target·n/P);
    magnitude-aware: (1/n) Σ_i (σ'² w_i² + ε²), so σ'* = √((target·n − P ε²)/Σ w_i²)."""
    net, data = quadratic(n=40, c=50)
    n, p = 40, 40 * 50
    target, eps = 0.01, 1e-3
    cfg = FlatnessConfig(target=target, quantity="loss", mc_samples=64, search_depth=30, magnitude_eps=eps,
                         max_samples=None, seed=123)  # not the seed that drew w
    sigma = pacbayes_flatness(net, data, cfg=cfg)["sigma"]
    assert sigma == pytest.approx(math.sqrt(target * n / p), rel=2e-2)  # Monte Carlo: 64 draws of 2000 weights
    w2 = float((net.weight.detach() ** 2).sum())
    mag = pacbayes_mag_flatness(net, data, cfg=cfg)["sigma"]
    assert mag == pytest.approx(math.sqrt((target * n - p * eps ** 2) / w2), rel=2e-2)


def test_bisection_finds_the_crossing_to_the_asked_precision():
    for crossing in (1e-5, 0.3, 70.0):
        got = largest_sigma(lambda s: s ** 2, crossing ** 2, start=0.1, depth=40)
        assert got == pytest.approx(crossing, rel=1e-10)
    with pytest.raises(ValueError, match="target"):
        largest_sigma(lambda s: 0.0, 1.0, start=0.1, depth=5)


def test_pacbayes_error_test_stops_early_with_the_full_means_answer():
    """For the 0-1 error a σ test stops adding draws once the running mean is past the target. At every σ of a
    grid its answer is the one the mean over all draws gives (and some tests did stop early), and the search
    returns exactly the σ a search on the full mean returns."""
    net, data = _separable_linear(200)
    cfg = FlatnessConfig(target=0.1, mc_samples=8, search_depth=20, max_samples=None)
    w = {k: p.detach() for k, p in net.named_parameters()}
    z = pacbayes.draws(w, cfg)
    f = pacbayes._objective(net, data, cfg)
    base = float(f(w))
    assert base == 0.0

    def full_rise(sigma: float) -> float:  # the mean over all 8 draws, summed in draw order as the test sums
        total = 0.0
        for d in range(8):
            total += float(f({k: w[k] + sigma * z[k][d] for k in w}))
        return total / 8 - base

    calls = []
    net.register_forward_hook(lambda *_: calls.append(1))
    test = pacbayes._mean_test(net, data, cfg, w, z, lambda k, s: s, 1)
    stopped = 0
    for sigma in torch.logspace(-3, 1, 41).tolist():
        calls.clear()
        answer, used = test(sigma), len(calls)  # forward passes = draws read
        assert answer == (full_rise(sigma) <= cfg.target), sigma
        stopped += used < 8
    assert stopped > 0  # large σ: the first draws alone put the mean past the target
    searched = pacbayes.flatness_sigma(net, data, cfg, magnitude=False)  # ITP, on early-exit estimates
    bisected = pacbayes.largest_true(lambda s: full_rise(s) <= cfg.target, cfg.sigma_start, cfg.search_depth, "")
    assert searched == pytest.approx(bisected, rel=2.0 ** -cfg.search_depth)  # within bisection's final bracket
    assert full_rise(searched * (1 - 2.0 ** -cfg.search_depth)) <= cfg.target < full_rise(
        searched * (1 + 2.0 ** -cfg.search_depth))  # and it is the crossing of the full mean


def _counted(g):
    calls = []

    def f(s):
        calls.append(s)
        return g(s)
    return f, calls


@pytest.mark.parametrize("name, g", [
    ("square", lambda s: s ** 2 - 0.09), ("tanh", lambda s: math.tanh(5 * (s - 0.37))),
    ("exp", lambda s: math.exp(s) - 1.5), ("steps of 1e-3", lambda s: math.floor(s * 1000) / 1000 - 0.3),
    ("steps of 1e-2", lambda s: math.floor(s * 100) / 100 - 0.3), ("jump", lambda s: -1.0 if s < 0.123 else 1.0)])
def test_itp_matches_bisection_within_its_bracket_in_at_most_one_more_test(name, g):
    """ITP (largest_root) vs the bisection it replaces (largest_true), same bracket and depth: the two answers
    lie within one final bracket (relative 2^-depth), ITP takes at most one test more (its n0 = 1) and, on
    a smooth crossing, about half as many."""
    depth = 15
    fb, bis_calls = _counted(lambda s: g(s) <= 0)
    fi, itp_calls = _counted(g)
    bis = pacbayes.largest_true(fb, 0.1, depth, "no crossing")
    got = pacbayes.largest_root(fi, 0.1, depth, "no crossing")
    assert got == pytest.approx(bis, rel=2.0 ** -depth)
    assert g(got * (1 - 2.0 ** -depth)) <= 0 < g(got * (1 + 2.0 ** -depth))
    assert len(itp_calls) <= len(bis_calls) + 1
    if name in ("square", "tanh", "exp"):
        assert len(itp_calls) <= len(bis_calls) // 2 + 1, (len(itp_calls), len(bis_calls))


def test_itp_survives_non_finite_values_and_reports_no_crossing():
    got = pacbayes.largest_root(lambda s: math.inf if s > 0.3 else -1.0, 0.1, 20, "none")
    assert got == pytest.approx(0.3, rel=2.0 ** -20)
    with pytest.raises(ValueError, match="none"):
        pacbayes.largest_root(lambda s: -1.0, 0.1, 5, "none")


@pytest.mark.parametrize("magnitude", [False, True])
def test_pacbayes_itp_search_equals_the_bisection_search(magnitude):
    """flatness_sigma (ITP on the Monte Carlo mean, early exits included) against the bisection search it
    replaced, on a small trained classifier: the same σ to bisection's precision."""
    net, data = _trained_tiny_mlp()
    cfg = FlatnessConfig(target=0.1, mc_samples=8, search_depth=15, max_samples=None)
    w = {k: p.detach() for k, p in net.named_parameters()}
    z = pacbayes.draws(w, cfg)
    eps2 = cfg.magnitude_eps ** 2
    std = (lambda k, s: torch.sqrt(s ** 2 * w[k] ** 2 + eps2)) if magnitude else (lambda k, s: s)
    test = pacbayes._mean_test(net, data, cfg, w, z, std, 1)
    bisected = pacbayes.largest_true(test, cfg.sigma_start, cfg.search_depth, "")
    got = pacbayes.flatness_sigma(net, data, cfg, magnitude)
    assert got == pytest.approx(bisected, rel=2.0 ** -cfg.search_depth)


@pytest.mark.parametrize("name, g", [
    ("square", lambda s: s ** 2 - 0.09), ("tanh", lambda s: math.tanh(5 * (s - 0.37))),
    ("steps of 1e-3", lambda s: math.floor(s * 1000) / 1000 - 0.3)])
def test_a_deviation_tolerance_stops_at_the_first_sigma_within_it(name, g):
    """gtol > 0 (FlatnessConfig.deviation_tol): the search returns the first σ it tests with |g(σ)| ≤ gtol —
    the tests before it all outside the tolerance — in no more tests than without the stop."""
    gtol = 0.01
    f, calls = _counted(g)
    got = pacbayes.largest_root(f, 0.1, 15, "none", gtol=gtol)
    assert abs(g(got)) <= gtol and got == calls[-1]
    assert all(abs(g(s)) > gtol for s in calls[:-1])
    full, full_calls = _counted(g)
    pacbayes.largest_root(full, 0.1, 15, "none")
    assert len(calls) <= len(full_calls)
    at_start, first = _counted(lambda s: s - 0.1)  # the first σ tested is within: no other test
    assert pacbayes.largest_root(at_start, 0.1, 15, "none", gtol=gtol) == 0.1 and first == [0.1]


@pytest.mark.parametrize("magnitude", [False, True])
def test_pacbayes_deviation_tol_gives_a_sigma_whose_full_mean_rise_is_within_it(magnitude):
    """Jiang et al.'s stopping rule on the 0-1 error: the σ returned has a rise (over all draws, not the early
    exit's partial mean) within deviation_tol of the target, and the search takes fewer forward passes than
    without the rule."""
    net, data = _trained_tiny_mlp()
    cfg = FlatnessConfig(target=0.1, mc_samples=8, search_depth=15, max_samples=None, deviation_tol=0.02)
    w = {k: p.detach() for k, p in net.named_parameters()}
    z = pacbayes.draws(w, cfg)
    eps2 = cfg.magnitude_eps ** 2
    std = (lambda k, s: torch.sqrt(s ** 2 * w[k] ** 2 + eps2)) if magnitude else (lambda k, s: s)
    f = pacbayes._objective(net, data, cfg)
    base = float(f(w))
    calls = []
    handle = net.register_forward_hook(lambda *_: calls.append(1))
    got = pacbayes.flatness_sigma(net, data, cfg, magnitude)
    with_tol = len(calls)
    calls.clear()
    precise = pacbayes.flatness_sigma(net, data, replace(cfg, deviation_tol=0.0), magnitude)
    handle.remove()
    rise = sum(float(f({k: w[k] + std(k, got) * z[k][d] for k in w})) for d in range(8)) / 8 - base
    assert abs(rise - cfg.target) <= cfg.deviation_tol
    assert with_tol < len(calls)
    assert got == pytest.approx(precise, rel=0.5)  # the same crossing, coarsely (the rise is steep here)


def test_an_early_exit_never_reads_as_within_the_deviation_tolerance():
    """With deviation_tol the early exit waits until the running mean is past target + tol: a σ the excess
    function calls within the tolerance has had all its draws read (its value is the full mean's), and one
    that stopped early is outside the tolerance by the full mean too."""
    net, data = _separable_linear(200)
    cfg = FlatnessConfig(target=0.1, mc_samples=8, max_samples=None, deviation_tol=0.03)
    w = {k: p.detach() for k, p in net.named_parameters()}
    z = pacbayes.draws(w, cfg)
    f = pacbayes._objective(net, data, cfg)
    excess = pacbayes._mean_excess(net, data, cfg, w, z, lambda k, s: s, 1)
    assert float(f(w)) == 0.0  # separable: the rise is the mean error itself
    within = 0
    for sigma in torch.linspace(0.05, 1.5, 300).tolist():
        got = excess(sigma)
        full = sum(float(f({k: w[k] + sigma * z[k][d] for k in w})) for d in range(8)) / 8 - cfg.target
        assert (abs(got) <= cfg.deviation_tol) == (abs(full) <= cfg.deviation_tol), sigma
        if abs(got) <= cfg.deviation_tol:
            within += 1
            assert got == full
    assert within > 0


def _separable_linear(n: int) -> tuple[nn.Module, MeasureData]:
    """A linear classifier with no training errors on n Gaussian points in 5-D."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    direction = torch.randn(5, generator=gen, dtype=torch.float64)
    net = nn.Linear(5, 2, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(torch.stack([direction, -direction]))
    y = (x @ direction < 0).long()
    return net, MeasureData(x, y, x, y, get_loss("cross_entropy"), None, 2)


def test_pacbayes_deviation_tol_must_be_a_finite_non_negative_number():
    net, data = _tiny_mlp()
    for bad in (-0.01, math.nan, math.inf):
        with pytest.raises(ValueError, match="deviation_tol"):
            pacbayes_flatness(net, data, cfg=FlatnessConfig(deviation_tol=bad, max_samples=None))


def test_the_default_precision_sits_within_the_precise_searchs_bracket():
    """The default search (depth 8) against depth 15 on a trained classifier: within 2^-8 relative — the
    default's bracket — and in fewer forward passes."""
    net, data = _trained_tiny_mlp()
    calls = []
    net.register_forward_hook(lambda *_: calls.append(1))
    default = FlatnessConfig(max_samples=None)
    for magnitude in (False, True):
        calls.clear()
        got = pacbayes.flatness_sigma(net, data, default, magnitude)
        passes = len(calls)
        calls.clear()
        precise = pacbayes.flatness_sigma(net, data, replace(default, search_depth=15), magnitude)
        assert got == pytest.approx(precise, rel=2.0 ** -default.search_depth)
        assert passes < len(calls)


def _trained_tiny_mlp() -> tuple[nn.Module, MeasureData]:
    net, data = _tiny_mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        data.loss(net(data.x_train), data.y_train).backward()
        opt.step()
    return net, data


def _tiny_mlp() -> tuple[nn.Module, MeasureData]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(25, 3, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (25,), generator=gen)
    return net, MeasureData(x, y, x, y, get_loss("cross_entropy"), None, 2)


def explicit_hessian(net: nn.Module, data: MeasureData) -> torch.Tensor:
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    def loss(v: torch.Tensor) -> torch.Tensor:
        parts, i = {}, 0
        for name, shape in zip(names, shapes):
            k = math.prod(shape)
            parts[name], i = v[i:i + k].reshape(shape), i + k
        return data.loss(functional_call(net, parts, (data.x_train,)), data.y_train)

    return torch.autograd.functional.hessian(loss, flat)


def test_hessian_top_eigenvalue_and_trace_match_explicit_hessian():
    net, data = _tiny_mlp()
    h = explicit_hessian(net, data)
    eig = torch.linalg.eigvalsh(h)
    top = float(eig[eig.abs().argmax()])
    out = hessian(net, data, cfg=HessianConfig(iterations=20000, rtol=1e-14, trace_samples=400, max_samples=None))
    assert out["top_eigenvalue"] == pytest.approx(top, rel=1e-6)
    tr = float(torch.trace(h))
    assert abs(out["trace"] - tr) < 5 * out["trace_stderr"]  # Hutchinson is unbiased; check within 5 s.e.


def test_hutchinson_is_exact_for_a_diagonal_hessian():
    net, data = quadratic(n=10, c=3)
    out = hessian(net, data, cfg=HessianConfig(trace_samples=3, max_samples=None))
    p, n = 30, 10
    assert out["trace"] == pytest.approx(2 * p / n, rel=1e-12)  # H = (2/n) I
    assert out["top_eigenvalue"] == pytest.approx(2 / n, rel=1e-9)
