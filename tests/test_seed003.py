"""003 (HW0): the specs load, the regression facts hold exactly (X⁺y, SGD from zero, Marchenko–Pastur
edges), flipped training copies are what they say, and the seed003 figures draw what they say."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from genlab.spec import loader as experiment
from genlab.data import build_dataset
from genlab.figures import draw
from genlab.measures import MeasureData, compute
from genlab.measures.regression import (gram_eigenvalues, linear_map, min_norm_solution, mp_density, mp_edges,
                                        row_space)
from genlab.spec import RunConfig
from genlab.losses import get_loss
from genlab.train.loop import train

SPECS = sorted((Path(__file__).parent.parent / "experiments" / "003").glob("*.toml"))


# ---- specs ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_003_spec_loads_with_every_profile(path):
    from genlab.spec.loader import tomllib  # tomli on Python 3.10

    profiles = tomllib.loads(path.read_text()).get("profiles", {})
    assert {"small", "full"} <= set(profiles)
    for profile in profiles:
        exp = experiment.load(path, profile)
        assert exp.runs and exp.figures and exp.findings


def test_random_labels_small_keeps_the_seeds_parameter_ratios():
    from genlab.models import count_params, create_model

    exp = experiment.load(SPECS[[p.stem for p in SPECS].index("random_labels")], "small")
    ratios = {}
    for run in exp.runs:
        d, c = run.config.data, run.config.model.options["width"]
        assert d.name == "mnist1d" and d.options["as_image"]  # signals (1, 40): MNIST-1D's length
        ratios[c] = count_params(create_model("conv4", (1, 40), 10, width=c)) / d.options["n_train"]
    assert sorted(ratios) == [1, 22]
    assert ratios[1] == pytest.approx(6666 / 50000, rel=0.05)  # 003's c = 4 on CIFAR-10: 0.133
    assert ratios[22] == pytest.approx(1558026 / 50000, rel=0.05)  # 003's c = 64: 31.2


# ---- min-norm least squares -----------------------------------------------------------------------------

def _design(n=30, p=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, p, generator=g, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64)


def _linear(w: torch.Tensor) -> nn.Module:
    net = nn.Sequential(nn.Flatten(), nn.Linear(w.shape[1], w.shape[0], bias=False)).double()
    with torch.no_grad():
        net[1].weight.copy_(w)
    return net


def test_min_norm_solution_is_numpys_lstsq_and_lies_in_the_row_space():
    x, y = _design()
    w = min_norm_solution(x, y[:, None])[:, 0]
    ref = np.linalg.lstsq(x.numpy(), y.numpy(), rcond=None)[0]  # numpy's minimum-norm solution
    assert w.numpy() == pytest.approx(ref, abs=1e-10)
    assert torch.allclose(x @ w, y, atol=1e-10)  # p > n: it interpolates
    _, _, v = row_space(x)
    assert v.shape == (60, 30) and torch.allclose(v @ (v.T @ w), w, atol=1e-12)


def test_min_norm_gap_measures_the_null_space_part_exactly():
    x, y = _design()
    w_plus = min_norm_solution(x, y[:, None]).T  # (1, p)
    _, _, v = row_space(x)
    z = torch.randn(1, 60, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    null = z - (z @ v) @ v.T  # (1, p) orthogonal to every row of X
    data = MeasureData(x, y, x[:5], y[:5], get_loss("mse"), num_classes=None)
    at = compute(["min_norm_gap"], _linear(w_plus), data, dtype=torch.float64)
    off = compute(["min_norm_gap"], _linear(w_plus + null), data, dtype=torch.float64)
    assert at["min_norm_gap.distance"] == pytest.approx(0, abs=1e-10) and at["min_norm_gap.rank"] == 30
    assert at["min_norm_gap.norm"] == pytest.approx(float(w_plus.norm()), rel=1e-12)
    assert at["min_norm_gap.min_norm_train_mse"] == pytest.approx(0, abs=1e-20)
    # another interpolating solution: same train MSE, distance = null-space norm = √(‖w‖² − ‖w⁺‖²)
    assert off["min_norm_gap.distance"] == pytest.approx(float(null.norm()), rel=1e-10)
    assert off["min_norm_gap.null_norm"] == pytest.approx(float(null.norm()), rel=1e-10)
    assert off["min_norm_gap.norm"] ** 2 == pytest.approx(float(w_plus.norm()) ** 2 + float(null.norm()) ** 2)
    assert off["min_norm_gap.min_norm_test_mse"] == pytest.approx(float(((x[:5] @ w_plus.T)[:, 0] - y[:5]).pow(2).mean()))


def test_linear_map_of_an_affine_model_is_its_weight():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).double()
    x = torch.randn(7, 3, 4, dtype=torch.float64)
    assert torch.allclose(linear_map(net, x), net[1].weight, atol=1e-12)


def _regression_config(**over) -> RunConfig:
    base = {"experiment": "t", "seed": 0,
            "data": {"name": "gaussian_regression", "n_train": 20, "n_test": 20, "p": 40, "noise": 0.1},
            "model": {"name": "linear", "bias": False}, "init": {"name": "constant", "value": 0.0},
            "optim": {"name": "sgd", "lr": 0.5 / 40}, "train": {"epochs": 100, "batch_size": 1, "loss": "mse"},
            "record": {"checkpoint": "none", "save_init": False, "measures": ["min_norm_gap"]}}
    base.update(over)
    return RunConfig.model_validate(base)


def test_sgd_from_zero_converges_to_the_pseudo_inverse_solution():
    out = train(_regression_config())
    m = out.measures
    assert m["min_norm_gap.relative"] < 1e-4  # float32 training: ~1e-6 is the floor
    assert m["min_norm_gap.null_norm"] < 1e-6  # never left the row space
    assert out.history[-1]["train_loss"] < 1e-8
    assert m["min_norm_gap.norm"] == pytest.approx(m["min_norm_gap.min_norm"], rel=1e-4)


def test_sgd_from_a_random_start_keeps_its_null_space_part():
    torch.manual_seed(0)
    cfg = _regression_config(init={"name": "normal", "std": 0.1})
    from genlab.train.loop import build

    _, model0, _, _ = build(cfg, torch.device("cpu"))
    w0 = model0[1].weight.detach().double()  # (1, p) the initial weights of this very run
    data = build_dataset("gaussian_regression", n_train=20, n_test=20, p=40, noise=0.1)
    _, _, v = row_space(data.x_train.double())
    null0 = float((w0 - (w0 @ v) @ v.T).norm())
    m = train(cfg).measures
    assert m["min_norm_gap.distance"] == pytest.approx(null0, rel=1e-4)
    assert m["min_norm_gap.null_norm"] == pytest.approx(null0, rel=1e-4)


# ---- Marchenko–Pastur ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, p", [(500, 1000), (1000, 250)])  # 003's γ = 2, and p < n
def test_spectrum_support_matches_marchenko_pastur_edges(n, p):
    data = build_dataset("gaussian_regression", n_train=n, n_test=1, p=p)
    md = MeasureData.from_dataset(data, get_loss("mse"))
    s = compute(["design_spectrum"], nn.Flatten(), md, dtype=torch.float64)  # the model is not used
    lo, hi = mp_edges(p / n)
    assert s["design_spectrum.n_zero"] == max(p - n, 0)  # p − n exact zeros when p > n
    assert s["design_spectrum.lambda_max"] == pytest.approx(hi, rel=0.03)
    assert s["design_spectrum.lambda_min_nonzero"] == pytest.approx(lo, rel=0.1)
    assert s["design_spectrum.mp_upper"] == pytest.approx(hi, rel=0.01)  # σ² = mean(x²) ≈ 1
    ev = gram_eigenvalues(md.x_train.double())
    inside = ((ev >= 0.95 * lo) & (ev <= 1.05 * hi)).sum()
    assert int(inside) == min(n, p)  # every non-zero eigenvalue is inside the support


@pytest.mark.parametrize("gamma", [0.25, 2.0])
def test_mp_density_integrates_to_one_on_its_edges(gamma):
    lo, hi = mp_edges(gamma)
    grid = torch.linspace(lo, hi, 200001, dtype=torch.float64)
    f = mp_density(grid, gamma)
    assert float(torch.trapezoid(f, grid)) == pytest.approx(1.0, abs=2e-3)
    assert float(mp_density(torch.tensor([lo - 1e-3, hi + 1e-3], dtype=torch.float64), gamma).abs().sum()) == 0


# ---- flipped training copies -----------------------------------------------------------------------------

def test_train_flipped_appends_exact_upside_down_copies():
    base = build_dataset("digits", n_train=100, test_flips=["vertical"])
    both = build_dataset("train_flipped", base="digits", base_options={"n_train": 100, "test_flips": ["vertical"]})
    assert both.n_train == 200 and torch.equal(both.x_train[:100], base.x_train)
    assert torch.equal(both.x_train[100:], base.x_train.flip(-2))  # (n, 1, 8, 8): rows reversed
    assert torch.equal(both.y_train, torch.cat([base.y_train, base.y_train]))
    assert torch.equal(both.x_test, base.x_test) and set(both.extra_tests) == {"test_vflip"}
    assert both.info["flipped_mask"].sum() == 100 and both.info["corrupt_mask"].shape == (200,)
    plain = build_dataset("train_flipped", base="digits", base_options={"n_train": 100}, flips=[])
    assert torch.equal(plain.x_train, base.x_train)


def test_train_flipped_checks_the_base_options_and_needs_images():
    with pytest.raises(ValueError, match="base_options.n_trian"):
        build_dataset("train_flipped", base="digits", base_options={"n_trian": 10})
    with pytest.raises(ValueError, match="not images"):
        build_dataset("train_flipped", base="mnist1d", base_options={"num_samples": 400})


# ---- figures ---------------------------------------------------------------------------------------------

def capacity_results() -> pd.DataFrame:
    rows = [{"run_id": f"k{k}c{c}", "model.kernel_size": k, "model.width": c, "seed": 0, "n_params": k * k * c * 100,
             "train_error": 0.0, "test_error": 0.5 / c} for k in (3, 5) for c in (2, 8)]
    return pd.DataFrame(rows)


def flip_history() -> pd.DataFrame:
    rows = []
    for flips in [(), ("vertical",)]:
        for epoch in range(4):
            rows.append({"run_id": str(flips), "data.flips": flips, "epoch": epoch, "train_error": 0.5 / (epoch + 1),
                         "test_error": 0.2, "test_vflip_error": 0.6 if not flips else 0.25})
    return pd.DataFrame(rows)


def flip_results() -> pd.DataFrame:
    return pd.DataFrame({"run_id": ["a", "b"], "data.name": ["train_flipped"] * 2, "data.base": ["cifar10"] * 2,
                         "data.flips": [(), ("vertical",)],
                         "per_class.test": [tuple(np.linspace(0.5, 0.95, 10))] * 2,
                         "per_class.test_vflip": [tuple(np.linspace(0.0, 0.45, 10)), tuple(np.linspace(0.5, 0.9, 10))]})


def regression_history() -> pd.DataFrame:
    rows = []
    for bs in (1, 100):
        for epoch in range(6):
            d = 1.0 / 2 ** epoch / bs
            rows.append({"run_id": f"b{bs}", "train.batch_size": bs, "epoch": epoch, "train_loss": d ** 2 + 1e-12,
                         "test_loss": 0.5 + d, "min_norm_gap.distance": d if epoch % 2 else np.nan,
                         "min_norm_gap.norm": 0.7 - d if epoch % 2 else np.nan,
                         "min_norm_gap.min_norm": 0.7 if epoch % 2 else np.nan,
                         "min_norm_gap.min_norm_test_mse": 0.5 if epoch % 2 else np.nan})
    return pd.DataFrame(rows)


def spectrum_results() -> pd.DataFrame:
    """A results row as a run of the regression study stores it: the design_spectrum measure's values (the
    figure draws these; it never rebuilds the data set)."""
    from genlab.data import build_dataset

    ds = build_dataset("gaussian_regression", n_train=200, n_test=10, p=400, noise=0.1)
    md = MeasureData.from_dataset(ds, get_loss("mse"))
    s = compute(["design_spectrum"], nn.Flatten(), md, dtype=torch.float64)
    return pd.DataFrame({"run_id": ["r"], "data.name": ["gaussian_regression"], **{k: [v] for k, v in s.items()}})


FIGURE_CASES = {
    "capacity": lambda: ({}, pd.DataFrame(), capacity_results()),
    "flip_curves": lambda: ({"facet": "data.flips"}, flip_history(), flip_results()),
    "per_class": lambda: ({"facet": "data.flips"}, flip_history(), flip_results()),
    "min_norm_paths": lambda: ({"hue": ["train.batch_size"]}, regression_history(), pd.DataFrame()),
    "mp_spectrum": lambda: ({}, pd.DataFrame(), spectrum_results()),
}


def test_capacity_draws_one_line_per_kernel_and_metric_and_the_table():
    fig = draw({"name": "capacity"}, None, capacity_results())
    ax, tab = fig.axes
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {f"{m} (kernel {k})" for m in ("train_accuracy", "test_accuracy") for k in (3, 5)}
    x, y = lines["test_accuracy (kernel 5)"].get_data()
    assert list(x) == [5000, 20000] and list(y) == pytest.approx([0.75, 1 - 0.5 / 8])
    texts = sorted(t.get_text() for t in tab.texts)
    assert len(texts) == 4 and "1,800\n0.750" in texts  # k = 3, c = 2
    assert ax.get_xscale() == "log" and tab.get_xlabel().startswith("width c")


def test_flip_curves_one_panel_per_training_with_plain_and_flipped_lines():
    fig = draw({"name": "flip_curves", "facet": "data.flips"}, flip_history(), flip_results())
    assert len(fig.axes) == 2
    plain = fig.axes[0]
    assert plain.get_title() == "data.flips = none"
    labels = [ln.get_label() for ln in plain.get_lines()]
    assert labels == ["test set (final 0.800)", "vertically flipped test set (final 0.400)",
                      "train set (final 0.875)"]
    assert [ln.get_color() for ln in plain.get_lines()][:2] == ["C0", "C3"]


def test_per_class_bars_are_the_per_class_accuracies():
    fig = draw({"name": "per_class", "facet": "data.flips"}, None, flip_results())
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 20
    assert heights[10:] == pytest.approx(list(np.linspace(0.0, 0.45, 10)))  # flipped, plain training
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "airplane"


def test_min_norm_paths_draws_distance_and_norm_at_measured_epochs():
    fig = draw({"name": "min_norm_paths", "hue": ["train.batch_size"]}, regression_history(), pd.DataFrame())
    mse, dist, norm = fig.axes
    line = next(ln for ln in dist.get_lines() if ln.get_label() == "train.batch_size=100")
    assert list(line.get_xdata()) == [1, 3, 5] and line.get_ydata() == pytest.approx([0.005, 0.00125, 0.0003125])
    assert any(ln.get_label() == "‖X⁺y‖" and ln.get_ydata()[0] == pytest.approx(0.7) for ln in norm.get_lines())
    assert len([ln for ln in mse.get_lines() if ln.get_label().startswith(("train (", "test ("))]) == 4
    assert any(ln.get_label() == "test MSE of X⁺y" for ln in mse.get_lines())


def test_mp_spectrum_histogram_and_density_share_the_support():
    fig = draw({"name": "mp_spectrum"}, None, spectrum_results())
    ax = fig.axes[0]
    values, edges, _ = ax.patches[0].get_data()  # the step density over the 51 stored quantiles
    area = float(np.sum(values * np.diff(edges)))
    assert area == pytest.approx(1.0, rel=1e-6)  # a density of the 200 non-zero eigenvalues
    density = next(ln for ln in ax.get_lines() if ln.get_label().startswith("Marchenko"))
    lo, hi = mp_edges(2.0, 1.0)
    x = density.get_xdata()
    assert x[0] == pytest.approx(lo, rel=0.05) and x[-1] == pytest.approx(hi, rel=0.05)
    left, right = edges[0], edges[-1]
    assert left >= 0.5 * lo and right <= 1.15 * hi  # the eigenvalues fill MP's support
    assert any("(+ 200 zeros)" in t.get_text() for t in ax.get_legend().get_texts())
    assert ax.get_title() == "n = 200, p = 400"
    with pytest.raises(ValueError, match="design_spectrum.q00"):  # a run measured without the spectrum: named
        draw({"name": "mp_spectrum"}, None, spectrum_results().drop(columns=["design_spectrum.q00"]))
    assert math.isfinite(area)


@pytest.mark.slow
def test_regression_small_profile_runs_measures_and_judges_end_to_end(tmp_path):
    """End to end: `genlab run` the small regression profile; every finding computes a verdict (which one is
    the report's business, not the suite's), and the null-space identity holds exactly."""
    from typer.testing import CliRunner

    from genlab.cli import app
    from genlab.findings import VERDICTS, evaluate
    from genlab.store import Store

    path = SPECS[[p.stem for p in SPECS].index("min_norm_regression")]
    r = CliRunner().invoke(app, ["run", str(path), "--profile", "small", "--store", str(tmp_path)])
    assert r.exit_code == 0, r.output
    exp = experiment.load(path, "small")
    store = Store(tmp_path)
    hist, res = store.history(exp.name, exp.run_ids), store.results(exp.name, exp.run_ids)
    judged = [evaluate(entry, hist, res)[1] for entry in exp.findings]
    assert all(f.verdict in VERDICTS for f in judged if f.verdict is not None) and len(judged) == len(exp.findings)
    assert sum(f.verdict is not None for f in judged) >= 5
    rand = res[res["init.std"] > 0].iloc[0]
    assert rand["min_norm_gap.distance"] == pytest.approx(rand["min_norm_gap.null_norm"], rel=1e-3)
