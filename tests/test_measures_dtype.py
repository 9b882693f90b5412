"""The fast paths of the measures keep their values: float32 against float64 (same draws), one shared call
against separate calls, Lanczos against the exact top eigenvalue where power iteration stops low, the
sharpness search at an exact minimum, and the `record.measure_dtype` / `--dtype` choices."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlab.measures import MeasureData, compute, list_measures, parse_dtype
from genlab.measures.hessian import HessianConfig, hessian
from genlab.measures.lanczos import lanczos_extreme
from genlab.measures.objective import params_of
from genlab.measures.pacbayes import FlatnessConfig, draws
from genlab.measures.sharpness import SharpnessConfig, sharpness
from genlab.losses import get_loss
from test_measures import toy_data, toy_net

MSE = get_loss("mse")
REL32 = 1e-3  # float32 against float64: relative ...
ABS32 = 1e-6  # ... or absolute (values near 0: a margin of 1e-3, a null-space norm of 1e-16)


def test_every_measure_agrees_in_float32_and_float64():
    """The same seeds give the same draws in both dtypes, so even the searches agree (before, the PAC-Bayes
    σ moved by 5 % on this net: 0.0278 → 0.0264, from f32-drawn noise and a 0-1 rate rounded above 0.1)."""
    net = toy_net()
    data = toy_data(net)
    f64 = compute(list_measures(), net, data, dtype=torch.float64)
    f32 = compute(list_measures(), net, data, dtype=torch.float32)
    assert set(f32) == set(f64)
    off = {k: (f64[k], f32[k]) for k in f64 if abs(f32[k] - f64[k]) > max(REL32 * abs(f64[k]), ABS32)}
    assert not off, off
    for k in ("pacbayes_flatness.sigma", "pacbayes_mag_flatness.sigma"):  # the same draws: the same tests
        assert f32[k] == pytest.approx(f64[k], rel=2.0 ** -14)


def test_noise_draws_are_the_same_in_both_dtypes():
    net = toy_net()
    w64 = params_of(net)
    w32 = {k: v.float() for k, v in w64.items()}
    z64, z32 = draws(w64, FlatnessConfig()), draws(w32, FlatnessConfig())
    for k in w64:
        assert z32[k].dtype == torch.float32 and z64[k].shape == (8, *w64[k].shape)
        assert torch.equal(z32[k], z64[k].float())  # one float64 draw, cast
        assert torch.equal(z64[k][1::2], -z64[k][::2])  # antithetic pairs


def test_one_call_shares_work_without_changing_values():
    """compute() shares forward passes, folded layers, spectral norms and searches within a call: the values
    are exactly those of one call per measure."""
    net = toy_net()
    data = toy_data(net)
    together = compute(list_measures(), net, data)
    alone = {}
    for name in list_measures():
        alone.update(compute([name], net, data))
    assert together == alone


def test_lanczos_finds_the_top_eigenvalue_where_power_iteration_stops_low():
    """H = diag(1, 0.999, 298 values in [0, 0.9)): power iteration's rule (stop when the Rayleigh quotient
    moves < 1e-3) stops ~0.5 % low; Lanczos at the default tolerance is within 1e-6."""
    gen = torch.Generator().manual_seed(0)
    lam = torch.cat([torch.tensor([1.0, 0.999], dtype=torch.float64), torch.rand(298, generator=gen,
                                                                                  dtype=torch.float64) * 0.9])
    start = torch.randn(300, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    v, old = start, 0.0  # the power iteration hessian.py used before, at its default rtol 1e-3
    for it in range(1, 51):
        v = v / v.norm()
        new = float(v @ (lam * v))
        if it > 1 and abs(new - old) <= 1e-3 * abs(new):
            break
        old, v = new, lam * v
    assert 1 - new > 1e-3

    cfg = HessianConfig()
    top, steps = lanczos_extreme(lambda u: lam * u, start, rtol=cfg.rtol, max_iter=cfg.iterations,
                                 which="magnitude")
    assert top == pytest.approx(1.0, rel=1e-6) and steps < cfg.iterations
    neg, _ = lanczos_extreme(lambda u: -lam * u, start, rtol=cfg.rtol, max_iter=cfg.iterations, which="magnitude")
    assert neg == pytest.approx(-1.0, rel=1e-6)  # the eigenvalue of largest |λ|, with its sign


def diagonal_quadratic(curvatures: torch.Tensor) -> tuple[nn.Module, MeasureData]:
    """f(x) = w·x, one output, MSE to 0 on x_j = s_j e_j: L(w) = (1/n) Σ_j s_j² w_j², H = diag(2 s_j²/n)."""
    n = len(curvatures)
    net = nn.Linear(n, 1, bias=False).double()
    x = torch.diag(torch.sqrt(curvatures * n / 2))
    return net, MeasureData(x, torch.zeros(n, dtype=torch.float64), x, torch.zeros(n, dtype=torch.float64), MSE)


def test_hessian_measure_on_close_top_eigenvalues():
    lam = torch.cat([torch.tensor([1.0, 0.999], dtype=torch.float64),
                     torch.rand(98, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.9])
    net, data = diagonal_quadratic(lam)
    with torch.no_grad():
        net.weight.fill_(0.3)
    out = hessian(net, data, cfg=HessianConfig(max_samples=None))
    assert out["top_eigenvalue"] == pytest.approx(1.0, rel=1e-6)


def test_sharpness_at_an_exact_minimum_matches_the_closed_form():
    """At w = 0 of L(w) = (1/n) Σ s_j² w_j² every gradient is exactly 0: sign(0) = 0 kept the search at ν = 0
    (ζ = 0); with ties broken at random each coordinate walks to a corner, and max L = (1/n) Σ s_j² r_j²."""
    curv = torch.linspace(0.5, 2.0, 12, dtype=torch.float64)
    net, data = diagonal_quadratic(curv)
    with torch.no_grad():
        net.weight.zero_()
    alpha = 0.01
    radius = alpha * (net.weight.detach().abs() + 1)  # (1, n)
    worst = float((curv / 2 * radius[0] ** 2).sum())  # (1/n) Σ s_j² r_j² with s_j² = curv_j n / 2
    out = sharpness(net, data, cfg=SharpnessConfig(alpha=alpha, iterations=8, max_samples=None))
    assert out["loss"] == 0.0
    assert out["max_loss"] == pytest.approx(worst, rel=1e-12)
    assert out["zeta"] == pytest.approx(worst, rel=1e-12) and out["zeta"] > 0


def test_dtype_choices_in_the_spec_and_entry_points():
    from genlab.spec import RunConfig

    base = {"experiment": "e", "data": {"name": "separable", "n_train": 8}, "model": {"name": "linear"},
            "record": {"measures": ["num_params"]}}
    default = RunConfig.model_validate(base)
    assert default.record.measure_dtype == "float32" and "measure_dtype" not in default.canonical_json()
    f64 = RunConfig.model_validate({**base, "record": {"measures": ["num_params"], "measure_dtype": "float64"}})
    assert f64.run_id != default.run_id
    with pytest.raises(Exception, match="measure_dtype"):
        RunConfig.model_validate({**base, "record": {"measure_dtype": "float16"}})
    assert parse_dtype("float64") is torch.float64
    with pytest.raises(ValueError, match="float32"):
        parse_dtype("half")
    assert math.isfinite(compute(["margin_q5"], toy_net(), toy_data(toy_net()), dtype=torch.float32)["margin_q5"])


def test_pacbayes_draws_batched_by_vmap_give_the_same_sigma(monkeypatch):
    """The CUDA path (draws in vmap chunks) and the CPU path (one by one) find the same σ."""
    from genlab.measures import pacbayes

    net = toy_net()
    data = toy_data(net)
    loop = compute(["pacbayes_flatness", "pacbayes_mag_flatness"], net, data, dtype=torch.float64)
    monkeypatch.setitem(pacbayes.DRAW_CHUNK, "cpu", 3)  # chunks of 3, 3, 2 of the 8 draws
    chunked = compute(["pacbayes_flatness", "pacbayes_mag_flatness"], net, data, dtype=torch.float64)
    assert chunked == loop


def fitted_bn_net() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """(a small float64 conv net with BN, in eval mode with its running statistics, fitted a little on (xs, ys);
    xs (48, 3, 16, 16), ys (48,) of 3 classes): noise can raise its error by the PAC-Bayes target."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 3)).double()
    gen = torch.Generator().manual_seed(1)
    xs = torch.randn(48, 3, 16, 16, generator=gen, dtype=torch.float64)
    ys = torch.randint(0, 3, (48,), generator=gen)
    opt = torch.optim.SGD(net.parameters(), lr=0.2)
    for _ in range(60):
        opt.zero_grad()
        get_loss("cross_entropy")(net(xs), ys).backward()
        opt.step()
    return net.eval(), xs, ys


