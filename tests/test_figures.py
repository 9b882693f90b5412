"""Every registered figure draws from a tiny synthetic results table, and draws what it says."""

import importlib

import numpy as np
import pandas as pd
import pytest

from genlab.figures import draw, list_figures

OPTIONS = {"curves": {"panels": [["train_loss", "test_loss"], ["cosine"]], "hue": "init.std"},
           "scatter": {"x": "train_loss", "y": "test_loss", "hue": "init.std", "fit": True, "identity": True},
           "versus": {"x": "init.std", "metrics": ["train_loss", "test_loss"]},
           "measure_vs_gap": {"measure": "train_loss", "gap": "test_loss - train_loss"}}


def synthetic_results() -> pd.DataFrame:
    """One row per run: test_loss = 2·train_loss + 0.5 exactly, 2 stds × 3 seeds."""
    train = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(6)], "init.std": [0.01] * 3 + [0.1] * 3,
                         "seed": [0, 1, 2] * 2, "train_loss": train, "test_loss": 2 * train + 0.5,
                         "train_error": 0.0})


def synthetic_history() -> pd.DataFrame:
    """2 stds × 2 seeds × epochs 0..3, with a perturbation row at epoch 2."""
    rows = []
    for std in (0.01, 0.1):
        for seed in (0, 1):
            for epoch in range(4):
                base = {"run_id": f"{std}-{seed}", "init.std": std, "seed": seed, "epoch": epoch}
                rows.append({**base, "train_loss": 1 / (epoch + 1) + seed, "test_loss": 1.1 / (epoch + 1),
                             "train_error": 0.1, "cosine": 1.0 if epoch >= 1 else np.nan, "event": None})
                if epoch == 2:
                    rows.append({**base, "train_loss": 5.0, "test_loss": 5.0, "train_error": 0.5, "cosine": 0.5,
                                 "event": "perturb"})
    return pd.DataFrame(rows)


def figure_cases() -> dict:
    """name → () -> (options, history, results): the generic figures here, each seed's from its test module
    (tests/test_seedNNN.py may define FIGURE_CASES in the same form)."""
    cases = {name: (lambda o=o: (o, synthetic_history(), synthetic_results())) for name, o in OPTIONS.items()}
    for mod in ("test_seed000", "test_seed002", "test_seed003", "test_seed004", "test_rules", "test_lenses"):
        try:
            cases.update(importlib.import_module(mod).FIGURE_CASES)
        except ModuleNotFoundError:
            pass
    return cases


CASES = figure_cases()


@pytest.mark.parametrize("name", list_figures())
def test_every_figure_draws(name):
    assert name in CASES, f"add a case for new figure {name!r} (OPTIONS here, or FIGURE_CASES in test_seedNNN.py)"
    options, history, results = CASES[name]()
    fig = draw({"name": name, **options}, history, results)
    assert fig.axes and all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)


def test_curves_draws_mean_over_seeds_and_the_perturbation_jump():
    fig = draw({"name": "curves", **OPTIONS["curves"]}, synthetic_history(), pd.DataFrame())
    loss_ax, cos_ax = fig.axes
    assert loss_ax.get_ylabel() == "loss (nats)" and cos_ax.get_ylabel() == "cos θ to reference"
    lines = loss_ax.get_lines()
    assert len([ln for ln in lines if ln.get_label().startswith(("train_loss", "test_loss"))]) == 4  # 2 metrics × 2 stds
    train = next(ln for ln in lines if ln.get_label() == "train_loss (init.std=0.01)")
    x, y = train.get_data()
    assert list(x) == [0, 1, 2, 2, 3]  # the epoch with a perturbation has its before and after points
    assert y[0] == pytest.approx(1.5) and y[3] == pytest.approx(5.0)  # mean over seeds 0 and 1 (1 and 2)
    assert len(loss_ax.collections) >= 1  # a ±1 std band where seeds differ
    assert [ln.get_xdata()[0] for ln in lines if ln.get_linestyle() == ":"] == [2]  # the event marker


