"""Fused conv ensembles (HFTA: one grouped conv per layer, train/fused.py): members equal their solo runs,
the vmap path's numbers, and resume bit for bit."""

import copy

import pytest
import torch
from torch import nn

from genlab.models import create_model
from genlab.train import ensemble as ens, fused, stacked
from genlab.train.fused import fused_forward, is_fusable
from test_ensemble import assert_bit_identical, check, config


def _stack(nets):
    base = copy.deepcopy(nets[0])
    params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in nets]).requires_grad_()
              for n, _ in base.named_parameters()}
    bufs = {n: torch.stack([dict(m.named_buffers())[n].clone() for m in nets]) for n, _ in base.named_buffers()}
    return base, params, bufs


@pytest.mark.parametrize("name, opts, in_shape", [
    ("convnet3", {"width": 6}, (3, 12, 12)), ("conv4", {"width": 3}, (1, 16, 16)),
    ("conv4", {"width": 3, "batch_norm": False}, (2, 8, 8)), ("convnet3", {"width": 4, "bias": True}, (1, 40)),
    ("conv4", {"width": 3}, (2, 40))])  # 1-D: BN, max-pools and global average pooling, lifted on a CPU
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("channels_last", [True, False])
def test_fused_forward_and_gradients_equal_each_member_alone(name, opts, in_shape, train, channels_last,
                                                             monkeypatch):
    """Outputs (K, B, C), every parameter's gradient and the BatchNorm running statistics of each member: its
    own net's, to float64 rounding, with the fused maps in either memory format; a shared input (evaluation)
    gives the same as K copies of it."""
    monkeypatch.setitem(fused.CHANNELS_LAST, "cpu", channels_last)
    torch.manual_seed(0)
    K, B = 3, 5
    nets = [create_model(name, in_shape, 7, **opts).double().train(train) for _ in range(K)]
    assert is_fusable(nets[0])
    with torch.no_grad():  # BN statistics and affine parameters away from their defaults
        for m in nets:
            for mod in m.modules():
                if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    mod.weight.uniform_(0.5, 1.5), mod.bias.uniform_(-0.3, 0.3)
                    mod.running_mean.uniform_(-0.2, 0.2), mod.running_var.uniform_(0.5, 2)
    base, params, bufs = _stack(nets)
    base.train(train)
    x = torch.randn(K, B, *in_shape, dtype=torch.float64)
    y = torch.randint(0, 7, (K, B))
    out = fused_forward(base, params, bufs, x)
    assert out.shape == (K, B, 7)
    loss = nn.functional.cross_entropy(out.reshape(K * B, 7), y.reshape(-1), reduction="sum")
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
    for k, net in enumerate(nets):
        ok = net(x[k])
        torch.testing.assert_close(out[k], ok, rtol=1e-10, atol=1e-12)
        nn.functional.cross_entropy(ok, y[k], reduction="sum").backward()
        for n, p in net.named_parameters():
            torch.testing.assert_close(grads[n][k], p.grad, rtol=1e-9, atol=1e-12)
        for n, b in net.named_buffers():
            torch.testing.assert_close(bufs[n][k], b, rtol=1e-12, atol=0)  # updated in place (training) as solo
    if not train:
        shared = fused_forward(base, params, bufs, x[0], shared_x=True)
        torch.testing.assert_close(shared, fused_forward(base, params, bufs, x[:1].expand(K, *x.shape[1:])))


def test_fused_2d_maps_are_channels_last_where_chosen(monkeypatch):
    """On a CPU the fused 2-D maps are channels-last (measured faster: fused.CHANNELS_LAST), and 1-D maps, which
    have no such format, run lifted to (B, K·C, 1, L) channels-last; float32 outputs and gradients equal the
    contiguous layout's to float32 rounding."""
    torch.manual_seed(0)
    K, B = 4, 6
    for in_shape in ((1, 8, 8), (1, 40)):
        base, params, bufs = _stack([create_model("conv4", in_shape, 10, width=4) for _ in range(K)])
        x = torch.randn(K, B, *in_shape)
        relu = next(m for m in base if isinstance(m, nn.ReLU))  # after the first conv and BN
        seen = []
        hook = relu.register_forward_hook(lambda m, i, o: seen.append(i[0].dim() == 4 and i[0].is_contiguous(
            memory_format=torch.channels_last) and not i[0].is_contiguous()))
        runs = {}
        for on in (True, False):
            monkeypatch.setitem(fused.CHANNELS_LAST, "cpu", on)
            out = fused_forward(base, params, copy.deepcopy(bufs), x)
            runs[on] = (out, torch.autograd.grad(out.square().sum(), list(params.values())))
        hook.remove()
        assert seen == [True, False]
        torch.testing.assert_close(runs[True][0], runs[False][0])
        a, b = (torch.cat([g.flatten() for g in runs[on][1]]) for on in (True, False))
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))  # float32, summed in
        # another order (a conv bias before BN has a gradient of 0 up to such rounding: scale by all of them)


