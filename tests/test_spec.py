"""Specs: errors name file, field and value; sweeps expand as documented; run ids are stable hashes."""

import json
import subprocess
import sys

import pytest

from genlab.spec import loader as experiment
from genlab.spec import SpecError

from conftest import TINY


def test_tiny_spec_expands_sweep_and_profile(write_spec):
    exp = experiment.load(write_spec(), profile=None)
    assert exp.name == "tiny" and len(exp.runs) == 2
    assert [r.config.init.options["std"] for r in exp.runs] == [0.01, 0.1]
    assert exp.runs[0].config.data.options == {"dim": 3, "n_train": 64, "n_test": 64, "low": -1.0, "high": 1.0,
                                               "seed": 0}
    small = experiment.load(write_spec(), profile="small")
    assert small.profile == "small" and all(r.config.data.options["n_train"] == 32 for r in small.runs)
    assert experiment.load(write_spec()).profile == "small"  # the default profile is `small` when defined


def test_cartesian_zip_and_seeds(write_spec):
    text = TINY.replace("seeds = [0]", "seeds = [1, 2, 3]").replace('[sweep]\n"init.std" = [0.01, 0.1]', '''[sweep]
"init.std" = [0.01, 0.1]
"model.bias" = [true, false]
[[sweep.zip]]
"optim.lr" = [0.1, 0.01]
"train.epochs" = [1, 2]''')
    exp = experiment.load(write_spec(text), profile=None)
    assert len(exp.runs) == 2 * 2 * 2 * 3
    pairs = {(r.config.optim.lr, r.config.train.epochs) for r in exp.runs}
    assert pairs == {(0.1, 1), (0.01, 2)}  # zipped, not crossed
    assert {r.config.seed for r in exp.runs} == {1, 2, 3}
    assert len({r.run_id for r in exp.runs}) == len(exp.runs)
    assert exp.sweep_fields == ("init.std", "model.bias", "optim.lr", "train.epochs")


def test_run_id_is_sha256_of_canonical_json_and_stable(write_spec):
    exp = experiment.load(write_spec(), profile=None)
    cfg = exp.runs[0].config
    import hashlib

    assert cfg.run_id == hashlib.sha256(cfg.canonical_json().encode()).hexdigest()[:12]
    # the same config from another process, and from a file with its tables in another order
    code = f"from genlab.spec import loader as experiment; print(experiment.load({str(write_spec())!r}, None).runs[0].run_id)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == cfg.run_id
    reordered = TINY.replace('[optim]\nlr = 0.1\n', '').replace('[model]', '[optim]\nlr = 0.1\n[model]')
    assert experiment.load(write_spec(reordered, "b.toml"), profile=None).runs[0].run_id == cfg.run_id
    # defaults are resolved: writing a default explicitly changes nothing
    explicit = TINY.replace('name = "linear"', 'name = "linear"\nbias = true')
    assert experiment.load(write_spec(explicit, "c.toml"), profile=None).runs[0].run_id == cfg.run_id
    assert json.loads(cfg.canonical_json())["model"] == {"name": "linear", "bias": True}


@pytest.mark.parametrize("edit, field, value", [
    (('n_train = 64', 'n_train = "many"'), "data.n_train", "'many'"),
    (('dim = 3', 'dims = 3'), "data.dims", "unknown option"),
    (('name = "separable"', 'name = "sepurable"'), "data.name", "known datasets"),
    (('epochs = 4', 'epochs = -1'), "train.epochs", "-1"),
    (('[optim]\nlr = 0.1', '[optim]\nlr = 0.1\nmomentun = 0.9'), "optim.momentun", "unknown field"),
    (('"init.std" = [0.01, 0.1]', '"init.std" = [0.01, "x"]'), "init.std", "'x'"),
    (('"init.std" = [0.01, 0.1]', '"init.std" = []'), "sweep.init.std", "non-empty"),
    (('seeds = [0]', 'seeds = [0]\ncolour = "red"'), "colour", "unknown field"),
    (('batch_size = 8', 'batch_size = 8\nloss = "hinge"'), "train.loss", "known losses"),
])
def test_errors_name_file_field_and_value(write_spec, edit, field, value):
    path = write_spec(TINY.replace(*edit))
    with pytest.raises(SpecError) as e:
        experiment.load(path, profile=None)
    msg = str(e.value)
    assert str(path) in msg and f": {field}:" in msg and value in msg, msg


