"""The ensemble trainer equals K solo runs (same seeds), member by member, and the executor stores each member
as its solo run: same run ids, files and meaning."""

import math

import pytest
import torch
from torch import nn

from genlab.executors import Job
from genlab.executors.ensemble import group_key, parse_ensemble, ensembles
from genlab.losses import get_loss, list_losses
from genlab.spec.loader import PlannedRun
from genlab.spec import RunConfig
from genlab.train.ensemble import ACT_GRAD, mlp_grads, train_ensemble
from genlab.train.loop import train

RTOL = 1e-4  # float32: members and solo runs use different kernels (bmm vs mm), so not bit-identical


def config(**over) -> RunConfig:
    base = {"experiment": "ens", "seed": 0,
            "data": {"name": "separable", "dim": 5, "n_train": 120, "n_test": 100},
            "model": {"name": "mlp", "widths": [16]}, "init": {"name": "normal", "std": 0.3},
            "optim": {"lr": 0.1}, "train": {"epochs": 4, "batch_size": 16},
            "record": {"checkpoint": "final", "save_init": False}}
    for k, v in over.items():
        old = base.get(k, {})
        same = isinstance(v, dict) and v.get("name", old.get("name")) == old.get("name")
        base[k] = {**old, **v} if same else v  # a table naming another entry replaces the table
    return RunConfig.model_validate(base)


def assert_same(solo, member):
    """Status, stop reason, epochs, every history value and the final weights, to float tolerance."""
    assert (member.status, member.stop_reason, member.epochs_run) == (solo.status, solo.stop_reason, solo.epochs_run)
    assert len(member.history) == len(solo.history)
    for a, b in zip(solo.history, member.history):
        assert set(a) == set(b)
        for k in a:
            if k == "epoch_s":
                continue
            if isinstance(a[k], float) and math.isnan(a[k]):
                assert math.isnan(b[k]), k
            elif isinstance(a[k], float):
                assert b[k] == pytest.approx(a[k], rel=RTOL, abs=1e-6), (k, a, b)
            else:
                assert a[k] == b[k]
    sa, sb = solo.model.state_dict(), member.model.state_dict()
    assert list(sa) == list(sb)
    for n in sa:
        if solo.status == "completed":
            torch.testing.assert_close(sb[n], sa[n], rtol=RTOL, atol=1e-5)


def assert_bit_identical(full, again, epochs: int) -> None:
    """Resumed outcomes equal uninterrupted ones exactly: every history value (not the timings), the epochs
    run and every tensor of the final state."""
    strip = lambda h: [{k: v for k, v in r.items() if k != "epoch_s"} for r in h]  # noqa: E731
    for a, b in zip(full, again):
        assert strip(a.history) == strip(b.history) and b.epochs_run == a.epochs_run == epochs
        for n, t in a.model.state_dict().items():
            assert torch.equal(t, b.model.state_dict()[n]), n


def check(configs):
    members = train_ensemble(configs)
    for cfg, m in zip(configs, members):
        assert_same(train(cfg), m)
    return members


def test_per_member_lr_init_seed_and_schedule():
    check([config(optim={"lr": 0.05}), config(optim={"lr": 0.2}, seed=1),
           config(init={"name": "normal", "std": 1.0}, seed=2),
           config(schedule={"name": "cosine", "min_factor": 0.1, "warmup_epochs": 1})])


def test_perturbations_cosine_and_checkpoints_per_member():
    members = check([config(events={"perturb_epochs": [2], "perturb_std": 0.5}),
                     config(events={"perturb_epochs": [1, 3], "perturb_std": 0.1, "cosine_ref_epoch": 1}),
                     config(record={"checkpoint_epochs": [2]})])
    assert [r.get("event") for r in members[0].history].count("perturb") == 1
    ref_row, jump = members[1].history[1], members[1].history[2]
    assert ref_row["cosine"] == pytest.approx(1.0) and jump["event"] == "perturb" and jump["cosine"] < 0.999


def test_stop_rules_diverging_member_and_epochs_per_member():
    members = check([config(train={"stop_at_zero_error": True, "epochs": 30}, optim={"lr": 1.0}),
                     config(optim={"lr": 1e6}, init={"name": "normal", "std": 10.0}, train={"epochs": 30}),
                     config(train={"stop_below_loss": 0.3, "epochs": 30}),
                     config(train={"epochs": 2})])
    assert members[0].stop_reason == "zero_train_error" and members[0].epochs_run < 30
    assert members[1].status == "diverged" and members[1].stop_reason == "non_finite_loss"
    assert math.isnan(members[1].history[-1]["test_error"])  # NaN outputs are not scored
    assert members[3].epochs_run == 2 and members[2].stop_reason == "train_loss_below"


