"""004, the capacity study: the specs load under both profiles, `capacity_panels` draws what it says, the
`dominates` finding is exact, `sharpness_004` is `sharpness` on an evenly strided subset, and a shrunken copy of
the MLP study runs end to end into a report."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from genlab.spec import loader as experiment
from genlab.figures import draw, list_figures
from genlab.findings import evaluate, list_findings
from genlab.measures import MeasureData, compute
from genlab.measures.strided_sharpness import SHARPNESS_SAMPLES, strided_rows, strided_subset
from genlab.measures.sharpness import SharpnessConfig, sharpness
from genlab.losses import get_loss

SPECS = sorted((Path(__file__).parents[1] / "experiments" / "004").glob("*.toml"))
CAPACITIES = ["log_l2_capacity", "log_l1_path_capacity", "log_l2_path_capacity", "log_spectral_capacity"]


def capacity_results() -> pd.DataFrame:
    """3 sizes × {true, random} × 2 seeds; measure a = log(n) + 2·p exactly, b = +inf for one random run."""
    rows = []
    for n in (100, 200, 400):
        for p in (0.0, 1.0):
            for seed in (0, 1):
                rows.append({"run_id": f"{n}-{p}-{seed}", "data.n_train": n, "data.corrupt_prob": p, "seed": seed,
                             "a": math.log(n) + 2 * p + 0.1 * seed, "b": math.inf if (n, p, seed) == (400, 1.0, 1)
                             else n / 100 - p, "train_error": 0.0, "test_error": 0.1 + 0.8 * p,
                             "model.widths": (n // 100,)})
    return pd.DataFrame(rows)


PANELS_CASE = {"x": "data.n_train", "panels": [["a"], ["b", "test_error"]], "hue": "data.corrupt_prob",
               "hue_names": {"0.0": "true labels", "1.0": "random labels"},
               "labels": {"data.n_train": "training set size (samples)", "a": "log capacity (nats)"}}
FIGURE_CASES = {"capacity_panels": lambda: (PANELS_CASE, pd.DataFrame(), capacity_results())}


def test_every_spec_loads_under_both_profiles():
    assert {p.stem for p in SPECS} == {"fig1_true_vs_random", "fig3_confusion", "fig5_mlp_width"}
    for path in SPECS:
        small, full = experiment.load(path, "small"), experiment.load(path, "full")
        assert small.runs and full.runs
        for e in (small, full):
            assert all(f["name"] in list_figures() for f in e.figures)
            assert all(f["name"] in list_findings() for f in e.findings)
            assert all(r.config.train.stop_below_loss == 0.01 for r in e.runs)
            assert all("sharpness_004" in r.config.record.measures for r in e.runs)
        assert {r.config.data.name for r in small.runs} == {"digits"}  # offline stand-ins
        assert {r.config.data.name for r in full.runs} <= {"cifar10", "mnist"}


def test_full_profiles_are_the_papers_setup():
    fig1 = experiment.load(SPECS[0], "full")
    assert {r.config.model.name for r in fig1.runs} == {"vgg16_bn"}
    assert {(r.config.data.n_train, r.config.data.corrupt_prob) for r in fig1.runs} >= {(50000, 1.0), (1000, 0.0)}
    opt = fig1.runs[0].config.optim
    assert (opt.name, opt.lr, opt.momentum, fig1.runs[0].config.train.batch_size) == ("sgd", 0.01, 0.9, 64)
    conf = experiment.load(SPECS[1], "full")
    assert {r.config.data.n_train for r in conf.runs} == {10000} and len({r.config.data.confusion_size
                                                                          for r in conf.runs}) == 6
    mlp = experiment.load(SPECS[2], "full")
    assert {r.config.model.name for r in mlp.runs} == {"mlp"} and [r.config.model.options["widths"][0]
                                                                   for r in mlp.runs] == [8, 32, 128, 512, 2048, 8192]


def series(ax) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """label → (x, y) of each errorbar series drawn on ax."""
    return {c.get_label(): tuple(map(np.asarray, c.lines[0].get_data())) for c in ax.containers}


def test_capacity_panels_draws_one_axes_per_panel_mean_over_seeds():
    fig = draw({"name": "capacity_panels", **PANELS_CASE}, pd.DataFrame(), capacity_results())
    a_ax, b_ax = fig.axes
    assert a_ax.get_xlabel() == "training set size (samples)" and a_ax.get_ylabel() == "log capacity (nats)"
    a = series(a_ax)
    assert set(a) == {"true labels", "random labels"}
    x, y = a["random labels"]
    assert list(x) == [100, 200, 400] and y == pytest.approx(np.log([100, 200, 400]) + 2.05)  # seed mean
    b = series(b_ax)
    assert b_ax.get_ylabel() == "b"  # no label given: the first metric's name
    assert len(b) == 4  # 2 metrics × 2 hues
    assert b["b, random labels"][1] == pytest.approx([0.0, 1.0, 3.0])  # the +inf run is left out of the mean ...
    assert any("1 run(s) not finite" in t.get_text() for t in b_ax.texts)  # ... and counted


def test_capacity_panels_reads_one_element_widths_and_names_bad_columns():
    fig = draw({"name": "capacity_panels", "x": "model.widths", "panels": [["test_error"]], "log_x": True},
               pd.DataFrame(), capacity_results())
    (x, _), = series(fig.axes[0]).values()
    assert list(x) == [1, 2, 4] and fig.axes[0].get_xscale() == "log"
    with pytest.raises(ValueError, match="column 'nope' not in the results"):
        draw({"name": "capacity_panels", "x": "data.n_train", "panels": [["nope"]]}, pd.DataFrame(),
             capacity_results())
    with pytest.raises(ValueError, match="1 ylabels for 2 panels"):
        draw({"name": "capacity_panels", "x": "data.n_train", "panels": [["a"], ["b"]], "ylabels": ["y"]},
             pd.DataFrame(), capacity_results())
    with pytest.raises(ValueError, match="non-empty"):
        draw({"name": "capacity_panels", "x": "data.n_train", "panels": []}, pd.DataFrame(), capacity_results())


DOM = {"name": "dominates", "by": "data.corrupt_prob", "low": 0.0, "high": 1.0, "over": "data.n_train"}


def test_dominates_counts_the_sizes_where_low_is_below_high():
    _, f = evaluate({**DOM, "metric": "a"}, None, capacity_results())
    assert f.value == 1.0 and math.isnan(f.error) and f.agrees  # a fraction of sizes: no error bar
    assert "agrees at 3 of 3 values of data.n_train" in f.text and "100: 2 ± 0.0707" in f.text  # Δ = 2, 2 seeds
    one = evaluate({**DOM, "metric": "a"}, None, capacity_results().query("seed == 0"))[1]
    assert one.verdict is None and "one run" in one.reason  # one seed per group: not judged, never agrees
    _, g = evaluate({**DOM, "metric": "b"}, None, capacity_results())  # random is lower by 1 ... except at 400
    assert not g.agrees  # mean with an +inf seed is +inf: higher
    _, h = evaluate({**DOM, "metric": "a", "low": 1.0, "high": 0.0}, None, capacity_results())
    assert h.value == 0.0 and h.agrees is not True


def test_dominates_does_not_count_two_vacuous_means_and_names_missing_groups():
    df = capacity_results().assign(c=math.inf)
    _, f = evaluate({**DOM, "metric": "c"}, None, df)
    assert f.value == 0.0 and "nan" in f.text
    with pytest.raises(ValueError, match="no value of data.n_train has finished runs with both"):
        evaluate({**DOM, "metric": "a", "high": 0.5}, None, capacity_results())
    with pytest.raises(ValueError, match="'size' is not a column"):
        evaluate({**DOM, "metric": "a", "over": "size"}, None, capacity_results())


def tiny_classifier_data(n: int) -> tuple[torch.nn.Module, MeasureData]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).double().eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=g)
    return net, MeasureData(x, y, x[:10], y[:10], get_loss("cross_entropy"), None, 3)


def test_strided_rows_are_even_distinct_and_keep_both_ends():
    assert strided_rows(7, 10).tolist() == list(range(7))
    idx = strided_rows(10_000, SHARPNESS_SAMPLES)
    assert len(idx) == SHARPNESS_SAMPLES == len(set(idx.tolist())) and idx[0] == 0 and idx[-1] == 9_999
    steps = idx.diff().double()
    assert steps.min() >= 9 and steps.max() <= 10  # (n−1)/(k−1) = 9.78, rounded


def test_sharpness_004_is_sharpness_on_the_strided_rows():
    net, data = tiny_classifier_data(3000)
    got = compute(["sharpness_004"], net, data, dtype=torch.float64)
    sub = MeasureData(data.x_train[strided_rows(3000, SHARPNESS_SAMPLES)],
                      data.y_train[strided_rows(3000, SHARPNESS_SAMPLES)], data.x_test, data.y_test, data.loss)
    want = sharpness(net, sub, cfg=SharpnessConfig(alpha=5e-4, max_samples=None))
    assert got["sharpness_004.zeta"] == pytest.approx(want["zeta"], rel=1e-12) and want["zeta"] > 0
    last = data.y_train[-1:]  # the last row (where a confusion set lives) is in the subset
    assert torch.equal(strided_subset(data).y_train[-1:], last)
    small_net, small = tiny_classifier_data(200)  # under the cap: the whole training set
    whole = sharpness(small_net, small, cfg=SharpnessConfig(alpha=5e-4, max_samples=None))
    assert compute(["sharpness_004"], small_net, small, dtype=torch.float64)["sharpness_004.loss"] == pytest.approx(whole["loss"])


def test_the_mlp_study_runs_end_to_end_into_a_report(tmp_path):
    """fig5's small profile (3 seeds) shrunk to three widths and 200 samples: trains, measures, draws, judges."""
    from typer.testing import CliRunner

    from genlab.cli import app

    text = SPECS[2].read_text().replace('sweep = { "model.widths" = [[8], [32], [128], [512], [2048]] }',
                                        'sweep = { "model.widths" = [[8], [16], [64]] }')
    text = text.replace("train.epochs = 400", "train.epochs = 100").replace("n_train = 1000", "n_train = 200")
    path = tmp_path / "fig5_tiny.toml"
    path.write_text(text)
    exp = experiment.load(path, "small")
    assert [r.config.train.epochs for r in exp.runs] == [100] * 9  # 3 widths × the profile's 3 seeds
    runner = CliRunner()
    r = runner.invoke(app, ["run", str(path), "--store", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    from genlab.store import Store

    res = Store(tmp_path / "runs").results(exp.name)
    assert len(res) == 9 and {"sharpness_004.zeta", *CAPACITIES} <= set(res.columns)
    widths = np.repeat([75 * 8 + 10, 75 * 16 + 10, 75 * 64 + 10], 3)  # 64·h + h + 10h + 10, each for 3 seeds
    assert (res["n_params"].sort_values().to_numpy() == widths).all()
    out = tmp_path / "r.html"
    r = runner.invoke(app, ["report", str(path), "--store", str(tmp_path / "runs"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert page.count("data:image/png;base64,") == 1 and "cannot be drawn" not in page
    assert "paper: yes; seed Fig. 6: no" in page and page.count("Kendall τ") == 6 and "cannot compute" not in page


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
