"""The report shows what it judged (issue 23): every check of a claim with its number, "not judged" apart
from inconclusive, counts that say what they count, a figure link on every row, the measure ranking's
sign against theory, and images that fit the page and enlarge. Each test reads the generated HTML."""

import glob
import math
import re

import numpy as np
import pandas as pd

from genlab.spec.loader import load, parse
from genlab.report import Section, figure_of, judge, render

RNG = np.random.default_rng(3)


def section(tmp_path, findings: list[dict], res: pd.DataFrame, figures: list[dict] | None = None,
            seed: str = "000", name: str = "s", data: str = "separable") -> Section:
    raw = {"name": name, "data": {"name": data}, "model": {"name": "linear"}, "init": {"name": "normal"},
           "findings": findings, "figures": figures or []}
    return Section(parse(raw, path=tmp_path / seed / f"{name}.toml"), pd.DataFrame(), res)


def slope_runs(intercept: float, noise: float, train_error=0.0) -> pd.DataFrame:
    x = np.linspace(2.0, 2.3, 8)
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(8)], "init.std": np.geomspace(1e-3, 0.15, 8),
                         "data.corrupt_prob": 0.0, "train_error": train_error,
                         "normalized_loss.train": x, "normalized_loss.test": x + intercept + noise * RNG.standard_normal(8),
                         "test_error": np.linspace(0.3, 0.4, 8)})


SLOPE = {"name": "slope", "claim": "slope 1, positive offset", "x": "normalized_loss.train",
         "y": "normalized_loss.test", "target": 1.0, "tolerance": 0.1, "intercept": "positive",
         "require": "train_error == 0"}


def verdict_part(page: str) -> str:
    return page.split("<h2>Contents</h2>")[0]


def test_the_verdict_table_lists_every_check_with_its_own_number_and_verdict(tmp_path):
    res = slope_runs(0.0, 0.004)  # slope ≈ 1 (agrees), intercept ≈ 0: its interval spans 0 (inconclusive)
    s = section(tmp_path, [SLOPE], res)
    (j,) = judge(s)
    slope_check, icpt_check = j.finding.checks
    assert (slope_check.verdict, icpt_check.verdict, j.finding.verdict) == ("agrees", "inconclusive", "inconclusive")
    table = verdict_part(render([s]))
    row = table.split("<tr>")[-1]
    assert "slope in [0.9, 1.1]" in row and "intercept &gt; 0" in row  # both checks, in the verdict table itself
    assert f"{icpt_check.value:.3g} ± {icpt_check.error:.2g}" in row and "→ <span class='maybe'>inconclusive" in row
    assert f"{slope_check.value:.3g} ± {slope_check.error:.2g}" in row and "→ <span class='yes'>agrees" in row


def test_precondition_not_met_is_not_judged_and_counted_apart_from_inconclusive(tmp_path):
    unmet = section(tmp_path, [SLOPE], slope_runs(0.05, 0.001, train_error=0.02), name="unmet")
    spans = section(tmp_path, [SLOPE], slope_runs(0.0, 0.004), name="spans")
    no_line = section(tmp_path, [{"name": "value", "claim": "a number", "metric": "test_error"}], slope_runs(0, 0),
                      name="noline")
    table = verdict_part(render([unmet, spans, no_line]))
    assert "3 claims: 1 inconclusive, 1 not judged (no line to judge: a number reported), 1 not judged " \
           "(precondition not met)" in table
    unmet_row = next(r for r in table.split("<tr>") if "href='#unmet-finding-0'" in r)
    assert "not judged (precondition not met)" in unmet_row and "inconclusive" not in unmet_row


def test_a_claim_that_a_relation_does_not_hold_never_shows_a_red_check_in_a_green_row(tmp_path):
    res = pd.DataFrame({"run_id": [f"r{i}" for i in range(6)], "n_params": np.arange(6.0) * 100,
                        "zeta": np.arange(6.0)})  # grows: "falls with h" does not hold, as the paper says
    claim = {"name": "correlation", "claim": "sharpness falls with h — paper: no", "x": "n_params", "y": "zeta",
             "sign": -1, "paper": "no"}
    s = section(tmp_path, [claim], res)
    (j,) = judge(s)
    assert j.finding.verdict == "agrees" and j.finding.checks[0].verdict == "differs"
    page = render([s])
    detail = page.split("id='s-finding-0'")[1].split("</tr>")[0]
    assert "class='no'" not in detail and "the relation does not hold; for the claim: <span class='yes'>agrees" in detail
    assert "the claim is that this relation does not hold" in detail and "the seed says" not in detail


def test_a_fraction_says_it_is_one(tmp_path):
    size = np.repeat([100, 200, 400, 800], 4)
    label = np.tile([0.0, 0.0, 1.0, 1.0], 4)
    res = pd.DataFrame({"run_id": [f"r{i}" for i in range(16)], "data.n_train": size, "data.corrupt_prob": label,
                        "cap": 5 + np.where((label == 1) & (size == 100), 1.0, -1.0) * label + 0.01 * np.arange(16)})
    s = section(tmp_path, [{"name": "dominates", "claim": "lower on true labels at every size", "metric": "cap",
                            "by": "data.corrupt_prob", "low": 0.0, "high": 1.0, "over": "data.n_train"}], res,
                data="digits")
    row = verdict_part(render([s])).split("<tr>")[-1]
    assert "0.25 (no error bar) (fraction of the 4 values of data.n_train where it holds)" in row  # a count
    assert row.count("data.n_train=") == 4  # and each size's check with its own number


