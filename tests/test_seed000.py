"""000 chapters 4 and 5: every spec loads in both profiles; the seed000 figures draw what they say from tiny
synthetic tables; the normalized-margin measures equal their closed forms."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from genlab.figures import draw
from genlab.figures.seed000 import derived, variant
from genlab.findings import evaluate, linear_fit
from genlab.measures import MeasureData, compute
from genlab.measures.margins import gamma_margin, margins
from genlab.spec.loader import load
from genlab.losses import get_loss

SPECS = sorted((Path(__file__).resolve().parents[1] / "experiments" / "000").glob("ch[45]_*.toml"))
STDS_27 = [0.0001, 0.0002, 0.0003, 0.0004, 0.0005, 0.0006, 0.0007, 0.0008, 0.0009, 0.001, 0.0016, 0.0032, 0.0064,
           0.0128, 0.0256, 0.0512, 0.06, 0.07, 0.08, 0.09, 0.1, 0.1024, 0.11, 0.12, 0.13, 0.14, 0.15]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
@pytest.mark.parametrize("profile", ["small", "full"])
def test_every_spec_loads_in_both_profiles(path, profile):
    exp = load(path, profile)
    assert exp.runs and exp.figures and exp.findings
    if profile == "small":  # offline stand-ins only
        assert {r.config.data.name for r in exp.runs} <= {"digits", "mnist1d", "separable", "gaussian_regression"}


def test_convnet3_full_profile_is_the_seeds_sweep():
    exp = load(SPECS[0].parent / "ch4_convnet3.toml", "full")
    cfgs = [r.config for r in exp.runs]
    assert len(cfgs) == 2 * 28  # widths 32 and 64 × (27 stds + the RL point)
    for width in (32, 64):
        clean = [c for c in cfgs if c.model.options["width"] == width and c.data.options["corrupt_prob"] == 0]
        rl = [c for c in cfgs if c.model.options["width"] == width and c.data.options["corrupt_prob"] == 1]
        assert sorted(c.init.options["std"] for c in clean) == STDS_27
        assert len(rl) == 1 and rl[0].init.options["std"] == 0.1 and rl[0].data.options["corrupt_test"]
    c = cfgs[0]
    assert (c.data.name, c.model.name, c.optim.lr, c.train.batch_size, c.train.epochs) == ("cifar10", "convnet3", 0.01, 128, 200)
    assert c.schedule.factors == [1.0, 1.0, 0.1, 0.01] and c.schedule.milestones == [50, 100, 150]
    assert c.train.stop_at_zero_error and c.data.options["augment"] == "none" and not c.model.options["bias"]


def test_resnet_full_profile_is_the_seeds_setting():
    exp = load(SPECS[0].parent / "ch4_resnet56.toml", "full")
    c = exp.runs[0].config
    assert (c.model.name, c.data.name, c.data.options["augment"], c.train.epochs, c.train.batch_size) == \
        ("resnet56", "cifar10", "crop_flip", 200, 128)
    assert c.optim.lr == 0.01 and c.schedule.milestones == [100] and c.schedule.factors == [1.0, 0.1]
    assert sum(r.config.data.options["corrupt_prob"] == 1 for r in exp.runs) == 1  # the RL point


def test_ch5_compares_the_five_methods():
    exp = load(SPECS[0].parent / "ch5_weightnorm.toml", "small")
    names = {variant(pd.Series({f"constraint.{k}": v for k, v in r.config.constraint.model_dump().items()}))
             for r in exp.runs}
    assert names == {"plain SGD", "project each epoch, ρ absorbed", "project each epoch, ρ discarded",
                     "Lagrange, λ ascent (η_λ = 0.01), ρ trained", "Lagrange, λ ascent (η_λ = 0.001), ρ trained",
                     "Lagrange, λ ascent (η_λ = 0.0001), ρ trained", "Lagrange, λ fixed = 1, ρ trained"}
    # the small profile's λ ascent at three multiplier rates: 0.01 diverges at every lr, the findings read 1e-3
    ascent = [f for f in exp.findings if "fixed_lambda` == False" in (f.get("where") or "")]
    assert ascent and all("`constraint.lam_lr` == 0.001" in f["where"] for f in ascent)
    full = load(SPECS[0].parent / "ch5_weightnorm.toml", "full")
    assert {r.config.constraint.lam_lr for r in full.runs} == {0.01}  # the full profile is unchanged


# ---- synthetic tables ---------------------------------------------------------------------------------------
def ch4_results() -> pd.DataFrame:
    """5 runs with normalized test = normalized train + 0.01 exactly, plus an RL run (test = train + 0.04)."""
    std = np.array([0.001, 0.01, 0.05, 0.1, 0.15, 0.1])
    ntr = np.array([2.10, 2.15, 2.20, 2.25, 2.28, 2.29])
    rl = np.array([0, 0, 0, 0, 0, 1.0])
    return pd.DataFrame({
        "run_id": [f"r{i}" for i in range(6)], "seed": 0, "init.std": std, "init.scale": std * 10,
        "model.width": 64, "data.corrupt_prob": rl,
        "train_loss": [0.02, 0.02, 0.01, 0.01, 0.01, 0.1], "test_loss": [0.3, 0.4, 0.5, 0.6, 0.7, 5.0],
        "train_error": 0.0, "test_error": [0.30, 0.32, 0.35, 0.38, 0.40, 0.90],
        "normalized_loss.train": ntr, "normalized_loss.test": ntr + np.where(rl == 1, 0.04, 0.01),
        "output_normalized_loss.train": ntr, "output_normalized_loss.test": ntr + 0.01,
        "log_prod_frobenius": np.log([10.0, 20.0, 40.0, 80.0, 160.0, 200.0]),
        "normalized_margin_q5": [0.01, 0.005, 0.004, 0.002, 0.001, 0.0005],
    })


def ch5_history() -> pd.DataFrame:
    """Plain SGD (no constraint columns) and a projected run, 2 seeds × epochs 0..3."""
    rows = []
    for name in (None, "project"):
        for seed in (0, 1):
            for epoch in range(4):
                row = {"run_id": f"{name}-{seed}", "seed": seed, "epoch": epoch, "train_loss": 1.0 / (epoch + 1),
                       "test_loss": 1.2 / (epoch + 1), "test_error": 0.5 - 0.1 * epoch,
                       "log_prod_frobenius": float(epoch) if epoch % 2 == 0 else np.nan}
                if name:
                    row.update({"constraint.name": name, "constraint.rho": True, "constraint.fixed_lambda": False,
                                "norm_dev": 0.1 * epoch + seed, "log_rho": 0.5 * epoch})
                rows.append(row)
    return pd.DataFrame(rows)


FIGURE_CASES = {
    "ch4_losses": lambda: ({}, None, ch4_results()),
    "ch4_points": lambda: ({"x": "inverse_margin", "y": "test_error", "log_x": True, "fit": True}, None, ch4_results()),
    "weightnorm_curves": lambda: ({}, ch5_history(), pd.DataFrame()),
}


def test_ch4_losses_draws_raw_and_normalized_panels_with_the_findings_fit():
    fig = draw({"name": "ch4_losses"}, None, ch4_results())
    raw, norm = fig.axes  # the colour bars are inset axes of each panel
    assert raw.get_xlabel() == "training loss (nats)" and raw.get_ylabel() == "test loss (nats)"
    assert norm.get_xlabel() == "normalized training loss (nats)"
    assert [len(c.get_offsets()) for c in norm.collections] == [5, 1]  # 5 runs, 1 RL star
    line = next(ln for ln in norm.get_lines() if ln.get_label().startswith("fit"))  # the slope finding's own fit
    x, y = line.get_data()
    slope, intercept = np.polyfit(x, y, 1)
    res = ch4_results()
    f = evaluate({"name": "slope", "x": "normalized_loss.train", "y": "normalized_loss.test", "target": 1.0}, None, res)[1]
    a, _, b, se_b = linear_fit(res["normalized_loss.train"].to_numpy(), res["normalized_loss.test"].to_numpy())
    assert slope == pytest.approx(a) == pytest.approx(f.value) and intercept == pytest.approx(b)
    assert f"slope {f.value:.3g} ± {f.error:.2g}, intercept {b:.3g} ± {se_b:.2g} (n = 6)" in line.get_label()
    assert f"intercept {b:.3g} ± {se_b:.2g}" in f.text  # the legend's numbers are the finding's
    assert not [ln for ln in raw.get_lines() if ln.get_label().startswith(("slope", "fit"))]  # raw panel: no fit


def test_ch4_losses_without_rl_in_the_fit_and_zoomed():
    fig = draw({"name": "ch4_losses", "panels": [{"x": "normalized_loss.train", "y": "normalized_loss.test",
                                                   "fit": "slope_one"}], "fit_rl": False, "zoom": True},
               None, ch4_results())
    ax = fig.axes[0]
    x, y = next(ln for ln in ax.get_lines() if ln.get_label().startswith("slope 1")).get_data()
    assert (y - x) == pytest.approx(np.full(len(x), 0.01))  # the correctly labelled runs only
    assert ax.get_xlim()[1] < 2.29  # the RL run (x = 2.29) is outside the zoomed axes
    with pytest.raises(ValueError, match="fit must be"):
        draw({"name": "ch4_losses", "panels": [{"x": "train_loss", "y": "test_loss", "fit": "cubic"}]}, None, ch4_results())


def test_ch4_points_derives_the_product_of_norms_and_the_inverse_margin():
    d = derived(ch4_results())
    assert d["prod_frobenius"].to_numpy() == pytest.approx([10, 20, 40, 80, 160, 200])
    assert d["inverse_margin"].to_numpy() == pytest.approx([100, 200, 250, 500, 1000, 2000])
    fig = draw({"name": "ch4_points", **FIGURE_CASES["ch4_points"]()[0]}, None, ch4_results())
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "1 / margin of the normalized net"
    assert ax.get_ylabel() == "test error (fraction)"
    assert [len(c.get_offsets()) for c in ax.collections] == [5, 1]
    fit = next(ln for ln in ax.get_lines() if ln.get_label().startswith("fit"))
    x, y = fit.get_data()
    expect = np.polyfit(np.log([100, 200, 250, 500, 1000]), [0.30, 0.32, 0.35, 0.38, 0.40], 1)[0]
    assert np.polyfit(np.log(x), y, 1)[0] == pytest.approx(expect)  # the fit is in log x, RL excluded


def test_ch4_points_line_is_the_mean_over_seeds_and_annotations_name_the_points():
    res = pd.concat([ch4_results(), ch4_results().assign(seed=1, test_error=lambda d: d["test_error"] + 0.02)])
    fig = draw({"name": "ch4_points", "x": "init.std", "y": "test_error", "line": True, "log_x": True,
                "annotate": "init.scale", "hue": "init.scale"}, None, res)
    ax = fig.axes[0]
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "mean over seeds")
    assert list(line.get_xdata()) == [0.001, 0.01, 0.05, 0.1, 0.15]
    assert line.get_ydata() == pytest.approx([0.31, 0.33, 0.36, 0.39, 0.41])
    assert sorted(t.get_text() for t in ax.texts)[:2] == ["0.01", "0.01"]  # init.scale of each point
    assert [a.get_ylabel() for a in ax.child_axes] == ["weight scale factor after init"]  # the colour bar


def test_weightnorm_curves_one_line_per_method_and_measures_joined_across_epochs():
    fig = draw({"name": "weightnorm_curves"}, ch5_history(), pd.DataFrame())
    loss_ax, err_ax, norm_ax = fig.axes
    labels = {ln.get_label() for ln in err_ax.get_lines()}
    assert labels == {"test_error (training=plain SGD)", "test_error (training=project each epoch, ρ absorbed)"}
    line = next(ln for ln in norm_ax.get_lines() if "plain SGD" in ln.get_label())
    assert list(line.get_xdata()) == [0, 2] and list(line.get_ydata()) == [0.0, 2.0]  # NaN epochs skipped
    assert norm_ax.get_ylabel().startswith("log ∏")
    dev = draw({"name": "weightnorm_curves", "panels": [["norm_dev"]], "where": "`constraint.name` == 'project'"},
               ch5_history(), pd.DataFrame()).axes[0]
    (ln,) = dev.get_lines()
    assert ln.get_ydata() == pytest.approx([0.5, 0.6, 0.7, 0.8])  # mean over seeds 0 and 1


# ---- measures ------------------------------------------------------------------------------------------------
def test_normalized_margins_equal_their_closed_forms():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6, bias=False), nn.ReLU(), nn.Linear(6, 3, bias=False)).double()
    x, y = torch.randn(40, 4, dtype=torch.float64), torch.randint(0, 3, (40,))
    data = MeasureData(x, y, x, y, get_loss("cross_entropy"), num_classes=3)
    out = compute(["normalized_margin_q5", "output_normalized_margin_q5", "margin_q5", "log_prod_frobenius"], net, data,
                  dtype=torch.float64)
    rho = float(net[0].weight.detach().norm() * net[2].weight.detach().norm())
    assert out["normalized_margin_q5"] == pytest.approx(out["margin_q5"] / rho, rel=1e-10)  # bias-free: f/ρ
    m = margins(net(x).detach(), y)
    assert out["output_normalized_margin_q5"] == pytest.approx(gamma_margin(m, 0.05) / float(net(x[:1]).norm()))
    assert out["margin_q5"] == pytest.approx(float(m.sort().values[1]))  # ⌈0.05·40⌉ = 2nd smallest


def test_ch4_figures_leave_out_what_the_caption_excludes_and_list_it():
    res = ch4_results()
    res.loc[0, "train_error"] = 0.574  # std 0.001 never reached zero training error
    res.loc[1, "normalized_margin_q5"] = -0.002  # a negative margin: 1/margin < 0 has no place on a log axis
    fig = draw({"name": "ch4_points", "x": "inverse_margin", "y": "test_error", "log_x": True,
                "require": "train_error == 0"}, None, res)
    (left_out, unplotted) = fig.genlab_notes
    assert left_out.startswith("Left out 1 of 6 runs not meeting train_error == 0: init.std=0.001")
    assert "train_error 0.574" in left_out
    assert unplotted.startswith("Not drawn: 1 of 5 runs") and "init.std=0.01" in unplotted
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 5  # 4 runs + the RL star; 1 unplottable
    assert any(t.get_text().startswith("Left out 1 of 6") for t in fig.texts)  # written under the axes too
    clean = draw({"name": "ch4_losses", "require": "train_error == 0"}, None, ch4_results())
    assert not getattr(clean, "genlab_notes", [])  # nothing left out: nothing said


def test_a_diverged_run_sets_no_axis_range_and_is_listed():
    h = ch5_history()
    blown = h[h["run_id"] == "project-1"].index
    h.loc[blown, "train_loss"] = [1.0, 1e4, 1e10, 1e16]  # one seed of the projected runs diverges
    res = pd.DataFrame({"run_id": h["run_id"].unique()}).assign(
        status=lambda d: np.where(d["run_id"] == "project-1", "diverged", "completed"))
    fig = draw({"name": "weightnorm_curves", "panels": [["train_loss"]]}, h, res)
    ax = fig.axes[0]
    assert ax.get_ylim()[1] < 5  # set by the runs that trained (losses ≤ 1.2), not by 1e16
    means = {ln.get_label(): ln.get_ydata().tolist() for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    assert means["train_loss (training=project each epoch, ρ absorbed)"] == pytest.approx([1.0, 0.5, 1 / 3, 0.25])
    (line,) = [ln for ln in fig.genlab_notes if ln.startswith("Diverged")]  # beside what the bands are
    assert line.startswith("Diverged: 1 of 4 runs") and "(training project each epoch, ρ absorbed, seed 1, epoch 3)" in line
    clean = draw({"name": "weightnorm_curves", "panels": [["train_loss"]]}, ch5_history(),
                 res.assign(status="completed"))
    assert not [ln for ln in getattr(clean, "genlab_notes", []) if "iverged" in ln]  # nothing diverged: nothing listed