def test_fused_maps_return_to_nchw_after_the_last_conv():
    """ConvNet3's ReLU after its first conv sees a channels-last map, the one after its last conv (before the
    Flatten, whose copy hands back a contiguous gradient) a contiguous one: both layers' backward then read
    one layout."""
    torch.manual_seed(0)
    base, params, bufs = _stack([create_model("convnet3", (1, 8, 8), 10, width=4) for _ in range(3)])
    relus = [m for m in base if isinstance(m, nn.ReLU)]
    seen = []
    hooks = [r.register_forward_hook(lambda m, i, o: seen.append(
        "NHWC" if not o.is_contiguous() and o.is_contiguous(memory_format=torch.channels_last) else
        "NCHW" if o.is_contiguous() else "other")) for r in relus]
    fused_forward(base, params, bufs, torch.randn(3, 5, 1, 8, 8))
    for h in hooks:
        h.remove()
    assert seen == ["NHWC", "NCHW"]


def test_what_is_not_fused():
    assert not is_fusable(create_model("mlp", (4,), 3, widths=[5]))  # the bmm path's
    assert not is_fusable(create_model("resnet20", (3, 8, 8), 3))  # residual: vmap
    assert not is_fusable(create_model("tweaks_cnn", (3, 16, 16), 3, dropout=0.5))  # Dropout layers: vmap
    assert not is_fusable(nn.Sequential(nn.Conv2d(1, 2, 3, padding="same"), nn.Flatten(), nn.Linear(2, 1)))


@pytest.mark.parametrize("model, data", [({"name": "conv4", "width": 4, "kernel_size": 3}, {"name": "digits"}),
                                         ({"name": "convnet3", "width": 8}, {"name": "digits"}),
                                         ({"name": "conv4", "width": 3}, {"name": "mnist1d", "num_samples": 400,
                                                                          "as_image": True})])  # 1-D, lifted
def test_fused_members_equal_solo_runs_and_the_vmap_path(model, data, monkeypatch):
    """Through the trainer: per-member lr, momentum, seed and stop rule; each member its solo run (check), and
    the fused and vmap paths the same numbers to float32 tolerance."""
    base = {"data": data, "model": model, "train": {"epochs": 3, "batch_size": 64}}
    cfgs = [config(**base, optim={"lr": 0.05}), config(**base, optim={"lr": 0.1, "momentum": 0.9}, seed=3),
            config(**{**base, "train": {"epochs": 3, "batch_size": 64, "stop_below_loss": 1.5}}, optim={"lr": 0.2})]
    seen = []
    real = stacked.fused_forward
    monkeypatch.setattr(stacked, "fused_forward", lambda *a, **k: seen.append(1) or real(*a, **k))
    fused = check(cfgs)
    assert seen, "the fused path was not taken"
    monkeypatch.setattr(stacked, "FUSE", False)
    seen.clear()
    vmapped = ens.train_ensemble(cfgs)
    assert not seen
    for a, b in zip(fused, vmapped):
        assert a.epochs_run == b.epochs_run and a.stop_reason == b.stop_reason
        for ra, rb in zip(a.history, b.history):
            assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-4)


def test_fused_resume_from_a_snapshot_is_bit_identical():
    cfgs = [config(data={"name": "digits"}, model={"name": "conv4", "width": 3}, optim={"lr": 0.05, "momentum": 0.9},
                   train={"epochs": 3, "batch_size": 128}, record={"resume_every": 1}, seed=s) for s in range(2)]
    snaps: list[dict] = [{} for _ in cfgs]
    saver = [lambda st, i=i: snaps[i].__setitem__(st["epoch"], copy.deepcopy(st)) for i in range(len(cfgs))]
    full = ens.train_ensemble(cfgs, save_resumes=saver)
    again = ens.train_ensemble(cfgs, resumed=[s[1] for s in snaps])
    assert_bit_identical(full, again, epochs=3)