def test_corruption_masks_per_member_on_digits():
    cfgs = [config(data={"name": "digits", "corrupt_prob": p}, seed=s, train={"epochs": 3, "batch_size": 64},
                   model={"name": "mlp", "widths": [32]}) for p, s in ((0.0, 0), (0.5, 0), (1.0, 1))]
    members = check(cfgs)
    assert members[0].data_info["n_corrupted"] == 0 < members[1].data_info["n_corrupted"]


def test_optimizers_per_member_hyperparameters():
    check([config(optim={"lr": 0.1, "momentum": 0.9}), config(optim={"lr": 0.05, "momentum": 0.5, "nesterov": True}),
           config(optim={"lr": 0.1, "weight_decay": 0.01})])
    check([config(optim={"name": "adam", "lr": 1e-2}), config(optim={"name": "adam", "lr": 3e-3, "betas": [0.8, 0.99],
                                                                    "weight_decay": 1e-3})])


def test_generic_path_conv_batchnorm_and_losses():
    """vmap(functional_call) for models that are not plain MLPs: conv4 (BatchNorm, max-pool) on digits."""
    base = {"data": {"name": "digits"}, "model": {"name": "conv4", "width": 4, "kernel_size": 3},
            "train": {"epochs": 2, "batch_size": 64}}
    check([config(**base, optim={"lr": 0.05}), config(**base, optim={"lr": 0.1, "momentum": 0.9}, seed=3)])


@pytest.mark.parametrize("loss", list_losses())
@pytest.mark.parametrize("act", [a for a in ("relu", "tanh", "sigmoid", "identity")])
def test_mlp_gradients_by_hand_equal_autograd(loss, act):
    """mlp_grads (no autograd) vs torch.autograd, for every registered loss and activation with a hand rule."""
    from genlab.models import create_model

    torch.manual_seed(0)
    lf = get_loss(loss)
    k, b, classes = 3, 7, 2 if loss == "exp" else 4
    nets = [create_model("mlp", (5,), lf.num_outputs(classes), widths=[6, 5], activation=act) for _ in range(k)]
    params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in nets]) for n, _ in nets[0].named_parameters()}
    x, y = torch.randn(k, b, 5), torch.randint(0, classes, (k, b))
    losses, grads = mlp_grads(nets[0], params, x, y, lf)
    for i, m in enumerate(nets):
        l = lf(m(x[i]), y[i])
        assert float(losses[i]) == pytest.approx(float(l.detach()), rel=1e-5)
        auto = torch.autograd.grad(l, list(m.parameters()))
        for (n, _), g in zip(m.named_parameters(), auto):
            torch.testing.assert_close(grads[n][i], g, rtol=1e-4, atol=1e-6)
    assert {nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity} <= set(ACT_GRAD)


def test_plan_groups_by_key_and_keeps_solo_runs_solo():
    jobs = [Job(PlannedRun(c, {}), {}) for c in (
        config(optim={"lr": 0.1}), config(optim={"lr": 0.2}), config(seed=3),
        config(model={"name": "mlp", "widths": [32]}),                       # other architecture
        config(constraint={"name": "project"}),                              # weight-normalized: solo
        config(train={"batch_size": 32}))]                                   # other batch size
    units = ensembles(jobs, 32)
    assert sorted(len(u) for u in units) == [1, 1, 1, 3]
    assert group_key(jobs[4].run.config) is None
    assert [len(u) for u in ensembles(jobs, 2)].count(2) == 1  # K caps a group
    assert all(len(u) == 1 for u in ensembles(jobs, 1))
    conv = [Job(PlannedRun(config(data={"name": "digits"}, model={"name": "conv4", "width": 4}, seed=s), {}), {})
            for s in range(2)]
    from genlab.executors import calibrate

    asked = []
    for pays, sizes in ((False, [1, 1]), (True, [2])):  # on a CPU convs stack where calibration measures a gain
        calibrate._DECIDED.clear()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(calibrate, "stacking_pays", lambda cfg, key, dev, threads, pays=pays:
                       asked.append((key, threads)) or pays)
            assert [len(u) for u in ensembles(conv, 32, auto=True, device="cpu", threads=3)] == sizes
    assert len(asked) == 2 and len(set(asked)) == 1 and asked[0][1] == 3  # once per group key and plan, at
    # the runs' threads
    assert [len(u) for u in ensembles(conv, 32, auto=True, device="cuda")] == [2]
    assert parse_ensemble("auto") == (32, True) and parse_ensemble("off") == (1, False)
    assert parse_ensemble("4") == (4, False)
    with pytest.raises(ValueError, match="--ensemble takes auto, off or a positive integer, got 'zero'"):
        parse_ensemble("zero")


