"""`genlab export --tensorboard`: event files read back with tensorboard's own reader hold the store's scalars,
per run and epoch, and the config as HParams. (`--wandb` is checked when the wandb extra is installed.)"""

import json
import math

import pytest
from typer.testing import CliRunner

from genlab.cli import app
from genlab.export import hparams_of, scalars
from genlab.store import Store

from conftest import TINY

runner = CliRunner()


@pytest.fixture
def store(write_spec, tmp_path):
    root = tmp_path / "runs"
    r = runner.invoke(app, ["run", str(write_spec(TINY)), "--profile", "none", "--store", str(root), "--quiet",
                            "--set", "events.perturb_epochs=[2]", "--set", "events.perturb_std=0.3"])
    assert r.exit_code == 0, r.output
    return Store(root)


def test_scalars_of_rows():
    rows = [{"epoch": 0, "train_loss": 1.0, "lr": 0.1}, {"epoch": 1, "train_loss": 0.5, "x": None, "ok": True},
            {"epoch": 1, "event": "perturb", "train_loss": 0.9}]
    assert list(scalars(rows)) == [("train_loss", 0, 1.0), ("lr", 0, 0.1), ("train_loss", 1, 0.5),
                                   ("perturb/train_loss", 1, 0.9)]
    hp = hparams_of({"a": {"seed": 0, "optim": {"lr": 0.1}, "k": [1]}, "b": {"seed": 0, "optim": {"lr": 0.2},
                                                                          "k": [1]}})
    assert hp == {"a": {"optim.lr": 0.1, "seed": 0}, "b": {"optim.lr": 0.2, "seed": 0}}  # what varies, and seed


def test_tensorboard_event_files_hold_the_stores_scalars(store, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    logdir = tmp_path / "tb"
    r = runner.invoke(app, ["export", "tiny", "--tensorboard", str(logdir), "--store", str(store.root)])
    assert r.exit_code == 0, r.output
    ids = store.run_ids("tiny")
    folders = {p.name: p for p in logdir.iterdir()}
    assert len(folders) == len(ids)
    for rid in ids:  # each folder says its sweep point and its run: std=0.01_ab12cd
        std = store.config("tiny", rid)["init"]["std"]
        (folder,) = [f for n, f in folders.items() if n == f"std={std}_{rid[:6]}"]
        acc = EventAccumulator(str(folder))
        acc.Reload()
        rows = [json.loads(x) for x in (store.run_dir("tiny", rid) / "metrics.jsonl").read_text().splitlines()]
        want: dict[str, list] = {}
        for row in rows:
            for k, v in row.items():
                if k not in ("epoch", "event") and isinstance(v, (int, float)) and math.isfinite(v):
                    want.setdefault(f"{row['event']}/{k}" if row.get("event") else k, []).append((row["epoch"], v))
        assert "perturb/test_loss" in want and len(want["train_loss"]) == 5  # epochs 0..4, plus the jump
        result = json.loads((store.run_dir("tiny", rid) / "result.json").read_text())
        finals = {f"final/{k}" for k, v in result["final"].items() if isinstance(v, (int, float))}
        assert set(acc.Tags()["scalars"]) == set(want) | finals
        for tag, pairs in want.items():
            got = [(e.step, e.value) for e in acc.Scalars(tag)]
            assert [s for s, _ in got] == [s for s, _ in pairs], tag
            assert all(math.isclose(g, w, rel_tol=1e-6, abs_tol=1e-30) for (_, g), (_, w) in zip(got, pairs)), tag
        start = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        hp = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
        assert hp["init.std"].number_value == store.config("tiny", rid)["init"]["std"]


def test_wandb_offline_runs(store, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    r = runner.invoke(app, ["export", "tiny", "--wandb", str(tmp_path / "wb"), "--store", str(store.root)])
    assert r.exit_code == 0, r.output
    runs = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(list(p.glob("*.wandb")) for p in runs)


def test_export_needs_a_destination(store):
    r = runner.invoke(app, ["export", "tiny", "--store", str(store.root)])
    assert r.exit_code != 0 and "--tensorboard" in str(r.exception)