def test_calibration_measures_once_and_caches_on_disk(tmp_path, monkeypatch):
    """stacking_pays: a measurement (both timings positive), then the same decision from this process's memory
    and, in a fresh process (memory cleared), from <data root>/generated/stacking.json without measuring."""
    from genlab.executors import calibrate
    from genlab.executors.ensemble import group_key

    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    monkeypatch.delenv("GENLAB_GEN_CACHE", raising=False)
    monkeypatch.setattr(calibrate, "_DECIDED", {})
    cfg = config(data={"name": "digits"}, model={"name": "conv4", "width": 2}, train={"batch_size": 32})
    solo_s, stacked_s = calibrate.measure(cfg)
    assert solo_s > 0 and stacked_s > 0
    calls = []
    monkeypatch.setattr(calibrate, "measure", lambda c, d: calls.append(1) or (1.0, 0.5))  # 2× faster: pays
    key = group_key(cfg)
    assert calibrate.stacking_pays(cfg, key) is True and calls == [1]
    assert calibrate.stacking_pays(cfg, key) is True and calls == [1]  # memory
    monkeypatch.setattr(calibrate, "_DECIDED", {})
    assert calibrate.stacking_pays(cfg, key) is True and calls == [1]  # disk
    assert (tmp_path / "generated" / "stacking.json").exists()
    monkeypatch.setattr(calibrate, "measure", lambda c, d: calls.append(1) or (1.0, 0.95))  # 1.05×: not enough
    assert calibrate.stacking_pays(cfg, key + "other") is False and calls == [1, 1]
    monkeypatch.setitem(fused.CHANNELS_LAST, "cpu", not fused.CHANNELS_LAST["cpu"])  # the fused step changed:
    assert calibrate.stacking_pays(cfg, key) is False and calls == [1, 1, 1]  # measured again, not reused


def test_calibration_measures_at_the_runs_threads(tmp_path, monkeypatch):
    """The stacking decision is measured with the torch threads the runs will train with (a pool's workers'),
    keyed by them, and the planning process gets its own thread count back."""
    from genlab.executors import calibrate
    from genlab.executors.ensemble import group_key

    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    monkeypatch.setattr(calibrate, "_DECIDED", {})
    own = torch.get_num_threads()
    seen = []
    monkeypatch.setattr(calibrate, "measure", lambda c, d: seen.append(torch.get_num_threads()) or (1.0, 0.5))
    cfg = config(data={"name": "digits"}, model={"name": "conv4", "width": 2}, train={"batch_size": 32})
    key = group_key(cfg)
    other = own + 1
    assert calibrate.stacking_pays(cfg, key, "cpu", other) is True and seen == [other]
    assert torch.get_num_threads() == own
    assert calibrate.stacking_pays(cfg, key, "cpu", other) is True and seen == [other]  # cached at those threads
    assert calibrate.stacking_pays(cfg, key, "cpu") is True and seen == [other, own]  # another count: measured
    monkeypatch.setattr(calibrate, "measure", lambda c, d: 1 / 0)  # a failure: solo, threads restored
    assert calibrate.stacking_pays(cfg, key + "x", "cpu", other) is False and torch.get_num_threads() == own


@pytest.mark.parametrize("model", [{"name": "conv4", "width": 3}, {"name": "resnet20"}])  # fused; vmap
@pytest.mark.parametrize("alone", [True, False])
def test_conv_members_are_evaluated_as_solo_runs_evaluate_them(model, alone, monkeypatch):
    """Where EVAL_ALONE says so (CPU), a conv stack evaluates each member's own net (views of the stack) with
    the solo evaluation, not a stacked forward: each epoch's metrics are bit for bit what train.evaluate gives
    on that member's weights. Otherwise (the GPU's path, here forced) the stacked forward, to float tolerance."""
    from genlab.train.evaluate import evaluate_splits
    from genlab.train.setup import build

    monkeypatch.setitem(stacked.EVAL_ALONE, "cpu", alone)
    used = []
    real = stacked.evaluate_stacked
    monkeypatch.setattr(stacked, "evaluate_stacked", lambda *a: used.append(1) or real(*a))
    cfgs = [config(data={"name": "digits", "n_train": 300}, model=model, optim={"lr": lr},
                   train={"epochs": 2, "batch_size": 128}, seed=s) for s, lr in ((0, 0.05), (1, 0.1))]
    for cfg, out in zip(cfgs, ens.train_ensemble(cfgs)):
        data, _, loss, _ = build(cfg, torch.device("cpu"))
        solo = evaluate_splits(out.model, data, loss, cfg.train.eval_batch_size)
        assert solo and set(solo) <= set(out.history[-1])
        for k, v in solo.items():
            assert out.history[-1][k] == (v if alone else pytest.approx(v, rel=1e-5, abs=1e-7)), k
    assert bool(used) != alone


def test_a_pool_plans_its_ensembles_at_its_workers_threads(tmp_path, monkeypatch):
    from genlab import interrupt
    from genlab.executors import pool
    from genlab.store import Store

    monkeypatch.setattr(interrupt, "_shared", None)  # run_pool shares its stop flag; restored after the test
    asked = {}

    def plan(jobs, k, **kw):
        asked.update(kw)
        raise KeyboardInterrupt  # planning is all this test looks at

    monkeypatch.setattr(pool, "ensembles", plan)
    with pytest.raises(KeyboardInterrupt):
        pool.run_pool([], Store(tmp_path), workers=2, threads=3, ensemble=(8, True))
    assert asked == {"auto": True, "device": "cpu", "threads": 3}
