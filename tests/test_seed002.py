"""Seed 002 (the tweaks study): its specs load under both profiles and match the seed's settings, its
figures draw what they say, and every [[figures]] / [[findings]] entry works on tables of the spec's shape."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genlab.spec import loader as experiment
from genlab.figures import draw
from genlab.findings import VERDICTS, evaluate
from genlab.tables import flatten
from test_data_vision import data_root, tiny_cifar  # noqa: F401  (fixtures: tiny CIFAR-10 files)

SPECS = sorted((Path(__file__).parents[1] / "experiments" / "002").glob("*.toml"))


# ---- synthetic tables ------------------------------------------------------------------------------------

def facet_history() -> pd.DataFrame:
    """2 schedules × 2 lrs × 2 seeds × epochs 0..3, plus a constant-init run with no lr (NaN hue).

    val_error = lr-dependent constant; train_loss = 1/(epoch+1) + seed (so seeds differ)."""
    rows = []
    for sched in ("constant", "piecewise"):
        for lr in (0.01, 0.1):
            for seed in (0, 1):
                for epoch in range(4):
                    rows.append({"run_id": f"{sched}-{lr}-{seed}", "schedule.name": sched, "optim.lr": lr,
                                 "init.value": np.nan, "seed": seed, "epoch": epoch,
                                 "train_loss": 1 / (epoch + 1) + seed, "val_loss": 2.0, "val_error": lr})
    for epoch in range(4):
        rows.append({"run_id": "const", "schedule.name": "constant", "optim.lr": np.nan, "init.value": 1.0,
                     "seed": 0, "epoch": epoch, "train_loss": 2.3, "val_loss": 2.3, "val_error": 0.9})
    return pd.DataFrame(rows)


def versus_results() -> pd.DataFrame:
    """Dropout 0.0 / 0.6 / 0.9 × BN off/on × 2 seeds; val_loss = dropout + 0.1·seed + 0.5·BN."""
    rows = []
    for d in (0.0, 0.6, 0.9):
        for bn in (False, True):
            for seed in (0, 1):
                rows.append({"run_id": f"{d}-{bn}-{seed}", "model.dropout": d, "model.batch_norm": bn, "seed": seed,
                             "optim.weight_decay": d / 10, "val_loss": d + 0.1 * seed + 0.5 * bn,
                             "train_loss": d / 2, "test_error": 0.3 - d / 10})
    return pd.DataFrame(rows)


FIGURE_CASES = {
    "curves_facets": lambda: ({"panels": [["train_loss", "val_loss"], ["val_accuracy"]], "hue": ["optim.lr"],
                               "facet": "schedule.name"}, facet_history(), pd.DataFrame()),
    "versus_panels": lambda: ({"x": "model.dropout", "one_minus": True, "panels": [["val_loss"], ["test_accuracy"]],
                               "hue": "model.batch_norm"}, pd.DataFrame(), versus_results()),
}


# ---- figures ---------------------------------------------------------------------------------------------

def test_curves_facets_one_panel_per_facet_one_line_per_hue_key():
    fig = draw({"name": "curves_facets", "panels": [["train_loss"]], "hue": ["optim.lr", "init.value"],
                "facet": "schedule.name", "labels": {"optim.lr": "lr", "init.value": "c"}}, facet_history(), None)
    assert len(fig.axes) == 2  # one panel, two facets side by side
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["schedule.name = constant", "schedule.name = piecewise"]
    const_ax, pw_ax = fig.axes
    assert [ln.get_label() for ln in const_ax.get_lines()] == ["train_loss (c=1)", "train_loss (lr=0.01)",
                                                               "train_loss (lr=0.1)"]  # missing values left out
    assert len(pw_ax.get_lines()) == 2
    x, y = next(ln for ln in pw_ax.get_lines() if ln.get_label() == "train_loss (lr=0.1)").get_data()
    assert list(x) == [0, 1, 2, 3]
    assert y == pytest.approx([1 / (e + 1) + 0.5 for e in range(4)])  # mean over seeds 0 and 1
    assert len(pw_ax.collections) == 2  # a ±1 std band per line, seeds differ
    assert const_ax.get_ylabel() == "loss (nats)" and const_ax.get_xlabel() == "epoch"


def test_curves_facets_grid_where_and_line_styles():
    fig = draw({"name": "curves_facets", "panels": [["train_loss", "val_loss"], ["val_accuracy"]], "hue": ["optim.lr"],
                "facet": "schedule.name", "where": "`schedule.name` == 'piecewise'", "log_y": True},
               facet_history(), None)
    assert len(fig.axes) == 2  # one facet row left × two panels
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_yscale() == "log"  # log_y applies to loss panels only
    assert {ln.get_linestyle() for ln in loss_ax.get_lines()} == {"-", ":"}  # train solid, val dotted
    assert acc_ax.get_ylabel() == "accuracy" and acc_ax.get_yscale() == "linear"
    acc = {ln.get_label(): ln.get_ydata() for ln in acc_ax.get_lines()}
    assert acc["val_accuracy (optim.lr=0.1)"] == pytest.approx([0.9] * 4)  # 1 − val_error
    with pytest.raises(ValueError, match="selects no"):
        draw({"name": "curves_facets", "where": "epoch > 99"}, facet_history(), None)
    with pytest.raises(ValueError, match="config field 'model.bn'"):
        draw({"name": "curves_facets", "hue": ["model.bn"]}, facet_history(), None)


def test_versus_panels_plots_keep_probability_with_mean_and_std():
    opts, _, res = FIGURE_CASES["versus_panels"]()
    fig = draw({"name": "versus_panels", **opts, "labels": {"model.dropout": "keep probability p"}}, None, res)
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_xlabel() == "keep probability p" and loss_ax.get_ylabel() == "loss (nats)"
    lines = {c.get_label(): c.lines[0] for c in loss_ax.containers}  # errorbar containers carry the labels
    off = lines["val_loss (model.batch_norm=False)"]
    assert list(off.get_xdata()) == pytest.approx([0.1, 0.4, 1.0])  # p = 1 − dropout, ascending
    assert off.get_ydata() == pytest.approx([0.95, 0.65, 0.05])  # mean over seeds of d + 0.1·seed
    on = lines["val_loss (model.batch_norm=True)"]
    assert on.get_ydata() == pytest.approx([1.45, 1.15, 0.55])
    bars = loss_ax.containers[0]  # errorbar container: ± sample std over seeds = 0.1/√2
    seg = bars.lines[2][0].get_segments()[0]
    assert seg[1][1] - seg[0][1] == pytest.approx(2 * 0.1 / math.sqrt(2))
    assert acc_ax.get_ylabel() == "accuracy"


def test_versus_panels_symlog_keeps_zero():
    fig = draw({"name": "versus_panels", "x": "optim.weight_decay", "panels": [["val_loss"]], "x_scale": "symlog"},
               None, versus_results())
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog"
    assert list(ax.containers[0].lines[0].get_xdata()) == pytest.approx([0.0, 0.06, 0.09])
    assert ax.get_xlabel() == "optim.weight_decay"


# ---- specs -----------------------------------------------------------------------------------------------

def test_there_is_a_spec_per_study():
    assert [p.stem for p in SPECS] == ["fig1_dropout", "fig2_step_size", "fig3_5_batchnorm", "fig6_init_scale",
                                       "fig7_init_scaled", "fig8_9_weight_decay"]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_full_profile_is_the_seeds_setting(path):
    exp = experiment.load(path, "full")
    for run in exp.runs:
        c = run.config
        assert (c.data.name, c.data.options["val_size"], c.data.options["augment"]) == ("cifar10", 10000, "none")
        assert c.model.name == "tweaks_cnn" and c.train.epochs == 10
        assert c.train.batch_size == 32 or "train.batch_size" in exp.sweep_fields
        assert c.experiment.startswith("tweaks_")
    small = experiment.load(path, "small")
    assert {r.config.data.name for r in small.runs} == {"digits"} and {r.config.seed for r in small.runs} == {0, 1, 2}
    assert len(small.runs) <= 3 * len(exp.runs)  # the small sweep is the full one or a subset of it, 3 seeds
    assert {r.config.data.options["val_size"] for r in small.runs} == {300}


def test_full_model_has_the_seeds_parameter_count():
    from genlab.models import count_params, create_model

    assert count_params(create_model("tweaks_cnn", (3, 32, 32), 10)) == 1_250_858  # "about 1,250,000" (§2)


def test_dropout_sweep_is_keep_probability_one_minus_dropout():
    exp = experiment.load(SPECS[0], "full")
    keep = sorted(round(1 - r.config.model.options["dropout"], 10) for r in exp.runs)
    assert keep == pytest.approx([0.1 * k for k in range(1, 11)])


def test_init_sweeps_name_whole_tables():
    exp = experiment.load(SPECS[3], "full")
    inits = {(r.config.init.name, r.config.init.options.get("value", r.config.init.options.get("std")))
             for r in exp.runs}
    assert {("constant", 0.0), ("constant", 1.0), ("normal", 0.05), ("uniform", 0.3)} <= inits
    assert all(r.config.init.bias == "zero" for r in exp.runs)
    names = {r.config.init.name for r in experiment.load(SPECS[4], "full").runs}
    assert names == {"normal", "uniform", "lecun_normal", "lecun_uniform", "xavier_normal", "xavier_uniform",
                     "he_normal", "he_uniform"}


def fake_tables(exp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """History and results shaped like the store's for `exp`'s runs, with made-up decreasing metrics."""
    hist, res = [], []
    for i, r in enumerate(exp.runs):
        cfg = flatten(r.config.model_dump(mode="json"))
        for epoch in range(4):
            m = {f"{s}_{k}": (1.0 + i % 3) / (epoch + 1) * (1 if k == "loss" else 0.3)
                 for s in ("train", "val", "test") for k in ("loss", "error")}
            hist.append({"run_id": r.run_id, **cfg, "epoch": epoch, **m})
        res.append({"run_id": r.run_id, **cfg, **{k: v for k, v in hist[-1].items() if k not in cfg}})
    return pd.DataFrame(hist), pd.DataFrame(res)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_figure_and_finding_of_the_spec_works_on_its_tables(path):
    exp = experiment.load(path, "small")
    history, results = fake_tables(exp)
    assert exp.figures and exp.findings
    for entry in exp.figures:
        fig = draw(entry, history, results)
        assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() for ax in fig.axes), entry["file"]
    for entry in exp.findings:
        claim, f = evaluate(entry, history, results)
        assert "002" in claim and np.isfinite(f.value) and f.verdict in VERDICTS, claim


def test_small_profile_trains_on_digits_with_a_validation_split():
    from genlab.train.loop import train

    cfg = experiment.load(SPECS[5], "small").runs[0].config
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 2})})
    out = train(cfg)
    first, last = out.history[0], out.history[-1]
    assert {"val_loss", "val_error", "test_loss", "train_loss"} <= set(last)
    assert last["train_loss"] < first["train_loss"] and last["val_error"] < first["val_error"]


def test_full_profile_trains_on_cifar10_files(tiny_cifar, tmp_path):
    """A full-profile run (CIFAR-10, tweaks_cnn with BN, val split) goes end to end on tiny CIFAR files."""
    from genlab.executors import pending
    from genlab.executors.local import run_local
    from genlab.store import Store

    exp = experiment.load(SPECS[2], "full")  # fig3_5_batchnorm
    run = next(r for r in exp.runs if r.config.model.options["batch_norm"] and r.config.train.batch_size == 32)
    data = run.config.data.model_copy(update={"val_size": 10})  # 60 tiny images: 50 train / 10 validation
    cfg = run.config.model_copy(update={"data": data, "train": run.config.train.model_copy(update={"epochs": 1})})
    one = experiment.Experiment(name=exp.name, path=None, profile="full", description="", runs=(experiment.PlannedRun(cfg, {}),))
    store, errors = Store(tmp_path / "runs"), []
    run_local(pending(one, store), store, on_done=lambda job, res, err: errors.append(err))
    assert errors == [None]
    hist = store.history(exp.name)
    assert hist["epoch"].tolist() == [0, 1] and hist["val_error"].notna().all()
    res = store.results(exp.name)
    assert res["n_params"].tolist() == [1_252_266]  # 1,250,858 + BN's 2 per channel: 2·(2·32 + 2·64 + 512)
