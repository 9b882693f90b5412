"""`--set key=value`: scalars, nested keys, sweeps, list fields, seeds, --name; unknown keys refused by name."""

import pytest

from genlab.spec import loader as experiment
from genlab.spec.overrides import OverrideError, parse_sets, parse_value
from genlab.spec import SpecError

from conftest import TINY


def load(write_spec, *sets, name=None, text=TINY, profile=None):
    return experiment.load(write_spec(text), profile, sets=parse_sets(list(sets)), name=name)


def test_values_are_toml_else_text():
    assert parse_value("0.05") == 0.05 and parse_value("3") == 3 and parse_value("true") is True
    assert parse_value("[0.1, 1e-3]") == [0.1, 0.001] and parse_value('"mlp"') == "mlp"
    assert parse_value("mlp") == "mlp"  # not TOML: the text itself
    assert parse_value("{ alpha = 0.01 }") == {"alpha": 0.01}
    assert parse_sets(["optim.lr=1", "optim.lr=2"]) == {"optim.lr": 2}  # the last wins
    for bad in ("optim.lr", "=3", "optim..lr=1", "optim lr=1"):
        with pytest.raises(OverrideError, match="key=value"):
            parse_sets([bad])


def test_scalar_sets_every_run_and_changes_run_ids(write_spec):
    base = load(write_spec)
    exp = load(write_spec, "optim.lr=0.05")
    assert [r.config.optim.lr for r in exp.runs] == [0.05, 0.05] and base.runs[0].config.optim.lr == 0.1
    assert set(exp.run_ids).isdisjoint(base.run_ids)  # overridden runs are other runs
    assert exp.sets == {"optim.lr": 0.05}


def test_nested_keys_and_registered_options(write_spec):
    exp = load(write_spec, "data.n_train=16", "record.measure_options.sharpness.cfg.alpha=0.01",
               "record.measures=['sharpness']", "model.bias=false")
    cfg = exp.runs[0].config
    assert cfg.data.options["n_train"] == 16 and cfg.model.options["bias"] is False
    assert cfg.record.measures == ["sharpness"]  # a field that holds a list: a list sets it
    assert cfg.record.measure_options["sharpness"]["cfg"]["alpha"] == 0.01


def test_list_sweeps_and_replaces_the_specs_sweep(write_spec):
    exp = load(write_spec, "optim.lr=[0.1, 0.01, 0.001]")
    assert len(exp.runs) == 6  # 3 lr × the spec's 2 init.std
    assert {(r.config.optim.lr, r.config.init.options["std"]) for r in exp.runs} == \
        {(lr, s) for lr in (0.1, 0.01, 0.001) for s in (0.01, 0.1)}
    swept = load(write_spec, "init.std=[0.5]")  # replaces the spec's sweep of init.std
    assert [r.config.init.options["std"] for r in swept.runs] == [0.5]
    fixed = load(write_spec, "init.std=0.3")  # a scalar on a swept field takes it out of the sweep
    assert [r.config.init.options["std"] for r in fixed.runs] == [0.3]
    lists = load(write_spec, "events.perturb_epochs=[[1], [2, 3]]", "events.perturb_std=0.1")
    assert sorted(r.config.events.perturb_epochs for r in lists.runs) == [[1], [1], [2, 3], [2, 3]]
    assert [r.config.seed for r in load(write_spec, "seeds=[0, 1, 2]").runs] == [0, 1, 2, 0, 1, 2]


def test_zip_groups_lose_an_overridden_key(write_spec):
    text = TINY.replace('[sweep]\n"init.std" = [0.01, 0.1]',
                        '[sweep]\n[[sweep.zip]]\n"optim.lr" = [0.1, 0.01]\n"train.epochs" = [1, 2]')
    exp = load(write_spec, "optim.lr=0.5", text=text)
    assert sorted((r.config.optim.lr, r.config.train.epochs) for r in exp.runs) == [(0.5, 1), (0.5, 2)]


def test_after_the_profile(write_spec):
    exp = load(write_spec, "data.n_train=8", profile="small")  # the profile says 32; --set comes after
    assert exp.runs[0].config.data.options["n_train"] == 8


def test_unknown_keys_are_refused_naming_the_key(write_spec):
    with pytest.raises(SpecError, match=r"--set optim.lrr=0.1.*optim.lrr: unknown field"):
        load(write_spec, "optim.lrr=0.1")
    with pytest.raises(SpecError, match=r"data.widht: unknown option"):
        load(write_spec, "data.widht=3")
    with pytest.raises(OverrideError, match=r"--set optimizer.lr: unknown key 'optimizer.lr'"):
        load(write_spec, "optimizer.lr=0.1")
    with pytest.raises(OverrideError, match=r"--set seed: use seeds=\[...\]"):
        load(write_spec, "seed=3")
    with pytest.raises(OverrideError, match=r"--set name: use --name NAME"):
        load(write_spec, "name=x")
    with pytest.raises(OverrideError, match=r"--set optim: unknown key 'optim'"):
        load(write_spec, "optim=1")
    with pytest.raises(OverrideError, match="empty list"):
        load(write_spec, "optim.lr=[]")
    with pytest.raises(SpecError, match=r"optim.lr: Input should be greater than 0.*got -1"):
        load(write_spec, "optim.lr=-1")


def test_name_gives_the_variant_its_own_runs(write_spec):
    base, other = load(write_spec), load(write_spec, "optim.lr=0.05", name="tiny_lr05")
    assert other.name == "tiny_lr05" and all(r.config.experiment == "tiny_lr05" for r in other.runs)
    assert set(other.run_ids).isdisjoint(base.run_ids)
    with pytest.raises(SpecError, match="name"):
        load(write_spec, name="no spaces")