def test_profile_and_zip_errors(write_spec):
    with pytest.raises(SpecError, match="no profile 'huge'.*small"):
        experiment.load(write_spec(), profile="huge")
    bad_zip = TINY + '[[sweep.zip]]\n"optim.lr" = [0.1, 0.2]\n"train.epochs" = [1]\n'
    with pytest.raises(SpecError, match=r"sweep.zip\[0\].*one common length"):
        experiment.load(write_spec(bad_zip), profile=None)
    with pytest.raises(SpecError, match="not valid TOML"):
        experiment.load(write_spec("name = ["), profile=None)
    with pytest.raises(SpecError, match="no such spec file"):
        experiment.load("/nonexistent/x.toml")


def test_profile_switching_registry_entry_replaces_its_table():
    raw = {"name": "x", "data": {"name": "separable", "dim": 3}, "model": {"name": "linear"},
           "profiles": {"small": {"data": {"name": "gaussian_regression", "p": 4}, "train": {"loss": "mse"}}}}
    exp = experiment.parse(raw, profile="small")
    assert exp.runs[0].config.data.name == "gaussian_regression"
    assert "dim" not in exp.runs[0].config.data.options  # not merged into the other entry's options


def test_configs_are_frozen(write_spec):
    cfg = experiment.load(write_spec(), profile=None).runs[0].config
    with pytest.raises(Exception):
        cfg.seed = 3


def test_fields_added_later_keep_old_run_ids_at_their_default(write_spec):
    cfg = experiment.load(write_spec(), profile=None).runs[0].config
    d = json.loads(cfg.canonical_json())
    assert "constraint" not in d and "measure_options" not in d["record"]
    with_opts = TINY.replace("[sweep]", '[record]\nmeasures = ["num_params"]\nmeasure_options = { num_params = {} }\n[sweep]')
    rec = json.loads(experiment.load(write_spec(with_opts, "m.toml"), None).runs[0].config.canonical_json())["record"]
    assert rec["measure_options"] == {"num_params": {}}  # not the default: hashed


def test_option_fields_added_later_keep_old_run_ids_at_their_default(write_spec):
    """FlatnessConfig.deviation_tol came after runs stored pacbayes options: at its default it is left out of
    the resolved options (the stored shape, so the same run id); set, it is stored and hashed."""
    def load(cfg: str, name: str):
        text = TINY.replace("[sweep]", '[record]\nmeasures = ["pacbayes_flatness"]\nmeasure_options = '
                            '{ pacbayes_flatness = { cfg = { ' + cfg + ' } } }\n[sweep]')
        return experiment.load(write_spec(text, name), None).runs[0].config

    before, explicit, set_ = load("mc_samples = 4", "a.toml"), load("mc_samples = 4, deviation_tol = 0.0", "b.toml"), \
        load("mc_samples = 4, deviation_tol = 0.01", "c.toml")
    stored = json.loads(before.canonical_json())["record"]["measure_options"]["pacbayes_flatness"]["cfg"]
    assert set(stored) == {"target", "quantity", "mc_samples", "search_depth", "sigma_start", "magnitude_eps",
                           "max_samples", "seed"}  # the fields runs were stored with
    assert explicit.run_id == before.run_id != set_.run_id
    assert json.loads(set_.canonical_json())["record"]["measure_options"]["pacbayes_flatness"]["cfg"][
        "deviation_tol"] == 0.01


def test_omitted_defaults_json_matches_the_configs():
    """The store's torch-free copy of OMIT_DEFAULT (genlab.store.defaults) holds the configs' own defaults."""
    from pydantic import BaseModel

    from genlab.store.defaults import OMIT_DEFAULT_JSON
    from genlab.spec import OMIT_DEFAULT

    assert {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v
            for k, v in OMIT_DEFAULT.items()} == OMIT_DEFAULT_JSON
