"""genlab's Dropout: nn.Dropout's semantics with masks from the run's own "dropout" generator, so an ensemble
member replays its solo run's masks (MLP fast path by hand, vmap path for conv nets), runs that differ only in
dropout share an ensemble, and a resumed dropout run is bit-identical to an uninterrupted one."""

import copy
import inspect
import pathlib

import numpy as np
import pytest
import torch
from torch import nn

from genlab.executors import Job
from genlab.executors.ensemble import group_key, ensembles
from genlab.spec.loader import PlannedRun
from genlab.models import create_model, get_model_fn, list_models
from genlab.models.dropout import Dropout, attach_dropout, dropout_layers, multiplier
from genlab.train.ensemble import mlp_grads, train_ensemble
from genlab.train.loop import train
from genlab.train.setup import STREAMS, generators

from test_ensemble import assert_bit_identical, assert_same, check, config

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "genlab"


def mlp_drop(p, seed=0, **over):
    return config(model={"name": "mlp_uniform", "width": 16, "depth": 2, "dropout": p}, seed=seed, **over)


# --- the module -------------------------------------------------------------------------------------------

def test_eval_is_identity_and_p_zero_draws_nothing():
    x = torch.randn(64, 32)
    d = Dropout(0.5).eval()
    assert torch.equal(d(x), x)
    g = torch.Generator().manual_seed(1)
    before = g.get_state()
    z = attach_dropout(nn.Sequential(Dropout(0.0)), g).train()
    assert torch.equal(z(x), x) and torch.equal(g.get_state(), before)  # no draw at p = 0


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_train_mode_matches_nn_dropout_statistics(p):
    """Zeros fraction ≈ p, survivors scaled by exactly 1/(1−p), mean preserved, as nn.Dropout."""
    x = torch.ones(400, 1000)
    d = attach_dropout(Dropout(p), torch.Generator().manual_seed(0)).train()
    y = d(x)
    dropped = (y == 0).double().mean().item()
    assert dropped == pytest.approx(p, abs=0.005)  # 400k draws: sd of the fraction ≈ 0.0008
    assert torch.all((y == 0) | (y == torch.tensor(1 / (1 - p), dtype=torch.float32)))
    assert y.double().mean().item() == pytest.approx(1.0, abs=0.02)
    ref = nn.Dropout(p).train()(x)  # torch's own: the same two values and drop rate
    assert set(torch.unique(ref).tolist()) == set(torch.unique(y).tolist())
    assert (ref == 0).double().mean().item() == pytest.approx(dropped, abs=0.01)


def test_same_seed_same_mask_and_unattached_uses_the_global_rng():
    x = torch.randn(8, 50)
    a = attach_dropout(Dropout(0.3), torch.Generator().manual_seed(7)).train()
    b = attach_dropout(Dropout(0.3), torch.Generator().manual_seed(7)).train()
    c = attach_dropout(Dropout(0.3), torch.Generator().manual_seed(8)).train()
    ya, yb, yc = a(x), b(x), c(x)
    assert torch.equal(ya, yb) and not torch.equal(ya, yc)
    expect = x * multiplier((8, 50), 0.3, torch.Generator().manual_seed(7), x.device)  # the documented draw
    assert torch.equal(ya, expect)
    free = Dropout(0.3).train()
    torch.manual_seed(3)
    y1 = free(x)
    torch.manual_seed(3)
    assert torch.equal(free(x), y1)  # no generator attached: torch's global RNG


def test_bad_p_names_the_field():
    with pytest.raises(ValueError, match=r"Dropout: p is a drop probability in \[0, 1\), got 1.0"):
        Dropout(1.0)


def test_no_torch_dropout_left_and_every_dropout_model_uses_genlab_dropout():
    users = [str(f.relative_to(SRC)) for f in SRC.rglob("*.py") if "nn.Dropout(" in f.read_text()]
    assert users == []
    opts = {"mlp_uniform": {"width": 8, "depth": 2}, "tweaks_cnn": {"widths": [4, 4], "hidden": 8},
            "nin": {"width": 4, "depth": 2}}
    with_dropout = sorted(n for n in list_models() if "dropout" in inspect.signature(get_model_fn(n)).parameters)
    assert with_dropout == sorted(opts)
    for name in with_dropout:
        m = create_model(name, (1, 8, 8), 10, **opts[name], dropout=0.25)
        assert not any(isinstance(x, nn.modules.dropout._DropoutNd) for x in m.modules()), name
        assert [d.p for _, d in dropout_layers(m)] == [0.25] * {"mlp_uniform": 2, "tweaks_cnn": 1, "nin": 2}[name]


