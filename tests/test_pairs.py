"""Pairs of runs as an input (genlab.spec.pairs, genlab.executors.pairs, genlab.store.pairs): a spec's [pairs] table checked at load, seed pairs formed per config
point, values stored with both run ids, read back per pair and as each run's config-point mean, and ranked by
the analysis beside the single-run measures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genlab.spec.loader import parse
from genlab.executors.pairs import measure_pairs
from genlab.spec.pairs import PairSpec
from genlab.store.pairs import pair_path, pair_results, seed_pairs
from genlab.spec import SpecError
from genlab.store import Store
from genlab.train.loop import summary, train

BASE = {"name": "pe", "seeds": [0, 1, 2], "data": {"name": "separable", "n_train": 64, "n_test": 32},
        "model": {"name": "mlp", "widths": [8]}, "train": {"epochs": 2}, "sweep": {"model.widths": [[8], [16]]},
        "pairs": {"measures": ["mode_connectivity", "cka"], "max_pairs": 2,
                  "measure_options": {"mode_connectivity": {"points": 3}, "cka": {"kernels": ["linear"]}}}}


def _train_all(store: Store, exp) -> None:
    for r in exp.runs:
        cfg = r.config
        writer = store.start(cfg.canonical_json(), exp.name, cfg.run_id, {})
        writer.finish(summary(train(cfg, save=writer.save_state), cfg, 0.0))


def test_pairs_table_is_checked_when_the_spec_loads():
    exp = parse(BASE)
    assert exp.pairs["measures"] == ["mode_connectivity", "cka"] and exp.pairs["by"] == "seed"
    for bad, match in [({"measures": ["no_such"]}, "no_such"),
                       ({"measures": ["cka"], "measure_options": {"mode_connectivity": {}}}, "not in pairs.measures"),
                       ({"measures": ["cka"], "by": "parent"}, "pairs.by"),
                       ({"measures": ["cka"], "measure_options": {"cka": {"kernel": "rbf"}}}, "kernel"),
                       ({"measures": []}, "pairs.measures")]:
        with pytest.raises(SpecError, match=match):
            parse({**BASE, "pairs": bad})


def test_seed_pairs_are_formed_within_a_config_point():
    cfgs = {"a": {"seed": 0, "x": 1}, "b": {"seed": 1, "x": 1}, "c": {"seed": 2, "x": 1}, "d": {"seed": 0, "x": 2}}
    assert seed_pairs(cfgs) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert seed_pairs(cfgs, max_pairs=1) == [("a", "b")]
    assert seed_pairs({"d": cfgs["d"]}) == []


def test_pairs_are_measured_stored_with_both_ids_and_averaged_per_point(tmp_path):
    store = Store(tmp_path)
    exp = parse(BASE)
    _train_all(store, exp)
    spec = PairSpec.model_validate(exp.pairs)
    done = measure_pairs(store, "pe", spec)
    assert len(done) == 4  # 2 points × the first 2 of their 3 seed pairs
    skipped = []
    assert measure_pairs(store, "pe", spec, on_skip=lambda p, why: skipped.append(p)) == {}
    assert sorted(skipped) == sorted(done)  # the same options: measured before
    table = pair_results(tmp_path, "pe")
    assert len(table) == 4 and set(zip(table.run_a, table.run_b)) == set(done)
    assert {"mode_connectivity.loss_barrier.test", "cka.linear.mean"} <= set(table.columns)
    for (a, b), values in done.items():
        assert pair_path(tmp_path, "pe", (a, b)).exists()
        assert values["cka.linear.mean"] < 1.0  # different seeds: different representations
    results = store.results("pe")
    by_id = {r.run_id: r for r in exp.runs}
    for _, row in results.iterrows():
        mine = [v for (a, b), v in done.items() if by_id[a].config.model_dump()["model"] ==
                by_id[row.run_id].config.model_dump()["model"]]
        want = np.mean([v["cka.linear.mean"] for v in mine])
        assert row["cka.linear.mean"] == pytest.approx(want, rel=1e-12)
    assert results["mode_connectivity.loss_barrier.train"].notna().all()


def test_analysis_ranks_pair_measures_beside_the_others(tmp_path):
    from genlab.analysis import analyze

    store = Store(tmp_path)
    exp = parse({**BASE, "record": {"measures": ["margin_q10"]}})
    _train_all(store, exp)
    measure_pairs(store, "pe", PairSpec.model_validate(exp.pairs))
    a = analyze(store.results("pe"), gap="test_loss - train_loss")
    names = set(a.table["measure"])
    assert {"margin_q10", "cka.linear.mean", "mode_connectivity.loss_barrier.test"} <= names
    row = a.table.set_index("measure").loc["cka.linear.mean"]
    assert row["n"] == 6 and math.isfinite(row["tau"])


SPEC = """
name = "pc"
seeds = [0, 1]
data = { name = "separable", n_train = 64, n_test = 32 }
model = { name = "mlp", widths = [8] }
train = { epochs = 1 }

