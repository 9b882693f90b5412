"""Plugins: the example package in examples/genlab_example_plugin, made visible to importlib.metadata for one
test (its src/ on sys.path beside a dist-info with its entry points: what `pip install -e` writes, without
touching the environment), is loaded lazily by the registries, and its model, measure and rule work."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from genlab import registry

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "genlab_example_plugin"
KINDS = ["genlab.data", "genlab.models", "genlab.models.init", "genlab.losses", "genlab.measures",
         "genlab.figures", "genlab.findings", "genlab.models.rules"]


def fake_install(root: Path, name: str, entry_points: str, src: Path | None = None) -> None:
    """A dist-info under `root` (on sys.path) declaring `entry_points`: what pip writes for a package."""
    info = root / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def isolated_registries(monkeypatch):
    """Every registry restored (and plugins forgotten) after the test, so other tests see only genlab."""
    for m in KINDS:
        importlib.import_module(m)
    registry.load_plugins()  # whatever the environment already has
    saved = {k: (dict(r._entries), dict(r._origins)) for k, r in registry.REGISTRIES.items()}
    modules = set(sys.modules)
    registry.reset_plugins()
    yield
    monkeypatch.undo()  # the fake installs leave sys.path first
    for k, r in registry.REGISTRIES.items():
        r._entries, r._origins = (dict(d) for d in saved[k])
    for m in set(sys.modules) - modules:
        if m.startswith(("genlab_example_plugin", "broken_plugin")):
            del sys.modules[m]
    registry.reset_plugins()
    registry.load_plugins()


@pytest.fixture
def example_plugin(tmp_path, monkeypatch, isolated_registries):
    fake_install(tmp_path, "genlab-example-plugin", '[genlab.plugins]\nexample = genlab_example_plugin\n')
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    monkeypatch.syspath_prepend(str(tmp_path))


def test_example_plugin_entries_load_lazily_and_say_where_they_come_from(example_plugin):
    from genlab.measures import MeasureData, compute, list_measures
    from genlab.models import create_model, get_model_fn
    from genlab.models.rules import apply_rule, list_rules, rule_generator, rule_layers, rule_of

    assert "genlab_example_plugin" not in sys.modules  # nothing imported before a registry is looked up
    assert "example_fixed_sign" in list_rules()
    assert "genlab_example_plugin" in sys.modules
    assert "example_weight_count" in list_measures()
    assert get_model_fn("example_tanh_net").__module__ == "genlab_example_plugin"
    reg = registry.REGISTRIES
    assert reg["rule"].origin("example_fixed_sign") == "genlab_example_plugin (genlab-example-plugin)"
    assert reg["model"].origin("example_tanh_net") == "genlab_example_plugin (genlab-example-plugin)"
    assert reg["model"].origin("mlp") == "genlab.models.mlp (genlab)"

    # the plugin's model trains a step under the plugin's rule; its measure counts 64·16 + 16·10 weights
    torch.manual_seed(0)
    model = apply_rule(create_model("example_tanh_net", (1, 8, 8), 10), "example_fixed_sign", rule_generator(0))
    assert rule_of(model) == "example_fixed_sign"
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    first = rule_layers(model)[0]
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
    from genlab.losses import get_loss

    data = MeasureData(x.flatten(1).view(8, 1, 8, 8), y, x, y, get_loss("cross_entropy"), num_classes=10)
    assert compute(["example_weight_count"], model, data) == {"example_weight_count": 64 * 16 + 16 * 10}


def test_registry_command_shows_the_plugin_and_its_package(example_plugin):
    from genlab.cli import app

    out = CliRunner().invoke(app, ["registry", "rules"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.stdout
    line = next(ln for ln in out.stdout.splitlines() if "example_fixed_sign" in ln)
    assert "genlab-example-plugin" in line
    assert "genlab.models.rules (genlab)" in next(ln for ln in out.stdout.splitlines() if "feedback_alignment" in ln)


def test_a_spec_can_name_plugin_entries(example_plugin):
    from genlab.spec.loader import parse

    exp = parse({"name": "p", "data": {"name": "digits"}, "model": {"name": "example_tanh_net", "width": 8},
                 "train": {"rule": "example_fixed_sign"}, "record": {"measures": ["example_weight_count"]}})
    assert exp.runs[0].config.train.rule == "example_fixed_sign"


@pytest.mark.parametrize("body,cause", [
    (None, "ModuleNotFoundError"),
    ("from genlab.models import register_model\n@register_model('half_plugin_model')\ndef m(**_):\n    pass\n"
     "raise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
    ("import sys\nsys.exit(3)\n", "exit\\(3\\)"),
])
def test_a_broken_plugin_is_named_and_genlab_goes_on_without_it(tmp_path, monkeypatch, isolated_registries,
                                                                  capfd, body, cause):
    module = "broken_plugin_missing_module" if body is None else "broken_plugin_mod"
    if body is not None:
        (tmp_path / f"{module}.py").write_text(body)
    fake_install(tmp_path, "broken-plugin", f"[genlab.plugins]\nbroken = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from genlab.models import get_model_fn, list_models

    capfd.readouterr()
    assert callable(get_model_fn("mlp")) and callable(get_model_fn("mlp"))  # genlab's own entries still work
    err = capfd.readouterr().err
    assert err.count("warning: plugin 'broken'") == 1, err  # once per process
    assert re.search(rf"plugin 'broken' = '{module}' \(package 'broken-plugin'\) failed to load: {cause}", err)
    assert "pip uninstall broken-plugin" in err
    assert "half_plugin_model" not in list_models()  # what it registered before failing is taken out
    assert len(registry._Plugins.errors) == 1


def test_a_plugin_exiting_at_import_does_not_end_a_command(tmp_path, monkeypatch, isolated_registries):
    import subprocess

    (tmp_path / "exiting_plugin.py").write_text("import sys\nsys.exit(3)\n")
    fake_install(tmp_path, "exiting-plugin", "[genlab.plugins]\nexits = exiting_plugin\n")
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}"}
    r = subprocess.run([sys.executable, "-m", "genlab", "registry", "models"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "plugin 'exits' = 'exiting_plugin' (package 'exiting-plugin') failed to load: exit(3)" in r.stderr
    assert "mlp" in r.stdout