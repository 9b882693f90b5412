"""Every registered init scheme draws with the variance its definition gives (tested over the registry)."""

import math

import pytest
import torch
from torch import nn

from genlab.models import create_model, list_models
from genlab.models.init import get_init, initialize, list_inits

FAN_IN, FAN_OUT = 300, 200
EXPECTED_STD = {  # for a (FAN_OUT, FAN_IN) weight
    "normal": 0.05, "uniform": 0.05, "lecun_normal": 1 / math.sqrt(FAN_IN), "lecun_uniform": 1 / math.sqrt(FAN_IN),
    "xavier_normal": math.sqrt(2 / (FAN_IN + FAN_OUT)), "xavier_uniform": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "he_normal": math.sqrt(2 / FAN_IN), "he_uniform": math.sqrt(2 / FAN_IN),
    "default": 1 / math.sqrt(3 * FAN_IN),  # PyTorch: kaiming_uniform(a=√5) = U[±1/√fan_in]
    "constant": 0.0,
}


@pytest.mark.parametrize("name", list_inits())
def test_init_std(name):
    assert name in EXPECTED_STD, f"add the expected std of new init {name!r} to this test"
    w = nn.Linear(FAN_IN, FAN_OUT).weight
    opts = {"std": 0.05} if name in ("normal", "uniform") else {}
    torch.manual_seed(0)
    get_init(name)(w, torch.Generator().manual_seed(0), **opts)
    assert w.std().item() == pytest.approx(EXPECTED_STD[name], rel=0.02, abs=1e-12)
    if "uniform" in name:  # U[−√3σ, √3σ]: bounded by √3 σ
        assert w.abs().max().item() <= math.sqrt(3) * EXPECTED_STD[name] + 1e-6


def test_constant_and_bias_modes_and_scale():
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    initialize(m, "constant", torch.Generator(), options={"value": 1.0}, bias="same", scale=2.0)
    assert all(torch.all(p == 2.0) for p in m.parameters())
    initialize(m, "normal", torch.Generator().manual_seed(0), options={"std": 0.1}, bias="zero")
    assert torch.all(m[0].bias == 0) and m[0].weight.std() > 0
    with pytest.raises(ValueError, match="init.bias"):
        initialize(m, "normal", torch.Generator(), bias="random")


def test_init_is_seeded():
    a = create_model("mlp", (5,), 2, widths=[7])
    b = create_model("mlp", (5,), 2, widths=[7])
    initialize(a, "he_normal", torch.Generator().manual_seed(3))
    initialize(b, "he_normal", torch.Generator().manual_seed(3))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_registry_lookup_fails_with_known_names():
    with pytest.raises(KeyError, match="unknown model 'mpl'.*mlp"):
        create_model("mpl", (5,), 2)
    assert "linear" in list_models() and "mlp" in list_models()
