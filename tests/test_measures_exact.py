"""Exactness: measures against brute force (path enumeration, unrolled conv matrices, explicit Hessians,
closed forms), to 1e-6 relative in float64 wherever an exact value exists."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from genlab.measures import MeasureData, compute, get_measure
from genlab.measures.fold import fold_batchnorm
from genlab.measures.layers import operator_matrix, trace
from genlab.measures.margins import gamma_margin, margins
from genlab.measures.spectral import conv_spectral_norm, operator_frobenius_norm, operator_l21_rows
from genlab.losses import get_loss

RTOL = 1e-6
CE = get_loss("cross_entropy")


def data_for(net: nn.Module, in_shape: tuple[int, ...], n: int = 30, seed: int = 0) -> MeasureData:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *in_shape, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        y = net(x).argmax(1)
    return MeasureData(x, y, x, y, CE, None, int(net(x[:1]).shape[1]))


def mlp(sizes: list[int], bias: bool = False, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b, bias=bias), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).double()


def convnet(seed: int = 0) -> nn.Module:
    """1×4×4 → conv(2, 3×3, pad 1) → ReLU → conv(2, 3×3, stride 2, pad 1) → ReLU → linear(8 → 3), bias-free."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.ReLU(),
                         nn.Conv2d(2, 2, 3, stride=2, padding=1, bias=False), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8, 3, bias=False)).double()


def brute_path_sum(mats: list[torch.Tensor], p: float, consts: list[float] | None = None) -> float:
    """Σ over all index tuples (j_0, …, j_d) of ∏_i c_i |A_i[j_i, j_{i-1}]|^p, by explicit enumeration."""
    consts = consts or [1.0] * len(mats)
    dims = [mats[0].shape[1]] + [m.shape[0] for m in mats]
    total = 0.0
    for path in itertools.product(*[range(d) for d in dims]):
        prod = 1.0
        for i, a in enumerate(mats):
            prod *= consts[i] * abs(float(a[path[i + 1], path[i]])) ** p
            if prod == 0.0:
                break
        total += prod
    return total


def unrolled(net: nn.Module, in_shape: tuple[int, ...]) -> list[torch.Tensor]:
    return [operator_matrix(op) for op in trace(net, torch.zeros(1, *in_shape, dtype=torch.float64))]


# ---- path norms ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,in_shape", [(lambda: mlp([4, 5, 3, 3]), (4,)), (convnet, (1, 4, 4))])
def test_path_norms_equal_enumeration(make, in_shape):
    net = make()
    data = data_for(net, in_shape)
    mats = unrolled(net, in_shape)
    for p, name in [(1.0, "log_l1_path_norm"), (2.0, "log_l2_path_norm")]:
        want = math.log(brute_path_sum(mats, p)) / p
        assert get_measure(name)(net, data) == pytest.approx(want, rel=RTOL)
    from genlab.measures.paths import log_path_norm
    assert log_path_norm(net, data, 3.0) == pytest.approx(math.log(brute_path_sum(mats, 3.0)) / 3, rel=RTOL)


def test_path_norm_through_residual_block_and_biases():
    """x → [conv → ReLU → conv] + x → ReLU → flatten → linear: paths through the branch and the shortcut."""
    torch.manual_seed(3)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(2, 2, 3, padding=1, bias=False)
            self.c2 = nn.Conv2d(2, 2, 3, padding=1, bias=False)

        def forward(self, x):
            return torch.relu(self.c2(torch.relu(self.c1(x))) + x)

    net = nn.Sequential(Block(), nn.Flatten(), nn.Linear(18, 2, bias=False)).double()
    data = data_for(net, (2, 3, 3))
    a1, a2, lin = unrolled(net, (2, 3, 3))
    eye = torch.eye(18, dtype=torch.float64)
    want = brute_path_sum([a1, a2, lin], 2.0) + brute_path_sum([eye, lin], 2.0)
    assert get_measure("log_l2_path_norm")(net, data) == pytest.approx(0.5 * math.log(want), rel=RTOL)

    # a bias is an edge from a unit fixed at 1: add that unit to the input and carry it through the hidden layer
    biased = mlp([3, 4, 2], bias=True, seed=5)
    data = data_for(biased, (3,))
    (w1, w2), (b1, b2) = [m.weight.detach() for m in biased[1::2]], [m.bias.detach() for m in biased[1::2]]
    carry = torch.zeros(1, 4, dtype=torch.float64)
    carry[0, 3] = 1.0
    aug1 = torch.cat([torch.cat([w1, b1[:, None]], 1), carry], 0)  # (5, 4): [W1 b1; 0 0 0 1]
    aug2 = torch.cat([w2, b2[:, None]], 1)  # (2, 5): [W2 b2]
    want = brute_path_sum([aug1, aug2], 1.0)
    assert get_measure("log_l1_path_norm")(biased, data) == pytest.approx(math.log(want), rel=RTOL)


