"""models/conv.py: a conv whose one output position sees the whole input, as a matmul — the conv's values and
gradients, and the conv itself wherever that does not hold."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from genlab.models import conv as cv
from genlab.models import create_model


def _cases():
    """(input size, kernel, stride, padding, groups, bias) in 1-D and 2-D, both sides of `one_window`."""
    for n, (s, k, st, p), groups, bias in itertools.product(
            (1, 2), [(1, 3, 1, 1), (3, 3, 1, 0), (2, 3, 2, 1), (1, 1, 1, 0), (3, 5, 2, 2), (2, 3, 1, 1),
                     (4, 3, 1, 1), (3, 3, 3, 1), (5, 5, 1, 0)], (1, 3), (True, False)):
        yield (s,) * n, (k,) * n, st, p, groups, bias


@pytest.mark.parametrize("size, kernel, stride, padding, groups, bias", list(_cases()))
def test_conv_nd_equals_the_conv_values_and_gradients(size, kernel, stride, padding, groups, bias):
    torch.manual_seed(0)
    B, C, O = 5, 4, 6  # per group
    x = torch.randn(B, groups * C, *size, dtype=torch.float64, requires_grad=True)
    w = torch.randn(groups * O, C, *kernel, dtype=torch.float64, requires_grad=True)
    b = torch.randn(groups * O, dtype=torch.float64, requires_grad=True) if bias else None
    conv = cv.CONV_FN[len(size)]
    want = conv(x, w, b, stride, padding, 1, groups)
    got = cv.conv_nd(x, w, b, stride, padding, 1, groups)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(want)
    leaves = [t for t in (x, w, b) if t is not None]
    for a, e in zip(torch.autograd.grad(got, leaves, g), torch.autograd.grad(want, leaves, g)):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size, kernel, stride, padding, expected", [
    ((1, 1), (3, 3), (1, 1), (1, 1), True),  # VGG's 3×3 'same' conv on a 1×1 map: the centre tap
    ((3, 3), (3, 3), (1, 1), (0, 0), True),  # a 'valid' conv filling the map: all nine taps
    ((1, 2), (3, 3), (1, 1), (1, 1), False),  # two output positions along the second axis
    ((2, 2), (3, 3), (1, 1), (1, 1), False),
    ((3, 3), (3, 3), (3, 3), (1, 1), False),  # one output, but the window [-1, 2) misses input position 2
    ((1, 1), (3, 3), (1, 1), "same", False),  # padding strings are left to the conv
])
def test_one_window_says_where_the_matmul_applies(size, kernel, stride, padding, expected):
    assert cv.one_window(size, kernel, stride, padding, (1, 1)) is expected
    assert cv.one_window(size, kernel, stride, padding, (2, 2)) is False  # dilated: never


def test_the_model_builders_convs_take_the_matmul_on_one_window_maps(monkeypatch):
    """VGG-11 on 8×8 digits reaches 1×1 maps: those convs are matmuls (F.linear called, the conv kernel not),
    and the net's output and gradients equal the same net with torch's conv layers to float64 rounding."""
    torch.manual_seed(0)
    net = create_model("vgg", (1, 8, 8), 10, depth=11, batch_norm=False, width_factor=0.125).double()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(isinstance(m, cv.Conv2d) for m in convs)
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    calls = []
    real = cv.CONV_FN[2]
    monkeypatch.setitem(cv.CONV_FN, 2, lambda *a: calls.append(a[0].shape[-1]) or real(*a))
    out = net(x)
    assert sorted(set(calls)) == [2, 4, 8] and len(calls) == 4  # 4 of VGG-11's 8 convs see a 1×1 map
    grads = torch.autograd.grad(out.square().sum(), list(net.parameters()))
    for m in convs:  # the same modules, run by torch's conv
        m._conv_forward = lambda i, w, b, m=m: torch.nn.Conv2d._conv_forward(m, i, w, b)
    ref = net(x)
    ref_grads = torch.autograd.grad(ref.square().sum(), list(net.parameters()))
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for a, e in zip(grads, ref_grads):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-12)


def test_other_padding_modes_use_the_conv():
    """A circular-padded conv is not zero-padded: its window sees wrapped values, so the conv computes it."""
    torch.manual_seed(0)
    m = cv.Conv2d(2, 3, 3, padding=1, padding_mode="circular").double()
    x = torch.randn(4, 2, 1, 1, dtype=torch.float64)
    plain = torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular").double()
    plain.load_state_dict(m.state_dict())
    torch.testing.assert_close(m(x), plain(x), rtol=0, atol=0)
    assert not torch.allclose(m(x), F.linear(x.flatten(1), m.weight[:, :, 1, 1], m.bias))  # wrapped taps count
