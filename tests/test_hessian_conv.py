"""measures.double_backward: Hessian-vector products on conv nets skip the transposed convolution back to the
data that autograd's double backward makes, and give the same numbers."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from genlab.losses import get_loss
from genlab.measures import MeasureData
from genlab.measures import hessian as hess
from genlab.measures.double_backward import ConstInputConvs, _ConvOfConstant


class Transposed(TorchDispatchMode):
    """Counts the transposed convolutions ATen runs."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution.default and args[6]:
            self.count += 1
        return func(*args, **(kwargs or {}))


NETS = {
    "2d, stride 2, no bias": lambda: nn.Sequential(nn.Conv2d(3, 6, 5, stride=2, padding=2, bias=False), nn.ReLU(),
                                                   nn.Conv2d(6, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 16, 3)),
    "2d, groups, dilation, tuple padding": lambda: nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=(2, 1), dilation=(2, 1), groups=3), nn.Tanh(), nn.Flatten(),
        nn.Linear(6 * 8 * 8, 3)),
    "1d with BN": lambda: nn.Sequential(nn.Conv1d(3, 5, 3, padding=1), nn.BatchNorm1d(5), nn.ReLU(), nn.Flatten(),
                                        nn.Linear(5 * 8, 3)),
    "'same' padding (not taken over)": lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding="same"), nn.ReLU(),
                                                             nn.Flatten(), nn.Linear(4 * 8 * 8, 3)),
}


def _data(net: nn.Module, name: str) -> MeasureData:
    gen = torch.Generator().manual_seed(0)
    shape = (3, 8) if name.startswith("1d") else (3, 8, 8)
    x = torch.randn(40, *shape, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=gen)
    return MeasureData(x, y, x, y, get_loss("cross_entropy"), None, 3)


@pytest.mark.parametrize("name", NETS)
def test_products_equal_autograds_own_and_skip_the_transposed_conv_to_the_data(name, monkeypatch):
    torch.manual_seed(0)
    net = NETS[name]().double().eval()
    data = _data(net, name)
    v = torch.randn(sum(p.numel() for p in net.parameters()), generator=torch.Generator().manual_seed(1),
                    dtype=torch.float64)
    counts, products = [], []
    for mode in (ConstInputConvs, contextlib.nullcontext):
        monkeypatch.setattr(hess, "ConstInputConvs", mode)
        hvp = hess.hvp_fn(net, data, None)
        with Transposed() as seen:
            products.append(hvp(v))
        counts.append(seen.count)
    assert torch.equal(products[0], products[1])  # the same ops on the terms that count: bit for bit
    taken = "not taken" not in name
    assert counts[0] == counts[1] - (1 if taken else 0)  # the first conv's transposed conv to the data: gone


def test_only_convolutions_of_constant_inputs_are_taken_over(monkeypatch):
    used = []
    monkeypatch.setattr(_ConvOfConstant, "apply", lambda *a: used.append(1) or torch.ops.aten.convolution(
        a[0], a[1], a[2], a[3], a[4], a[5], False, [0] * (a[0].dim() - 2), a[6]))
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    with ConstInputConvs():
        torch.conv2d(torch.randn(2, 3, 6, 6), w)  # data, weight with a gradient: taken over
        torch.conv2d(torch.randn(2, 3, 6, 6, requires_grad=True), w)  # an input with a gradient: autograd's
        torch.conv2d(torch.randn(2, 3, 6, 6), w.detach())  # nothing to differentiate
        with torch.no_grad():
            torch.conv2d(torch.randn(2, 3, 6, 6), w)
    assert used == [1]