def test_path_norm_counts_every_max_pool_route():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(8, 2, bias=False)).double()
    data = data_for(net, (1, 4, 4))
    conv, lin = unrolled(net, (1, 4, 4))
    pool = operator_matrix_of_sum_pool(2, 4)  # (8, 32) 0/1 window membership
    want = brute_path_sum([conv, pool, lin], 2.0)
    assert get_measure("log_l2_path_norm")(net, data) == pytest.approx(0.5 * math.log(want), rel=RTOL)


def operator_matrix_of_sum_pool(channels: int, size: int) -> torch.Tensor:
    n = channels * size * size
    eye = torch.eye(n, dtype=torch.float64).reshape(n, channels, size, size)
    return (torch.nn.functional.avg_pool2d(eye, 2) * 4).reshape(n, -1).T


# ---- the capacity measures of 004 with their constants ------------------------------------------------------

def test_capacity_measures_match_004_equations():
    net = mlp([3, 4, 2], seed=7)
    data = data_for(net, (3,), n=40)
    w1, w2 = [m.weight.detach() for m in net[1::2]]
    h = [4, 2]
    gamma = float(torch.kthvalue(margins(net(data.x_train).detach(), data.y_train), math.ceil(0.05 * 40)).values)
    lg2 = 2 * math.log(gamma)
    eq1 = math.log(4 * w1.norm() ** 2 * 4 * w2.norm() ** 2) - lg2
    eq2 = 2 * math.log(brute_path_sum([w1, w2], 1.0, [2.0, 2.0])) - lg2
    eq3 = math.log(brute_path_sum([w1, w2], 2.0, [4.0 * h[0], 4.0 * h[1]])) - lg2
    s1, s2 = (torch.linalg.matrix_norm(w, 2) for w in (w1, w2))
    eq4 = math.log(h[0] * s1 ** 2 * h[1] * s2 ** 2) - lg2
    got = compute(["log_l2_capacity", "log_l1_path_capacity", "log_l2_path_capacity", "log_spectral_capacity"],
                  net, data, dtype=torch.float64)
    assert list(got.values()) == pytest.approx([eq1, eq2, eq3, eq4], rel=RTOL)


def test_bartlett_and_pacbayes_spectral_terms():
    net = mlp([3, 6, 2], seed=8)
    data = data_for(net, (3,), n=20)
    assert get_measure("margin_q5")(net, data) > 0
    ws = [m.weight.detach() for m in net[1::2]]
    sp = [float(torch.linalg.matrix_norm(w, 2)) for w in ws]
    l21 = [float(w.norm(dim=1).sum()) for w in ws]
    r = sp[0] * sp[1] * sum((a / s) ** (2 / 3) for a, s in zip(l21, sp)) ** 1.5
    gamma = get_measure("margin_q5")(net, data)
    assert get_measure("bartlett_spectral")(net, data)["capacity"] == pytest.approx(
        math.log(r ** 2 / gamma ** 2), rel=RTOL)
    stable = sum(float(w.norm()) ** 2 / s ** 2 for w, s in zip(ws, sp))
    assert get_measure("pacbayes_spectral")(net, data)["capacity"] == pytest.approx(
        math.log(sp[0] ** 2 * sp[1] ** 2 * stable / gamma ** 2), rel=RTOL)


# ---- spectral norms of convolutions ----------------------------------------------------------------------

@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (1, 1, 1), (2, 0, 1), (2, 1, 1), (1, 2, 2)])
def test_conv_spectral_norm_equals_unrolled_svd(stride, padding, dilation):
    torch.manual_seed(stride * 10 + padding)
    conv = nn.Conv2d(3, 4, 3, stride=stride, padding=padding, dilation=dilation, bias=False).double()
    (op,) = trace(conv, torch.zeros(1, 3, 7, 7, dtype=torch.float64))
    mat = operator_matrix(op)
    sigma, _ = conv_spectral_norm(op)
    assert sigma == pytest.approx(float(torch.linalg.matrix_norm(mat, 2)), rel=RTOL)
    assert operator_frobenius_norm(op) == pytest.approx(float(mat.norm()), rel=1e-12)
    assert operator_l21_rows(op) == pytest.approx(float(mat.norm(dim=1).sum()), rel=1e-12)


def test_conv1d_and_linear_spectral_norms():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv1d(2, 3, 4, stride=2, padding=1, bias=False), nn.ReLU(), nn.Flatten(),
                        nn.Linear(12, 3, bias=False)).double()
    data = data_for(net, (2, 8))
    got = get_measure("spectral_norms")(net, data)
    want = [float(torch.linalg.matrix_norm(m, 2)) for m in unrolled(net, (2, 8))]
    assert [got["0"], got["1"]] == pytest.approx(want, rel=RTOL)