def test_image_batches_pass_channels_last_with_the_same_values(monkeypatch):
    """The searches and the Hessian read ≥ 16×16 image batches channels-last on a CPU (objective.pass_layout):
    the layout is taken, smaller maps and other tensors are left alone, and every measure that reads the
    training subset gives the same values as with NCHW passes (float64: to rounding)."""
    from genlab.measures import objective

    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    assert objective.pass_layout(x).is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(objective.pass_layout(x), x)
    small = torch.randn(4, 3, 8, 8)
    one_map = x[:, 0]  # 3-D: left as is
    assert objective.pass_layout(small) is small and objective.pass_layout(one_map) is one_map
    flat = torch.randn(4, 10)
    assert objective.pass_layout(flat) is flat

    net, xs, ys = fitted_bn_net()
    data = MeasureData(xs, ys, xs, ys, get_loss("cross_entropy"), None, 3)
    names = ["pacbayes_flatness", "pacbayes_mag_flatness", "sharpness", "hessian"]
    layouts = []
    net[0].register_forward_hook(lambda m, i, o: layouts.append(i[0].is_contiguous(
        memory_format=torch.channels_last) and not i[0].is_contiguous()))
    fast = compute(names, net, data, dtype=torch.float64)
    assert layouts and all(layouts)
    monkeypatch.setitem(objective.CHANNELS_LAST_MIN_PIXELS, "cpu", 10 ** 9)
    layouts.clear()
    plain = compute(names, net, data, dtype=torch.float64)
    assert layouts and not any(layouts)
    assert set(fast) == set(plain)
    for k in plain:
        assert fast[k] == pytest.approx(plain[k], rel=1e-9, abs=1e-12, nan_ok=True), k