# --- the generator stream ---------------------------------------------------------------------------------

def test_dropout_stream_is_last_and_leaves_the_other_streams_unchanged():
    assert STREAMS[-1] == "dropout" and STREAMS[:4] == ("init", "shuffle", "augment", "perturb")
    gens = generators(123, torch.device("cpu"))
    old = np.random.SeedSequence(123).spawn(4)  # the four streams before dropout was added
    for name, ss in zip(STREAMS[:4], old):
        want = torch.Generator().manual_seed(int(ss.generate_state(1)[0]))
        assert torch.equal(gens[name].get_state(), want.get_state()), name
    assert gens["dropout"].initial_seed() not in {gens[n].initial_seed() for n in STREAMS[:4]}


def test_solo_training_draws_from_the_runs_dropout_stream():
    """Same config → same numbers, whatever torch's global RNG did before; dropout changes the numbers."""
    torch.manual_seed(99)
    a = train(mlp_drop(0.5))
    torch.manual_seed(5)
    b = train(mlp_drop(0.5))
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    assert a.history[-1]["train_loss"] != train(mlp_drop(0.0)).history[-1]["train_loss"]


# --- ensembles ----------------------------------------------------------------------------------------------

def test_mlp_grads_with_masks_equal_autograd():
    """The hand-written backward through dropout (∂x = ∂y·m) vs autograd of the solo module with that mask."""
    torch.manual_seed(0)
    k, b = 3, 7
    nets = [create_model("mlp_uniform", (5,), 4, width=6, depth=2, dropout=0.4) for _ in range(k)]
    params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in nets]) for n, _ in nets[0].named_parameters()}
    x, y = torch.randn(k, b, 5), torch.randint(0, 4, (k, b))
    names = [n for n, _ in dropout_layers(nets[0])]
    masks = {n: torch.stack([multiplier((b, 6), 0.4, torch.Generator().manual_seed(10 * i + j), x.device)
                             for i in range(k)]) for j, n in enumerate(names)}
    from genlab.losses import get_loss

    lf = get_loss("cross_entropy")
    losses, grads = mlp_grads(nets[0], params, x, y, lf, masks=masks)
    for i, m in enumerate(nets):
        for n, d in dropout_layers(m):
            d.replay = masks[n][i]
        l = lf(m.train()(x[i]), y[i])
        assert float(losses[i]) == pytest.approx(float(l.detach()), rel=1e-5)
        for (n, _), g in zip(m.named_parameters(), torch.autograd.grad(l, list(m.parameters()))):
            torch.testing.assert_close(grads[n][i], g, rtol=1e-4, atol=1e-6)


def test_mlp_ensemble_with_per_member_dropout_equals_solo_runs():
    """p = 0 (no dropout module at all), 0.2 and 0.5, two seeds, one member stopping early (the stack shrinks):
    each member equals its solo run (history, final weights), and its dropout generator ends where the solo
    run's does."""
    cfgs = [mlp_drop(0.0), mlp_drop(0.2, seed=1), mlp_drop(0.5, train={"epochs": 2}), mlp_drop(0.5, seed=1)]
    members = train_ensemble(cfgs)
    for cfg, m in zip(cfgs, members):
        solo = train(cfg)
        assert_same(solo, m)
        gens = [[d.gen.get_state() for _, d in dropout_layers(o.model)] for o in (solo, m)]
        assert all(torch.equal(a, b) for a, b in zip(*gens)) and len(gens[0]) == (2 if cfg.model.options["dropout"] else 0)
    losses = [m.history[-1]["train_loss"] for m in members]
    assert len(set(losses)) == 4  # dropout and seed each change the run


def test_mlp_ensemble_dropout_autograd_path_and_stop_rules():
    """gelu has no hand-written gradient: the bmm forward with masks under autograd; members stop apart."""
    def cfg(p, seed, **t):
        return config(model={"name": "mlp_uniform", "width": 12, "depth": 1, "dropout": p, "activation": "gelu"},
                      seed=seed, train={"epochs": 6, **t})
    members = check([cfg(0.3, 0, stop_below_loss=0.45), cfg(0.0, 1), cfg(0.6, 2, epochs=3)])
    assert members[2].epochs_run == 3


def test_conv_ensembles_with_dropout_equal_solo_runs():
    """The vmap path: masks drawn per member outside vmap and replayed (nin with BN; tweaks_cnn with BN)."""
    base = {"data": {"name": "digits"}, "train": {"epochs": 2, "batch_size": 64}}
    check([config(**base, model={"name": "nin", "width": 4, "depth": 1, "dropout": p}, seed=s)
           for p, s in ((0.0, 0), (0.3, 1), (0.5, 0))])
    check([config(**base, model={"name": "tweaks_cnn", "widths": [4, 4], "hidden": 16, "dropout": p,
                                 "batch_norm": True}, seed=s) for p, s in ((0.0, 0), (0.5, 1))])


