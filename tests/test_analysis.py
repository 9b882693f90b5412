"""genlab.analysis on hand-made tables with known answers: τ = scipy's, Ψ and CMI of the gap itself are 1 (and
−1 for Ψ of −gap), CMI of a function of a conditioned axis is 0, PGDL's score on a table worked out by hand,
sign-error 0 / 1, the Hoeffding weight against its formula, excluded runs counted, every statistic walked."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genlab.analysis import analyze, get_statistic, list_statistics
from genlab.analysis.cmi import PGDL_LOG_EPS
from genlab.analysis.sign_error import hoeffding_weight
from genlab.analysis.sweep import sample, sweep

AXES = {"optim.lr": [0.1, 0.03, 0.01], "model.width": [8, 32], "train.batch_size": [32, 128]}


def grid(seeds: int = 2, seed: int = 0) -> pd.DataFrame:
    """A full results table: 3 × 2 × 2 points × `seeds` seeds, random gaps, n_test 10,000, all converged."""
    rng = np.random.default_rng(seed)
    rows = []
    for values in itertools.product(*AXES.values()):
        for s in range(seeds):
            test = float(rng.uniform(0.05, 0.6))
            rows.append({"run_id": f"r{len(rows)}", "experiment": "t", "seed": s, **dict(zip(AXES, values)),
                         "train.stop_below_loss": 0.01, "status": "completed", "stop_reason": "train_loss_below",
                         "train_error": 0.0, "test_error": test, "data_info.n_test": 10_000,
                         "noise_measure": float(rng.normal())})
    return pd.DataFrame(rows)


def with_measures(df: pd.DataFrame) -> pd.DataFrame:
    gap = df["test_error"] - df["train_error"]
    return df.assign(mu_gap=gap, mu_neg=-gap, mu_lr=np.log(df["optim.lr"]) ** 2, mu_twice=3 * gap + 1)


def stat(df: pd.DataFrame, measure: str, name: str, **kw) -> dict[str, float]:
    return get_statistic(name)(sample(sweep(df, **kw), measure))


def test_axes_are_the_varying_config_columns_seed_is_the_repeat():
    sw = sweep(grid())
    assert sw.axes == ("optim.lr", "model.width", "train.batch_size")  # in the order of the columns
    assert sw.levels["optim.lr"] == [0.01, 0.03, 0.1] and len(set(sw.repeat)) == 2
    assert sw.codes.shape == (24, 3) and sw.excluded == {}


def test_tau_equals_scipy():
    df = grid()
    got = stat(df, "noise_measure", "kendall_tau")
    want = stats.kendalltau(df["noise_measure"], df["test_error"])
    assert got["tau"] == pytest.approx(want.statistic, abs=1e-12)
    assert got["tau_p"] == pytest.approx(want.pvalue, abs=1e-12)


def test_psi_of_the_gap_is_one_and_of_its_negative_minus_one():
    df = with_measures(grid())
    assert stat(df, "mu_gap", "granulated_psi")["psi"] == pytest.approx(1.0)
    assert stat(df, "mu_twice", "granulated_psi")["psi"] == pytest.approx(1.0)  # a monotone map of the gap
    neg = stat(df, "mu_neg", "granulated_psi")
    assert neg["psi"] == pytest.approx(-1.0)
    assert all(neg[f"psi[{a}]"] == pytest.approx(-1.0) for a in AXES)
    assert abs(stat(df, "noise_measure", "granulated_psi")["psi"]) < 0.5  # can fail: noise is not ±1


def test_cmi_of_the_gap_is_one_in_both_forms():
    df = with_measures(grid())
    assert stat(df, "mu_gap", "cmi_pgdl")["cmi_pgdl_x100"] == pytest.approx(100.0)
    jiang = stat(df, "mu_gap", "cmi_jiang")
    assert [jiang[k] for k in ("cmi_k0", "cmi_k1", "cmi_k2")] == pytest.approx([1.0, 1.0, 1.0])


def test_cmi_of_a_function_of_a_conditioned_axis_is_zero():
    df = with_measures(grid())
    jiang = stat(df, "mu_lr", "cmi_jiang")
    assert jiang["cmi_k1[optim.lr]"] == pytest.approx(0.0, abs=1e-12)
    assert jiang["cmi_k1"] == pytest.approx(0.0, abs=1e-12) and jiang["cmi_k2"] == pytest.approx(0.0, abs=1e-12)
    assert jiang["cmi_k1[model.width]"] > 0.0  # conditioned on another axis, lr still tells something
    assert stat(df, "mu_lr", "cmi_pgdl")["cmi_pgdl_x100"] == pytest.approx(0.0, abs=1e-9)


def pgdl_program_score(df: pd.DataFrame, measure: str) -> float:
    """PGDL 2020's score as its public scoring program computes it, re-written here as plain loops over models:
    for each ordered pair of two distinct hyperparameters (h1, h2), a 2 × 2 × cells table over every ordered
    pair of models (a model with itself included), a cell being both models' values of h1 and h2 and the
    entries [gap_1 > gap_2] × [μ_1 > μ_2]; per cell I and H(gap) in bits (H with log2(p + 1e-12)); the set
    scores mean I / mean H over all cells of the full grid; the task score is the smallest set score."""
    models = df.to_dict("records")
    values = {h: sorted(df[h].unique()) for h in AXES}

    def cell_mi_h(n):  # n: 2 × 2 counts [gap][μ]
        total = sum(map(sum, n))
        pg, pm = [sum(n[g]) / total for g in (0, 1)], [(n[0][m] + n[1][m]) / total for m in (0, 1)]
        mi = sum(n[g][m] / total * math.log2(n[g][m] / total / (pg[g] * pm[m]))
                 for g in (0, 1) for m in (0, 1) if n[g][m])
        return mi, -sum(p * math.log2(p + PGDL_LOG_EPS) for p in pg)

    scores = []
    for h1, h2 in itertools.permutations(AXES, 2):
        cells = {key: [[0, 0], [0, 0]] for key in itertools.product(values[h1], values[h1], values[h2], values[h2])}
        for m1 in models:
            for m2 in models:
                gap = (m1["test_error"] - m1["train_error"]) > (m2["test_error"] - m2["train_error"])
                cells[m1[h1], m2[h1], m1[h2], m2[h2]][int(gap)][int(m1[measure] > m2[measure])] += 1
        mis, hs = zip(*(cell_mi_h(n) for n in cells.values()))
        scores.append(sum(mis) / len(mis) / (sum(hs) / len(hs)))
    return min(scores)


@pytest.mark.parametrize("measure", ["noise_measure", "mu_tied", "mu_gap"])
def test_pgdl_score_equals_the_scoring_programs_loops(measure):
    """On a complete 3 × 2 × 2 grid with 2 seeds: a noise measure, one with ties (rounded: [μ_1 > μ_2] is 0 on
    a tie, as in the program), and the gap itself."""
    df = with_measures(grid()).assign(mu_tied=lambda d: d["noise_measure"].round(0))
    got = stat(df, measure, "cmi_pgdl")["cmi_pgdl_x100"]
    assert got == pytest.approx(100 * pgdl_program_score(df, measure), rel=1e-12, abs=1e-12)


def pgdl_hand_table() -> pd.DataFrame:
    """Two axes: A ∈ {0, 1} (two runs each) and B, one value (given as an axis explicitly)."""
    return pd.DataFrame({"model.a": [0, 0, 1, 1], "model.b": [0, 0, 0, 0], "train_error": 0.0,
                         "test_error": [0.1, 0.2, 0.3, 0.4], "mu": [1.0, 0.0, 2.0, 3.0], "status": "completed"})


def test_pgdl_score_on_a_hand_computed_table():
    # ordered pairs (i, j), self-pairs included; V_gap = [gap_i > gap_j], V_mu = [mu_i > mu_j]; a cell is
    # (a_i, a_j, b_i, b_j). Counts n[V_gap, V_mu] per cell:
    #   cell (0,0): pairs (r0,r0) (r0,r1) (r1,r0) (r1,r1): V_gap 0,0,1,0  V_mu 0,1,0,0 → n00=2 n01=1 n10=1 n11=0
    #   cell (1,1): pairs (r2,r2) (r2,r3) (r3,r2) (r3,r3): V_gap 0,0,1,0  V_mu 0,0,1,0 → n00=3 n11=1
    #   cell (0,1): i ∈ {r0, r1}, j ∈ {r2, r3}: gap_i < gap_j and mu_i < mu_j always → n00=4
    #   cell (1,0): the same pairs reversed: gap_i > gap_j and mu_i > mu_j always → n11=4
    def mi_h(n00, n01, n10, n11):
        n = n00 + n01 + n10 + n11
        p = {(0, 0): n00 / n, (0, 1): n01 / n, (1, 0): n10 / n, (1, 1): n11 / n}
        pg = {g: p[g, 0] + p[g, 1] for g in (0, 1)}
        pm = {m: p[0, m] + p[1, m] for m in (0, 1)}
        mi = sum(v * math.log2(v / (pg[g] * pm[m])) for (g, m), v in p.items() if v > 0)
        h = -sum(v * math.log2(v + PGDL_LOG_EPS) for v in pg.values())
        return mi, h

    cells = [mi_h(2, 1, 1, 0), mi_h(3, 0, 0, 1), mi_h(4, 0, 0, 0), mi_h(0, 0, 0, 4)]
    want = sum(c[0] for c in cells) / sum(c[1] for c in cells)  # mean MI / mean H over the 4 cells
    assert want == pytest.approx(0.575533, abs=1e-6)  # (0.122556 + 0.811278 + 0 + 0) / (2 · 0.811278 + ~0)
    got = stat(pgdl_hand_table(), "mu", "cmi_pgdl", axes=["model.a", "model.b"])["cmi_pgdl_x100"]
    assert got == pytest.approx(100 * want, rel=1e-12)


def test_sign_error_is_zero_with_the_gap_and_one_against_it():
    df = with_measures(grid())
    good, bad = stat(df, "mu_gap", "sign_error"), stat(df, "mu_neg", "sign_error")
    assert good["sign_envs"] > 0
    assert [good[k] for k in ("sign_mean", "sign_p90", "sign_max")] == [0.0, 0.0, 0.0]
    assert [bad[k] for k in ("sign_mean", "sign_p90", "sign_max")] == [1.0, 1.0, 1.0]
    assert bad["sign_max[optim.lr]"] == 1.0
    noisy = stat(df, "noise_measure", "sign_error")
    assert 0.0 < noisy["sign_mean"] < 1.0


def test_hoeffding_weight_against_its_formula():
    for delta, n in [(0.02, 10_000), (0.1, 297), (0.05, 1000)]:
        want = max(0.0, 1 - 2 * math.exp(-2 * n * (delta / 2) ** 2)) ** 2
        assert float(hoeffding_weight(delta, n)) == pytest.approx(want, rel=1e-12)
    assert float(hoeffding_weight(0.02, 10_000)) == pytest.approx((1 - 2 * math.exp(-2)) ** 2)
    assert float(hoeffding_weight(0.001, 10_000)) == 0.0  # within noise: clipped at 0
    assert float(hoeffding_weight(-0.3, 10_000)) == float(hoeffding_weight(0.3, 10_000))


def test_sign_error_without_test_set_size_names_the_fix():
    df = grid().drop(columns="data_info.n_test")
    with pytest.raises(ValueError, match="n_test"):
        stat(df, "noise_measure", "sign_error")
    a = analyze(df, measures=["noise_measure"], statistics=["sign_error"], n_test=10_000)
    assert a.table.loc[0, "sign_envs"] > 0


def test_excluded_runs_are_counted():
    df = grid()
    df.loc[[0, 5], "stop_reason"] = "max_epochs"
    df.loc[7, ["status", "stop_reason"]] = ["diverged", "non_finite_loss"]
    df.loc[9, "test_error"] = float("nan")
    sw = sweep(df)
    assert sw.excluded == {"train loss not below 0.01": 2, "status diverged": 1, "gap is not a finite number": 1}
    assert len(sw.runs) == 20 and len(sw.gap) == 20
    a = analyze(df, measures=["noise_measure"])
    assert a.to_dict()["excluded"] == sw.excluded and a.table.loc[0, "n"] == 20


def test_every_run_excluded_is_an_error():
    df = grid().assign(stop_reason="max_epochs")
    with pytest.raises(ValueError, match="every run was excluded"):
        sweep(df)


@pytest.mark.parametrize("name", list_statistics())
def test_every_statistic_gives_numbers_in_range(name):
    s = sample(sweep(with_measures(grid())), "noise_measure")
    out = get_statistic(name)(s)
    assert out and all(isinstance(v, float) for v in out.values())
    main = {k: v for k, v in out.items() if "[" not in k and not k.startswith("sign_envs")}
    assert all(np.isfinite(v) for v in main.values()), main
    lo, hi = (-1.0, 1.0) if name in ("kendall_tau", "granulated_psi") else (0.0, 100.0)
    assert all(lo - 1e-9 <= v <= hi + 1e-9 for k, v in main.items() if k != "tau_p")


def test_unknown_statistic_lists_the_known_ones():
    with pytest.raises(KeyError, match="cmi_pgdl"):
        get_statistic("cmi")


def test_analyze_table_is_sorted_by_pgdl_and_names_every_form():
    a = analyze(with_measures(grid()), measures=["noise_measure", "mu_gap", "mu_lr"])
    assert list(a.table["measure"]) == ["mu_gap", "noise_measure", "mu_lr"]
    d = a.to_dict()
    assert {"cmi_pgdl_x100", "cmi_k0", "cmi_k1", "cmi_k2", "psi", "tau", "sign_max"} <= set(d["columns"])
    assert "psi[optim.lr]" in a.table.columns and "psi[optim.lr]" not in a.main().columns


def test_measure_vs_gap_figure_has_a_panel_per_axis_and_every_kept_run():
    from genlab.figures import draw

    df = with_measures(grid())
    df.loc[0, "stop_reason"] = "max_epochs"  # left out of the figure too
    fig = draw({"name": "measure_vs_gap", "measure": "mu_gap"}, None, df)
    assert [ax.get_title() for ax in fig.axes] == list(AXES)
    lr = fig.axes[0]
    assert [len(c.get_offsets()) for c in lr.collections] == [8, 8, 7]  # lr 0.01, 0.03, 0.1; run 0 (lr 0.1) excluded
    x, y = np.concatenate([c.get_offsets() for c in lr.collections]).T
    assert np.allclose(x, y)  # μ = gap: every point on the diagonal
    assert "τ = 1.000 over 23 runs (1 excluded)" in fig._suptitle.get_text()


def test_an_axis_some_runs_lack_is_a_level_of_its_own():
    df = grid()
    df["model.dropout"] = [0.1 if i % 2 else float("nan") for i in range(len(df))]  # pooled experiments
    sw = sweep(df)
    assert "model.dropout" in sw.axes and sw.levels["model.dropout"] == [0.1, "none"]
    assert sorted(set(sw.codes[:, sw.axes.index("model.dropout")])) == [0, 1]


def test_a_measure_with_several_columns_expands_to_all_of_them():
    df = grid().assign(**{"flat.sigma": 1.0, "flat.bound": 2.0})
    df["flat.sigma"] = df["noise_measure"]
    a = analyze(df, measures=["flat"], statistics=["kendall_tau"])
    assert sorted(a.table["measure"]) == ["flat.bound", "flat.sigma"]
    with pytest.raises(ValueError, match="measure 'nope' is not a column"):
        analyze(df, measures=["nope"])


def test_config_roots_are_the_run_config_fields():
    from genlab.analysis.sweep import CONFIG_ROOTS, NOT_AXES
    from genlab.spec.loader import RUN_FIELDS

    assert set(CONFIG_ROOTS) | set(NOT_AXES) == {"experiment", "seed", *RUN_FIELDS}  # RUN_FIELDS: the tables