def test_passes_are_sized_by_the_largest_activation_with_the_same_values(monkeypatch):
    """On a CPU the measures' passes take as many rows as keep the largest activation near PASS_BYTES
    (objective.rows_per_pass): the count is that quotient, clamped to PASS_ROWS, measured once per model and row
    shape; small sets are one pass without measuring; other devices keep LOSS_BATCH; and every measure that
    passes over the training subset gives the same values (float64: to rounding) whatever the rows per pass."""
    from genlab.measures import objective

    net, xs, ys = fitted_bn_net()
    rows_seen: list[int] = []
    net[0].register_forward_hook(lambda m, i, o: rows_seen.append(len(i[0])))
    largest = 6 * 16 * 16 * 8  # bytes a row: the first conv's (BN's, ReLU's) output, float64

    monkeypatch.setitem(objective.PASS_BYTES, "cpu", 20 * largest + 7)
    assert objective.rows_per_pass(net, xs) == 20 and rows_seen == [1]  # one one-row pass measures it
    assert objective.rows_per_pass(net, xs[:30]) == 20 and rows_seen == [1]  # then the memo answers
    assert objective.rows_per_pass(net, xs[:16]) == 16 and rows_seen == [1]  # ≤ PASS_ROWS[0] rows: one pass
    rows_seen.clear()
    params = objective.params_of(net)
    data = MeasureData(xs, ys, xs, ys, get_loss("cross_entropy"), None, 3)
    v20 = objective.value_of(net, data, xs, ys, params)
    assert rows_seen == [20, 20, 8]
    names = ["pacbayes_flatness", "pacbayes_mag_flatness", "sharpness", "hessian", "landscape"]
    small = compute(names, net, data, dtype=torch.float64)

    monkeypatch.setitem(objective.PASS_BYTES, "cpu", 1)  # clamped up to PASS_ROWS[0] rows
    objective._ROWS.clear()
    assert objective.rows_per_pass(net, xs) == objective.PASS_ROWS[0]
    monkeypatch.setitem(objective.PASS_BYTES, "cpu", 10 ** 12)  # clamped down to PASS_ROWS[1]: one pass here
    objective._ROWS.clear()
    assert objective.rows_per_pass(net, xs) == objective.PASS_ROWS[1]
    rows_seen.clear()
    v48 = objective.value_of(net, data, xs, ys, params)
    assert rows_seen == [48] and v48 == pytest.approx(v20, rel=1e-12)
    whole = compute(names, net, data, dtype=torch.float64)
    assert set(whole) == set(small)
    for k in whole:
        assert whole[k] == pytest.approx(small[k], rel=1e-9, abs=1e-12, nan_ok=True), k

    meta = torch.empty(100, 3, 16, 16, device="meta")
    assert objective.rows_per_pass(net, meta) == objective.LOSS_BATCH  # no PASS_BYTES entry: as before