def test_conv_ensemble_draws_exactly_the_solo_masks(monkeypatch):
    """Every mask an ensemble member uses is bit-identical to its solo run's, in the same order (tweaks_cnn
    without BN at lr 0.1: its numbers agree to 1e-7 for ~36 steps, then drift apart by 1.2e-2 in the second
    epoch's loss — as much as the solo run itself moves between 1 and 2 torch threads (measured: 1.2e-2 with
    dropout 0.5, 1e-6 without): float sensitivity of this run, not the masks, which this checks)."""
    import genlab.models.dropout as drop_mod
    import genlab.train.stacked_dropout as ens  # where the stacked stepper draws the masks

    seen: list[torch.Tensor] = []
    real = drop_mod.multiplier

    def record(*a, **kw):
        seen.append(real(*a, **kw).clone())
        return seen[-1]
    monkeypatch.setattr(drop_mod, "multiplier", record)
    monkeypatch.setattr(ens, "multiplier", record)
    cfg = config(data={"name": "digits"}, train={"epochs": 2, "batch_size": 64}, seed=1,
                 model={"name": "tweaks_cnn", "widths": [4, 4], "hidden": 16, "dropout": 0.5})
    train_ensemble([cfg])
    member, seen[:] = list(seen), []
    train(cfg)
    assert len(member) == len(seen) == 2 * 24  # 2 epochs × ⌈1,500 / 64⌉ steps, one dropout layer
    assert all(torch.equal(a, b) for a, b in zip(member, seen))


def test_group_key_groups_runs_differing_only_in_dropout():
    cfgs = [mlp_drop(p) for p in (0.0, 0.2, 0.5)] + [mlp_drop(0.2, seed=1)]
    assert len({group_key(c) for c in cfgs}) == 1
    assert group_key(config(model={"name": "mlp_uniform", "width": 32, "depth": 2, "dropout": 0.2})) != group_key(cfgs[0])
    units = ensembles([Job(PlannedRun(c, {}), {}) for c in cfgs], 32)
    assert [len(u) for u in units] == [4]
    nin = [config(data={"name": "digits"}, model={"name": "nin", "width": 4, "dropout": p}) for p in (0.0, 0.5)]
    assert group_key(nin[0]) == group_key(nin[1]) is not None


def test_plugin_family_with_dropout_option_still_trains_solo(monkeypatch):
    """A family outside DROPOUT_FAMILIES may use torch's nn.Dropout (global RNG): dropout > 0 keeps it solo."""
    from genlab.executors import ensemble as ex

    cfg = mlp_drop(0.3)
    monkeypatch.setattr(ex, "DROPOUT_FAMILIES", ())
    assert ex.group_key(cfg) is None and ex.group_key(mlp_drop(0.0)) is not None


# --- resume -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ensemble", [False, True])
def test_resume_of_a_dropout_run_is_bit_identical(ensemble):
    """Snapshots every epoch; continuing from epoch 2 gives the uninterrupted numbers bit for bit (the dropout
    generator is in the snapshot: without it the masks after the resume would differ)."""
    cfgs = [mlp_drop(p, seed=s, record={"resume_every": 1}) for p, s in ((0.5, 0), (0.2, 1))][:2 if ensemble else 1]
    snaps: list[dict] = [{} for _ in cfgs]
    savers = [lambda st, i=i: snaps[i].__setitem__(st["epoch"], copy.deepcopy(st)) for i in range(len(cfgs))]

    def run(save_resumes=None, resumed=None):
        if ensemble:
            return train_ensemble(cfgs, save_resumes=save_resumes, resumed=resumed)
        return [train(cfgs[0], save_resume=(save_resumes or [None])[0], resumed=(resumed or [None])[0])]

    full = run(save_resumes=savers)
    assert "dropout" in snaps[0][2]["gens"]
    again = run(resumed=[s[2] for s in snaps])
    assert_bit_identical(full, again, epochs=4)
    stale = copy.deepcopy(snaps[0][2])
    stale["gens"]["dropout"] = generators(cfgs[0].seed, torch.device("cpu"))["dropout"].get_state()  # rewound
    off = run(resumed=[stale] + [s[2] for s in snaps[1:]])
    assert off[0].history[-1]["train_loss"] != full[0].history[-1]["train_loss"]