def test_executor_writes_members_as_solo_runs(tmp_path):
    """Same run ids, files and results (to float tolerance) with --ensemble 4 as with --ensemble off."""
    from genlab.executors.local import run_local
    from genlab.store import Store

    cfgs = [config(optim={"lr": lr}, train={"epochs": e, "stop_below_loss": 0.2}) for lr, e in
            ((0.05, 3), (0.5, 6), (0.2, 2))]
    jobs = [Job(PlannedRun(c, {"optim.lr": c.optim.lr}), {"experiment": "ens"}) for c in cfgs]
    done = []
    for mode, root in (((4, False), tmp_path / "e"), ((1, False), tmp_path / "s")):
        run_local(jobs, Store(root), ensemble=mode, on_done=lambda j, r, e: done.append((j, r, e)))
    assert all(e is None for _, _, e in done)
    se, ss = Store(tmp_path / "e"), Store(tmp_path / "s")
    assert sorted(se.run_ids("ens")) == sorted(ss.run_ids("ens")) == sorted(c.run_id for c in cfgs)
    for rid in ss.run_ids("ens"):
        fe = sorted(p.name for p in (tmp_path / "e" / "ens" / rid).iterdir())
        assert fe == sorted(p.name for p in (tmp_path / "s" / "ens" / rid).iterdir())
    re, rs = se.results("ens").set_index("run_id"), ss.results("ens").set_index("run_id")
    for col in ("train_loss", "test_error", "epochs_run"):
        assert re.loc[rs.index, col].tolist() == pytest.approx(rs[col].tolist(), rel=RTOL)
    assert len(se.history("ens")) == len(ss.history("ens"))


@pytest.mark.parametrize("ensemble", [False, True])
def test_resume_from_a_snapshot_is_bit_identical(ensemble):
    """Snapshots every epoch; continuing from the epoch-2 one gives the uninterrupted numbers, bit for bit."""
    import copy

    from genlab.train.loop import train as solo

    cfgs = [config(optim={"lr": 0.1, "momentum": 0.9}, record={"resume_every": 1},
                   events={"perturb_epochs": [3], "perturb_std": 0.2}, seed=s) for s in range(2 if ensemble else 1)]
    snaps: list[dict] = [{} for _ in cfgs]
    saver = [lambda st, i=i: snaps[i].__setitem__(st["epoch"], copy.deepcopy(st)) for i in range(len(cfgs))]
    run = (lambda **kw: train_ensemble(cfgs, **kw)) if ensemble else (
        lambda save_resumes=None, resumed=None: [solo(cfgs[0], save_resume=(save_resumes or [None])[0],
                                                      resumed=(resumed or [None])[0])])
    full = run(save_resumes=saver)
    assert sorted(snaps[0]) == [1, 2, 3]  # not after the last epoch: the run is finished then
    again = run(resumed=[s[2] for s in snaps])
    assert_bit_identical(full, again, epochs=4)


def test_memory_cap_splits_an_ensemble(monkeypatch):
    """An ensemble larger than the memory allows trains as smaller ones, with the same numbers."""
    import genlab.train.ensemble as ens

    cfgs = [config(seed=s) for s in range(3)]
    whole = train_ensemble(cfgs)
    one = ens.member_bytes(ens.new_member(cfgs[0], torch.device("cpu")))
    assert one > 4 * sum(p.numel() for p in ens.new_member(cfgs[0], torch.device("cpu")).model.parameters()) * 4
    monkeypatch.setattr(ens, "free_bytes", lambda dev: int(2.5 * one / ens.MEMORY_SHARE))  # room for 2
    seen = []
    monkeypatch.setattr(ens, "Stacked", lambda part, _S=ens.Stacked: seen.append(len(part)) or _S(part))
    split = train_ensemble(cfgs)
    assert seen == [2, 1]
    for a, b in zip(whole, split):
        assert a.history[-1]["train_loss"] == pytest.approx(b.history[-1]["train_loss"], rel=1e-6)


@pytest.mark.parametrize("field, value", [("precision", "bf16"), ("compile", True)])
def test_cuda_only_options_are_refused_on_a_cpu(field, value):
    """bf16 autocast and torch.compile are CUDA options: on a CPU a clear error, not a silent no-op."""
    cfg = config(train={field: value})
    with pytest.raises(ValueError, match=f"train.{field}.*needs a CUDA device"):
        train(cfg)
    with pytest.raises(ValueError, match="needs a CUDA device"):
        train_ensemble([cfg, config(train={field: value}, seed=1)])
    assert config().run_id == config(train={field: {"precision": "float32"}.get(field, False)}).run_id  # defaults keep ids
    if field != "precision":
        assert group_key(cfg) is None  # compiled runs train solo