# ---- margins ---------------------------------------------------------------------------------------------

def test_margins_and_order_statistics_on_hand_made_logits():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 2.5], [1.0, 1.0, -4.0], [0.0, 0.0, 9.0]])
    y = torch.tensor([0, 1, 0, 2])
    assert margins(logits, y).tolist() == [2.0, -0.5, 0.0, 9.0]
    m = torch.arange(100.0).flip(0)  # margins 0..99 in some order
    assert gamma_margin(m, 0.05) == 4.0  # ⌈0.05·100⌉ = 5th smallest
    assert gamma_margin(m, 0.10) == 9.0
    assert gamma_margin(m, 0.0) == 0.0  # k is at least 1: the minimum
    assert gamma_margin(torch.arange(30.0), 0.05) == 1.0  # ⌈1.5⌉ = 2nd smallest
    with pytest.raises(ValueError, match="eps"):
        gamma_margin(m, 1.5)


# ---- BatchNorm folding -----------------------------------------------------------------------------------

def _randomize_bn(net: nn.Module) -> None:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.3, 3)
                m.weight.uniform_(-2, 2)
                m.bias.uniform_(-1, 1)


def test_bn_folding_preserves_eval_outputs():
    torch.manual_seed(0)
    nets = [
        (nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3, bias=False),
                       nn.BatchNorm1d(3)), (5,)),
        (nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                       nn.Conv2d(4, 4, 3, stride=2), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, 2)), (2, 6, 6)),
    ]
    for net, shape in nets:
        net = net.double()
        _randomize_bn(net)
        net.eval()
        x = torch.randn(9, *shape, dtype=torch.float64)
        folded, lone = fold_batchnorm(net, x[:1])
        assert not lone
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
        torch.testing.assert_close(folded(x), net(x), rtol=1e-10, atol=1e-12)


def test_bn_folding_in_resnet_and_pre_activation_is_reported():
    from genlab.models import create_model, list_models

    if "resnet20" in list_models():
        torch.manual_seed(0)
        net = create_model("resnet20", (3, 8, 8), 4).double()
        _randomize_bn(net)
        net.eval()
        x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
        folded, lone = fold_batchnorm(net, x[:1])
        assert not lone
        torch.testing.assert_close(folded(x), net(x), rtol=1e-9, atol=1e-10)
    pre = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.BatchNorm1d(3), nn.Linear(3, 2)).double().eval()
    _, lone = fold_batchnorm(pre, torch.zeros(1, 3, dtype=torch.float64))
    assert len(lone) == 1
    with pytest.raises(ValueError, match="BatchNorm"):
        get_measure("log_l2_path_norm")(pre, data_for(pre, (3,)))


# ---- invariances -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,in_shape", [(lambda: mlp([4, 6, 5, 3], seed=1), (4,)), (convnet, (1, 4, 4))])
def test_rescaling_adjacent_layers(make, in_shape):
    """W_k → c W_k, W_{k+1} → W_{k+1}/c: same function, path norms, normalized loss and product of norms;
    the sum of squared norms moves from a + b to c²a + b/c²."""
    net, c = make(), 3.7
    data = data_for(net, in_shape)
    names = ["log_l1_path_norm", "log_l2_path_norm", "log_prod_frobenius", "normalized_loss",
             "log_l2_path_capacity", "log_l1_path_capacity"]
    before = compute(names, net, data, dtype=torch.float64)
    layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    norms = [float(m.weight.detach().norm()) ** 2 for m in layers]
    scaled = make()
    ls = [m for m in scaled.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    with torch.no_grad():
        ls[0].weight.mul_(c)
        ls[1].weight.div_(c)
    torch.testing.assert_close(scaled(data.x_train), net(data.x_train), rtol=1e-12, atol=1e-12)
    after = compute(names, scaled, data, dtype=torch.float64)
    assert after == pytest.approx(before, rel=RTOL)
    want = math.log(c ** 2 * norms[0] + norms[1] / c ** 2 + sum(norms[2:]))
    assert get_measure("log_sum_sq_frobenius")(scaled, data) == pytest.approx(want, rel=RTOL)


def test_normalized_loss_is_loss_of_f_over_product_of_norms():
    net = convnet(seed=2)
    data = data_for(net, (1, 4, 4))
    rho = math.prod(float(m.weight.detach().norm()) for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    with torch.no_grad():
        want = float(CE(net(data.x_train) / rho, data.y_train))
    assert get_measure("normalized_loss")(net, data)["train"] == pytest.approx(want, rel=RTOL)
    out = get_measure("output_normalized_loss")(net, data)
    with torch.no_grad():
        scale = float(net(data.x_train[:1]).norm())
        assert out["train"] == pytest.approx(float(CE(net(data.x_train) / scale, data.y_train)), rel=RTOL)