def test_bad_figure_options_name_the_option():
    with pytest.raises(ValueError, match="figure 'curves': option hue"):
        draw({"name": "curves", "hue": 3}, synthetic_history(), pd.DataFrame())
    with pytest.raises(ValueError, match="metric 'val_loss' not in the history"):
        draw({"name": "curves", "panels": [["val_loss"]]}, synthetic_history(), pd.DataFrame())
    with pytest.raises(KeyError, match="unknown figure"):
        draw({"name": "scatter3d"}, synthetic_history(), pd.DataFrame())


def test_scatter_draws_points_the_fit_and_identity():
    fig = draw({"name": "scatter", **OPTIONS["scatter"]}, None, synthetic_results())
    ax = fig.axes[0]
    assert [len(c.get_offsets()) for c in ax.collections] == [3, 3]  # one point per run, per hue value
    fit = next(ln for ln in ax.get_lines() if ln.get_label().startswith("fit"))
    x, y = fit.get_data()
    assert np.polyfit(x, y, 1) == pytest.approx([2.0, 0.5])  # the drawn line has the computed slope
    assert "slope 2 ±" in fit.get_label()
    assert any(ln.get_label() == "y = x" for ln in ax.get_lines())


def test_versus_draws_mean_and_std_over_seeds():
    fig = draw({"name": "versus", "x": "init.std", "metrics": ["test_loss"]}, None, synthetic_results())
    line = fig.axes[0].get_lines()[0]
    assert list(line.get_xdata()) == [0.01, 0.1]
    assert line.get_ydata() == pytest.approx([0.9, 1.5])  # mean of 2·[.1,.2,.3]+.5 and 2·[.4,.5,.6]+.5


def test_versus_names_its_metrics_by_their_labels():
    labels = {"test_loss": "test loss (nats)", "train_loss": "train loss (nats)", "init.std": "init std"}
    fig = draw({"name": "versus", "x": "init.std", "metrics": ["test_loss", "train_loss"], "labels": labels}, None,
               synthetic_results())
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["test loss (nats)", "train loss (nats)"]
    assert ax.get_ylabel() == "test loss (nats) / train loss (nats)" and ax.get_xlabel() == "init std"


def test_versus_counts_only_the_runs_that_have_a_value():
    res = synthetic_results().copy()
    res.loc[res.index[:2], "test_loss"] = np.nan  # two runs without the metric (e.g. no pair measured)
    fig = draw({"name": "versus", "x": "init.std", "metrics": ["test_loss"]}, None, res)
    caption = " ".join(t.get_text() for t in fig.texts)
    assert "mean over 1-3 runs (seeds) each" in caption


def test_titles_are_filled_from_the_runs_drawn_and_losses_named_by_their_config():
    from genlab.figures.style import fill_title

    h = synthetic_history().assign(**{"train.loss": "exp", "data.name": "digits", "optim.lr": 1e-3,
                                      "events.perturb_epochs": [(3, 30)] * len(synthetic_history())})
    fig = draw({"name": "curves", "hue": "init.std", "title": "lr {optim.lr} on {data.name}, events at "
                "{events.perturb_epochs}"}, h, None)
    assert fig._suptitle.get_text() == "lr 0.001 on digits (8×8), events at 3/30"
    assert fig.axes[0].get_ylabel() == "exponential loss exp(−y·f)"  # not "nats": the loss of these runs
    one = draw({"name": "scatter", "x": "train_loss", "y": "test_loss", "where": "`init.std` == 0.1",
                "title": "σ {init.std}"}, None, synthetic_results())
    assert one.axes[0].get_title() == "σ 0.1"  # the runs drawn, not every run of the table
    assert fill_title("{init.std} and {0} {a b}", h) == "0.01, 0.1 and {0} {a b}"  # column names only, no format()
    with pytest.raises(ValueError, match="not a column"):  # a name is looked up as a column, never as an attribute
        fill_title("{x.__class__}", h)
    with pytest.raises(ValueError, match=r"title field \{optim.momentum\} is not a column"):
        fill_title("{optim.momentum}", h)
