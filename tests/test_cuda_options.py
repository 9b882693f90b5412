"""The CUDA-only training options (bf16 autocast, torch.compile) run through the same code on a CPU once the
device check is lifted: what a GPU session would run, minus the device. (On a CPU `train` refuses them,
tests/test_ensemble.py; here that check is patched out.) channels_last, which runs on any device, too."""

import pytest
import torch

import genlab.train.loop as loop
from genlab.executors.ensemble import group_key
from genlab.train.ensemble import train_ensemble
from genlab.train.loop import train
from test_ensemble import config

CONV = {"data": {"name": "digits"},
        "model": {"name": "convnet3", "width": 8, "kernel_size": 3, "stride": 2, "padding": 1},
        "init": {"name": "he_normal"}, "train": {"epochs": 2, "batch_size": 32}}


def conv(seed: int = 0, **train_over):
    return config(**{**CONV, "train": {**CONV["train"], **train_over}}, seed=seed)


@pytest.fixture
def anywhere(monkeypatch):
    monkeypatch.setattr(loop, "check_device_options", lambda *a: None)


def test_bf16_autocast_trains_in_bf16_and_keeps_float32_weights(anywhere):
    plain, cast = train(conv()), train(conv(precision="bf16"))
    a, b = plain.history[-1]["train_loss"], cast.history[-1]["train_loss"]
    assert a != b  # the forward really ran in bf16 (8-bit mantissa): the losses differ...
    assert b == pytest.approx(a, rel=0.05)  # ...by bf16 rounding, not more
    assert all(p.dtype == torch.float32 for p in cast.model.parameters())  # autocast leaves the weights alone


def test_bf16_ensemble_matches_its_solo_runs_to_bf16_rounding(anywhere):
    cfgs = [conv(seed, precision="bf16") for seed in range(3)]
    for cfg, member in zip(cfgs, train_ensemble(cfgs)):
        solo = train(cfg)
        assert member.history[-1]["train_loss"] == pytest.approx(solo.history[-1]["train_loss"], rel=0.03)
        assert all(p.dtype == torch.float32 for p in member.model.parameters())


def test_channels_last_changes_the_layout_not_the_numbers():
    """channels_last runs on a CPU too (no device check to lift): the weights in that layout, the numbers the
    contiguous run's to float32 rounding; it trains solo, never in an ensemble."""
    plain, last = train(conv()), train(conv(channels_last=True))
    assert last.model[2].weight.is_contiguous(memory_format=torch.channels_last)  # (8, 8, 3, 3): the formats
    assert not plain.model[2].weight.is_contiguous(memory_format=torch.channels_last)  # differ (1 channel: not)
    assert group_key(conv(channels_last=True)) is None and group_key(conv()) is not None
    with pytest.raises(ValueError, match="cannot join an ensemble: train.channels_last trains solo"):
        train_ensemble([conv(0, channels_last=True), conv(1, channels_last=True)])
    assert last.history[-1]["train_loss"] == pytest.approx(plain.history[-1]["train_loss"], rel=1e-5)
    for name, t in plain.model.state_dict().items():
        torch.testing.assert_close(last.model.state_dict()[name], t, rtol=1e-4, atol=1e-6)


@pytest.mark.slow  # torch.compile's first call builds C++ kernels: ~30 s on 2 cores
def test_compile_trains_the_same_parameters(anywhere):
    plain, compiled = train(conv()), train(conv(compile=True))
    assert compiled.history[-1]["train_loss"] == pytest.approx(plain.history[-1]["train_loss"], rel=1e-4)
    for name, t in plain.model.state_dict().items():  # the stored model is the module, not the compiled wrapper
        torch.testing.assert_close(compiled.model.state_dict()[name], t, rtol=1e-3, atol=1e-5)