def test_every_row_of_the_studies_links_a_figure_of_its_spec():
    """Each finding of the 000 specs names (or is matched to) a figure its spec draws — never a dead link."""
    for path in sorted(glob.glob("experiments/000/*.toml")):
        for profile in ("small", "full"):
            exp = load(path, profile=profile)
            files = {e.get("file", e["name"]) for e in exp.figures}
            for entry in exp.findings:
                name = figure_of(exp, entry)
                assert not files or name in files, (path, profile, entry.get("claim"), name)


def test_findings_and_figures_that_promise_zero_training_error_require_it():
    for path in sorted(glob.glob("experiments/*/*.toml")):
        for profile in ("small", "full"):
            exp = load(path, profile=profile)
            by_file = {e.get("file", e["name"]): e for e in exp.figures}
            for e in exp.figures:
                if "at zero training error" in e.get("title", ""):
                    assert "train_error" in (e.get("require") or ""), (path, profile, e.get("file"))
            for f in exp.findings:
                fig = by_file.get(f.get("figure") or "", {})
                whole = fig.get("name") in ("ch4_losses", "ch4_points")  # figures whose `require` holds for every panel
                if whole and f["name"] in ("slope", "correlation") and "train_error" in (fig.get("require") or ""):
                    assert f.get("require") == fig["require"], (path, profile, f.get("claim"))  # same runs as its figure


def test_the_slope_rows_of_learning_rules_check_intercept_and_precondition_and_link_their_figure():
    exp = load("experiments/000/learning_rules.toml", profile="small")
    rows = [f for f in exp.findings if f["name"] == "slope"]
    assert len(rows) == 3
    for f in rows:
        assert f["intercept"] == "positive" and f["require"] == "train_error == 0"
        assert f["figure"] == "learning_rules_convnet3"


def test_measure_ranking_marks_taus_against_their_theory_and_images_fit_and_enlarge():
    from genlab.report.ranking import analysis_html, opposite

    n = 24
    rng = np.random.default_rng(0)
    gap = rng.uniform(0.0, 0.3, n)
    res = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)], "status": "completed", "stop_reason": "train_loss_below",
                        "optim.lr": np.tile([0.01, 0.03], n // 2), "model.width": np.repeat([64, 128], n // 2),
                        "train_error": 0.0, "test_error": gap, "train_loss": 0.01, "test_loss": 0.5, "data_info.n_test": 1000,
                        "log_prod_frobenius": -3 * gap + 0.01 * rng.standard_normal(n),  # falls: against its bound
                        "margin_q10": -2 * gap + 0.01 * rng.standard_normal(n)})          # falls: as predicted
    page = analysis_html(res, {"gap": "test_error - train_error", "measures": ["log_prod_frobenius", "margin_q10"],
                               "figure_measures": 2})
    assert opposite("log_prod_frobenius", -0.9) and not opposite("margin_q10", -0.9) and not opposite("x", -0.9)
    row = next(r for r in page.split("<tr>") if "<td>log_prod_frobenius" in r)
    assert "against its theory" in row
    assert "against its theory" not in next(r for r in page.split("<tr>") if "<td>margin_q10" in r)
    assert "1 of 2 measures" in page  # said in words above the table too
    imgs = re.findall(r"<img [^>]*>", page)
    assert len(imgs) == 2 and all("classList.toggle('big')" in i for i in imgs)  # click to enlarge
    from genlab.report import CSS

    assert "img{max-width:100%" in CSS.replace(" ", "")  # every image fits the page


def test_a_finding_without_a_figure_key_links_the_figure_that_draws_its_columns(tmp_path):
    figures = [{"name": "curves", "file": "loss_curves", "panels": [["train_loss"]]},
               {"name": "versus", "file": "final", "x": "init.std", "metrics": ["test_accuracy"]}]
    s = section(tmp_path, [{"name": "value", "claim": "a", "metric": "test_error"},
                           {"name": "value", "claim": "b", "metric": "train_error"},
                           {"name": "value", "claim": "c", "metric": "margin_q5"}], slope_runs(0, 0), figures)
    assert [figure_of(s.exp, f) for f in s.exp.findings] == ["final", "loss_curves", ""]
    table = verdict_part(render([s]))
    assert "href='#fig-s-final'" in table and "href='#fig-s-loss_curves'" in table
    assert "<a href='#s'>s</a>" in table  # no figure draws margin_q5: the row links its spec's section


def test_an_exact_number_says_so():
    from genlab.findings import Finding
    from genlab.report import number

    assert number(Finding(0.0, 0.0, "agrees", "")) == "0 (exact: over every run)"  # a max/min over the runs
    assert number(Finding(0.5, 0.01, "agrees", "")) == "0.5 ± 0.01"
    assert number(Finding(0.5, math.nan, None, "")) == "0.5 (no error bar)"
