"""The 2×2 max-pools of genlab's conv nets: PyTorch's values where no gradient is recorded, PyTorch's kernel
(and gradient) where one is."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genlab.models import create_model
from genlab.models.pooling import MaxPool1x2, MaxPool2x2


def awkward(*shape: int) -> torch.Tensor:
    """Random values with ReLU zeros (ties), ±inf and a NaN."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).relu()
    flat = x.view(-1)
    for i, v in zip((3, 10, 17), (float("nan"), float("inf"), -float("inf"))):
        if i < flat.numel():
            flat[i] = v
    return x


@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (2, 5, 7, 9), (1, 2, 2, 3), (3, 2, 13, 13)])
def test_2x2_pool_equals_pytorch_without_grad(shape):
    x = awkward(*shape)
    with torch.no_grad():
        got = MaxPool2x2()(x)
    want = nn.MaxPool2d(2)(x)
    assert got.shape == want.shape
    assert torch.equal(got.isnan(), want.isnan()) and torch.equal(got.nan_to_num(7.0), want.nan_to_num(7.0))


@pytest.mark.parametrize("shape", [(4, 3, 40), (2, 5, 9), (1, 2, 7)])
def test_length_2_pool_equals_pytorch_without_grad(shape):
    x = awkward(*shape)
    with torch.no_grad():
        got = MaxPool1x2()(x)
    want = nn.MaxPool1d(2)(x)
    assert torch.equal(got.isnan(), want.isnan()) and torch.equal(got.nan_to_num(7.0), want.nan_to_num(7.0))


def test_kernel_only_where_a_gradient_is_recorded(monkeypatch):
    calls = []
    real = F.max_pool2d

    def counted(*a, **k):
        calls.append(torch.is_grad_enabled())
        return real(*a, **k)

    monkeypatch.setattr(F, "max_pool2d", counted)
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    pool = MaxPool2x2()
    with torch.no_grad():
        pool(x)
    with torch.inference_mode():
        pool(x)
    assert calls == []  # evaluation never reaches the kernel
    y = pool(x)
    assert calls == [True]
    from torch.func import vmap

    vmap(pool)(torch.stack([x, 2 * x]))  # batched activations say requires_grad False; the graph is recorded
    assert calls == [True, True]
    (g,) = torch.autograd.grad(y.sum(), x)
    (want,) = torch.autograd.grad(real(x, 2).sum(), x)
    assert torch.equal(g, want)  # training: PyTorch's kernel and its first-maximum gradient


@pytest.mark.parametrize("name,shape,opts", [
    ("conv4", (3, 32, 32), {"width": 4}), ("vgg", (3, 32, 32), {"depth": 11, "width_factor": 0.125}),
    ("tweaks_cnn", (3, 32, 32), {"widths": [4, 8], "hidden": 16}), ("conv4", (1, 40), {"width": 4})])
def test_nets_pool_with_the_fast_module_and_the_same_outputs(name, shape, opts):
    torch.manual_seed(0)
    net = create_model(name, shape, 10, **opts).eval()
    pools = [m for m in net.modules() if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d))]
    assert pools and all(isinstance(m, (MaxPool1x2, MaxPool2x2)) for m in pools)
    x = torch.randn(5, *shape)
    with torch.no_grad():
        fast = net(x)
        for m in pools:  # the same net with PyTorch's pools
            kind = nn.MaxPool2d if isinstance(m, nn.MaxPool2d) else nn.MaxPool1d
            m.forward = kind.forward.__get__(m)
        slow = net(x)
    assert torch.equal(fast, slow)