[pairs]
measures = ["cka"]
measure_options = { cka = { kernels = ["linear"] } }
"""


def test_genlab_run_measures_the_pairs_and_genlab_pairs_skips_or_redoes_them(write_spec, tmp_path):
    from typer.testing import CliRunner

    from genlab.cli import app

    runner, store = CliRunner(), tmp_path / "store"
    path = write_spec(SPEC)
    r = runner.invoke(app, ["run", str(path), "--store", str(store), "--quiet"])
    assert r.exit_code == 0, r.output
    table = pair_results(store, "pc")
    assert len(table) == 1 and 0 < table.loc[0, "cka.linear.mean"] < 1  # measured by `genlab run`
    r = runner.invoke(app, ["pairs", str(path), "--store", str(store)])
    assert r.exit_code == 0 and "measured 0 pairs" in r.output  # the same options: kept
    r = runner.invoke(app, ["pairs", str(path), "--store", str(store), "--redo", "-m", "mode_connectivity"])
    assert r.exit_code == 0 and "measured 1 pairs" in r.output, r.output
    both = pair_results(store, "pc")
    assert {"cka.linear.mean", "mode_connectivity.loss_barrier.test"} <= set(both.columns)  # merged, not replaced


def test_a_pair_measure_in_record_measures_says_where_it_belongs():
    with pytest.raises(SpecError, match=r"record.measures.0.*'cka' is a measure of two runs.*\[pairs\]"):
        parse({**BASE, "record": {"measures": ["cka"]}})


# ---- Frankle et al.'s spawned children: identical through epoch k, their own SGD noise after -----------------
SPAWN = {"name": "sp", "seeds": [0], "data": {"name": "separable", "n_train": 64, "n_test": 32},
         "model": {"name": "mlp", "widths": [8]}, "train": {"epochs": 4, "batch_size": 8},
         "events": {"spawn_epoch": 2}, "sweep": {"events.spawn_seed": [1, 2]},
         "pairs": {"measures": ["mode_connectivity"], "by": "spawn",
                   "measure_options": {"mode_connectivity": {"points": 3}}}}


def test_spawned_children_agree_through_epoch_k_and_part_after_it():
    exp = parse(SPAWN)
    a, b = (train(r.config) for r in exp.runs)
    la, lb = ([row["train_loss"] for row in o.history] for o in (a, b))
    assert la[:3] == lb[:3]  # epochs 0, 1, 2: one parent (same seed: same init, same data order)
    assert la[3] != lb[3] and la[4] != lb[4]  # after epoch 2: each child's own data order
    no_spawn = {k: v for k, v in SPAWN.items() if k not in ("events", "sweep", "pairs")}
    plain = train(parse(no_spawn).runs[0].config)
    assert [row["train_loss"] for row in plain.history][:3] == la[:3]  # the parent is the plain run


def test_spawned_children_train_alike_solo_and_in_an_ensemble():
    from genlab.train.ensemble import train_ensemble

    exp = parse(SPAWN)
    solo = [train(r.config) for r in exp.runs]
    stacked = train_ensemble([r.config for r in exp.runs])
    for s, e in zip(solo, stacked):
        assert [r["train_loss"] for r in s.history] == pytest.approx([r["train_loss"] for r in e.history], rel=1e-5)


def test_spawn_pairs_are_children_of_one_parent_and_the_spec_is_checked():
    cfgs = {"a": {"seed": 0, "events": {"spawn_epoch": 2, "spawn_seed": 1}},
            "b": {"seed": 0, "events": {"spawn_epoch": 2, "spawn_seed": 2}},
            "c": {"seed": 1, "events": {"spawn_epoch": 2, "spawn_seed": 1}},
            "d": {"seed": 0, "events": {"spawn_epoch": 3, "spawn_seed": 1}},
            "e": {"seed": 0, "events": {"spawn_epoch": None, "spawn_seed": 0}}}
    assert seed_pairs(cfgs, by="spawn") == [("a", "b")]  # same seed and epoch k, other spawn seed
    assert seed_pairs(cfgs, by="seed") == [("a", "c")]
    with pytest.raises(ValueError, match="pairs.by"):
        seed_pairs(cfgs, by="parent")
    with pytest.raises(SpecError, match="no run sets events.spawn_epoch"):
        parse({**SPAWN, "events": {}, "sweep": {}})
    with pytest.raises(SpecError, match="spawn_seed is set but spawn_epoch is not"):
        parse({**SPAWN, "events": {}})
    with pytest.raises(SpecError, match="leaves no epoch to the children"):
        parse({**SPAWN, "events": {"spawn_epoch": 4}})


def test_spawn_pairs_are_measured_and_read_back_per_point(tmp_path):
    store = Store(tmp_path)
    exp = parse({**SPAWN, "seeds": [0, 1]})
    _train_all(store, exp)
    done = measure_pairs(store, "sp", PairSpec.model_validate(exp.pairs))
    assert len(done) == 2  # one pair of children per parent seed
    res = store.results("sp")
    col = "mode_connectivity.loss_barrier.train"  # continuous: differs between pairs
    assert res[col].notna().all()  # every child gets its parent's pair value
    assert res[col].nunique() == 2  # one value per parent seed (its one pair of children), not pooled
    for seed, g in res.groupby("seed"):
        assert g[col].nunique() == 1
