"""Findings: every kind fed constructed tables on both sides of its line (the verdict flips), exact values on
hand-made tables, and errors that name what is wrong."""

import math

import numpy as np
import pandas as pd
import pytest

from genlab.findings import Finding, evaluate, linear_fit, list_findings
from genlab.findings.verdicts import ALPHA, Evidence, critical, judge, more_seeds, overall, spent

RNG = np.random.default_rng(0)
NOISE = RNG.standard_normal(12)  # fixed noise, shared by the constructed tables


def runs(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(n)], "seed": np.arange(n) % 3, **cols})


def slope_case(a: float, b: float, noise: float) -> tuple[None, pd.DataFrame]:
    x = np.arange(1.0, 13.0)
    return None, runs(x=x, y=a * x + b + noise * NOISE)


def correlation_case(direction: float, noise: float) -> tuple[None, pd.DataFrame]:
    x = np.arange(12.0)
    return None, runs(x=x, y=direction * x + noise * NOISE)


def compare_case(diff: float, noise: float) -> tuple[None, pd.DataFrame]:
    g = np.array(["a", "b"] * 6)
    return None, runs(g=g, m=np.where(g == "b", diff, 0.0) + noise * NOISE)


def value_case(mean: float, noise: float) -> tuple[None, pd.DataFrame]:
    return None, runs(m=mean + noise * NOISE)


def dominates_case(diff: float, noise: float) -> tuple[None, pd.DataFrame]:
    size = np.repeat([100, 200, 400], 4)
    label = np.tile([0.0, 0.0, 1.0, 1.0], 3)  # two seeds per (size, label)
    return None, runs(**{"data.n_train": size, "data.corrupt_prob": label,
                         "cap": 5.0 + diff * label + noise * NOISE})


def slower_history(gap: float, noise: float, seeds: int = 4, start: float = 0.0) -> pd.DataFrame:
    """Pairs of runs (g = "a" low, "b" high) per seed, 10 epochs: log loss falls by 0.3 per epoch for a, and by
    0.3 − gap per epoch for b, which starts `start` higher in log loss."""
    out = []
    for seed in range(seeds):
        for g, s0, rate in (("a", 0.0, 0.3), ("b", start, 0.3 - gap)):
            for e in range(11):
                out.append({"run_id": f"{g}{seed}", "seed": seed, "g": g, "epoch": e, "event": None,
                            "loss": float(np.exp(s0 - rate * e + noise * (-1) ** seed * (g == "b")
                                                   * abs(NOISE[(seed + e) % 12])))})
    return pd.DataFrame(out)


def recovery_history(end_ratio: float, jump: float, noise: float) -> pd.DataFrame:
    """A control run (std 0) and two perturbed runs per seed (3 seeds) (std 0.5, 1), 20 epochs, a perturbation at 5.
    Losses fall as 0.5 + 1/(epoch+1)²; a perturbed run jumps by `jump` at epoch 5 and ends at `end_ratio` × the
    control; `noise` is epoch-to-epoch jitter (relative)."""
    out = []
    for seed in (0, 1, 2):
        for std in (0.0, 0.5, 1.0):
            rid = f"s{seed}-{std}"
            for e in range(21):
                base = (0.5 + 1.0 / (e + 1) ** 2) * (1 + noise * NOISE[(e + 5 * seed) % 12] * (1 if std else -1))
                scale = 1.0 if std == 0 or e < 5 else 1 + (end_ratio - 1) * min(1.0, (e - 5) / 5)
                out.append({"run_id": rid, "seed": seed, "events.perturb_std": std, "epoch": e,
                            "event": None, "train_loss": base * scale})
                if std and e == 5:
                    out.append({"run_id": rid, "seed": seed, "events.perturb_std": std, "epoch": e,
                                "event": "perturb", "train_loss": base * scale + jump})
    return pd.DataFrame(out)


# per kind: (options, tables on the claim's side, on the other side, straddling the line)
SIDES = {
    "slope": ({"x": "x", "y": "y", "target": 1.0, "tolerance": 0.1, "intercept": "positive"},
              slope_case(1.0, 0.5, 0.05), slope_case(1.5, 0.5, 0.05), slope_case(1.1, 0.5, 1.0)),
    "correlation": ({"x": "x", "y": "y", "sign": 1},
                    correlation_case(1.0, 0.1), correlation_case(-1.0, 0.1), correlation_case(0.0, 1.0)),
    "compare": ({"metric": "m", "by": "g", "low": "a", "high": "b"},
                compare_case(1.0, 0.1), compare_case(-1.0, 0.1), compare_case(0.0, 1.0)),
    "value": ({"metric": "m", "target": 1.0, "tolerance": 0.2},
              value_case(1.0, 0.05), value_case(2.0, 0.05), value_case(1.2, 0.5)),
    "recovery": ({"metric": "train_loss", "tolerance": 0.1},
                 (recovery_history(1.0, 1.0, 0.01), None), (recovery_history(1.5, 1.0, 0.01), None),
                 (recovery_history(1.1, 1.0, 0.3), None)),
    "dominates": ({"metric": "cap", "by": "data.corrupt_prob", "low": 0.0, "high": 1.0, "over": "data.n_train"},
                  dominates_case(2.0, 0.01), dominates_case(-2.0, 0.01), dominates_case(0.0, 1.0)),
    "slower": ({"metric": "loss", "by": "g", "low": "a", "high": "b"},
               (slower_history(0.1, 0.01), None), (slower_history(-0.1, 0.01), None),
               (slower_history(0.0, 0.5), None)),
}


def verdict(name: str, tables, **extra) -> Finding:
    return evaluate({"name": name, "claim": "c", **SIDES[name][0], **extra}, *tables)[1]


@pytest.mark.parametrize("name", list_findings())
def test_every_finding_kind_flips_its_verdict_across_its_line(name):
    assert name in SIDES, f"add constructed tables for the new finding {name!r} to SIDES"
    _, yes, no, between = SIDES[name]
    f, g, h = verdict(name, yes), verdict(name, no), verdict(name, between)
    assert (f.verdict, g.verdict, h.verdict) == ("agrees", "differs", "inconclusive"), (f.text, g.text, h.text)
    assert f.agrees is True and g.agrees is False and h.agrees is None
    for x in (f, g, h):  # every finding says what would make it fail, and what it tested
        assert x.fails_if.startswith("differs if") and x.expect and x.checks and np.isfinite(x.value), x


@pytest.mark.parametrize("name", ["correlation", "compare", "dominates"])
def test_paper_no_reverses_the_verdict(name):
    _, yes, no, between = SIDES[name]
    assert verdict(name, yes, paper="no").verdict == "differs"
    assert verdict(name, no, paper="no").verdict == "agrees"
    assert verdict(name, between, paper="no").verdict == "inconclusive"
    assert verdict(name, yes, paper="no").expect.startswith("not: ")
    with pytest.raises(ValueError, match="paper"):
        verdict(name, yes, paper="maybe")


def test_the_interval_rules():
    q = critical(spent(0), float("inf"))  # the design's own look: a two-sided 97.5 % normal interval
    assert q == pytest.approx(2.2414, abs=1e-4)
    above = lambda v, e, **kw: judge("", Evidence(v, e), "above", 0.0, **kw).verdict  # noqa: E731
    assert above(1.0, 0.4) == "agrees" and above(1.0, 0.5) == "inconclusive" and above(-1.0, 0.4) == "differs"
    assert above(0.0, 0.0, strict=True) == "differs"  # an exact value on the line: not above it
    assert above(0.0, 0.0) == "agrees"
    assert above(1.0, math.nan) is None  # one run: no error bar, not judged — never agrees or differs
    assert judge("", Evidence(1.0, math.nan), "above", 0.0).reason.startswith("one run")
    assert judge("", Evidence(1.0, 0.04), "within", (0.9, 1.1)).verdict == "agrees"
    assert judge("", Evidence(1.0, 0.06), "within", (0.9, 1.1)).verdict == "inconclusive"
    assert judge("", Evidence(1.25, 0.06), "within", (0.9, 1.1)).verdict == "differs"
    assert judge("", Evidence(1.0, 0.4, df=2), "above", 0.0).verdict == "inconclusive"  # t with 2 df: q ≈ 6.2


def test_no_effect_at_this_scale_on_all_four_sides():
    """margin 0.1: the interval inside ±0.1 is "no effect"; wholly above the line agrees, below differs,
    straddling the line and the margin's edge inconclusive."""
    v = lambda value, err: judge("", Evidence(value, err), "above", 0.0, strict=True, margin=0.1)  # noqa: E731
    assert v(1.0, 0.1).verdict == "agrees"
    assert v(-1.0, 0.1).verdict == "differs"
    assert v(0.01, 0.02).verdict == "no effect"  # [−0.035, 0.055] ⊂ [−0.1, 0.1]
    assert v(0.08, 0.02).verdict == "agrees"  # [0.035, 0.125]: above the line, though it crosses the margin
    assert v(0.0, 0.2).verdict == "inconclusive"  # spans the line and the margin: more seeds
    with pytest.raises(ValueError, match="margin must be a positive"):
        v_bad = judge("", Evidence(0.0, 0.1), "above", 0.0, margin=0.0)  # noqa: F841
    below = judge("", Evidence(-0.01, 0.02), "below", 0.0, margin=0.1)
    assert below.verdict == "no effect" and below.lo < 0 < below.hi


@pytest.mark.parametrize("name", ["compare", "correlation", "dominates", "slower"])
def test_every_comparison_or_trend_says_no_effect_inside_its_margin(name):
    _, yes, no, between = SIDES[name]
    tight = {"compare": (None, compare_case(0.001, 0.01)[1]),
             "correlation": (None, runs(x=np.arange(60.0), y=np.tile([0.0, 1.0], 30))),
             "dominates": (None, dominates_case(0.0, 0.01)[1]),
             "slower": (slower_history(0.0, 0.001), None)}[name]
    extra = {}
    margin = {"correlation": 0.3, "dominates": 1.0}.get(name, 0.1)
    assert verdict(name, tight, margin=margin, **extra).verdict == "no effect"
    assert verdict(name, yes, margin=margin / 100).verdict == "agrees"
    assert verdict(name, no, margin=margin / 100).verdict == "differs"
    assert verdict(name, tight, **extra).verdict == "inconclusive"  # without a margin no absent effect is decided
    assert verdict(name, tight, margin=margin, paper="no", **extra).verdict == "no effect"  # either way


def test_slower_is_judged_over_the_whole_curve_not_its_start():
    prog = verdict("slower", (slower_history(0.05, 0.0, start=0.5), None), statistic="progress")
    # per epoch the gap in log loss grows by 0.05: mean over epochs 1..10 of 0.05·e = 0.275; the 0.5 start is gone
    assert prog.value == pytest.approx(0.275) and prog.error == pytest.approx(0.0) and prog.verdict == "agrees"
    from genlab.findings.curves import delay, first_reach
    y = np.array([3.0, 2.0, 1.0, 0.5])
    assert first_reach(y, 1.5) == pytest.approx(1.5) and first_reach(y, 3.0) == 0.0 and math.isnan(first_reach(y, 0.1))
    a, b = np.array([1.0, 0.8, 0.6, 0.4, 0.2]), np.array([1.0, 0.9, 0.8, 0.7, 0.6])  # b needs twice the epochs
    assert delay(a, b, levels=5) == pytest.approx(np.mean([0, 0.5, 1.0, 1.5, 2.0]))
    assert delay(a, a) == 0.0 and math.isnan(delay(a, a + 2))  # no common level: not computed
    shifted = verdict("slower", (slower_history(0.0, 0.0, start=0.5), None))  # same speed, b starts higher
    assert shifted.value > 0 and shifted.verdict == "agrees"  # it reaches each level later: takes longer
    same_speed = verdict("slower", (slower_history(0.0, 0.0, start=0.5), None), statistic="progress")
    assert same_speed.value == pytest.approx(0.0)  # ... though it sheds its loss just as fast
    one = verdict("slower", (slower_history(0.05, 0.01, seeds=1), None))
    assert one.verdict is None and "one run" in one.reason
    with pytest.raises(ValueError, match="statistic must be one of delay, progress"):
        verdict("slower", (slower_history(0.05, 0.01), None), statistic="speed")


def test_one_run_is_never_agrees_or_differs():
    one = runs(g=["a", "b"], m=[0.0, 5.0], x=[1.0, 2.0])
    c = evaluate({"name": "compare", "metric": "m", "by": "g", "low": "a", "high": "b"}, None, one)[1]
    v = evaluate({"name": "value", "metric": "m", "where": "g == 'a'", "at_most": 1.0}, None, one)[1]
    d = evaluate({"name": "dominates", "metric": "m", "by": "g", "low": "a", "high": "b", "over": "x"}, None,
                 one.assign(x=1.0))[1]
    for f in (c, v, d):
        assert f.verdict is None and f.reason.startswith("one run"), f


def test_looks_beyond_the_design_spend_less_alpha():
    assert [spent(k) for k in range(3)] == pytest.approx([ALPHA / 2, ALPHA / 6, ALPHA / 12])
    assert sum(spent(k) for k in range(100_000)) == pytest.approx(ALPHA, rel=1e-4)
    df = compare_case(0.6, 0.5)[1]  # 3 seeds
    at_design = evaluate({"name": "compare", "metric": "m", "by": "g", "low": "a", "high": "b"}, None, df,
                         design_seeds=3)[1]
    later = evaluate({"name": "compare", "metric": "m", "by": "g", "low": "a", "high": "b"}, None, df,
                     design_seeds=1)[1]  # the same rows seen as the third look: a wider interval
    (c0,), (c2,) = at_design.checks, later.checks
    assert c0.value == c2.value and (c2.hi - c2.lo) > (c0.hi - c0.lo)
    with pytest.raises(ValueError, match="set by genlab"):
        evaluate({"name": "value", "metric": "m", "design_seeds": 3}, None, df)


def test_inconclusive_says_how_many_more_seeds_and_they_would_decide():
    c = judge("", Evidence(0.5, 0.3, df=4, look=0, n=3, df_per_seed=2, design=3), "above", 0.0)
    assert c.verdict == "inconclusive" and c.more is not None and c.more >= 1
    grown = Evidence(0.5, 0.3, df=4, n=3, df_per_seed=2, design=3).with_seeds(c.more)
    assert grown.look == math.ceil(math.log2((3 + c.more) / 3))  # one look per doubling of the design's seeds
    assert judge("", grown, "above", 0.0).verdict == "agrees"
    fewer = Evidence(0.5, 0.3, df=4, n=3, df_per_seed=2, design=3).with_seeds(c.more - 1)
    assert judge("", fewer, "above", 0.0).verdict == "inconclusive"  # the smallest number that decides
    assert more_seeds([c]) == c.more and overall([c]) == "inconclusive"


def test_slope_band_is_fixed_and_the_intercept_sign_is_checked():
    f = verdict("slope", slope_case(1.0, -0.5, 0.05))  # slope 1 but a negative offset
    assert [c.verdict for c in f.checks] == ["agrees", "differs"] and f.verdict == "differs"
    assert f.checks[1].value == pytest.approx(-0.5, abs=0.1)
    noisy = verdict("slope", slope_case(1.3, 0.5, 3.0))  # noise never widens the band into agreement
    assert noisy.verdict in ("inconclusive", "differs")


def test_require_leaves_runs_out_of_the_fit_and_lists_them():
    _, res = slope_case(1.0, 0.5, 0.0)
    res = res.assign(train_error=0.0, **{"init.std": np.arange(12) / 10})
    res.loc[11, ["y", "train_error"]] = [-50.0, 0.5]  # an outlier that never fitted its training set
    f = verdict("slope", (None, res), require="train_error == 0")
    assert f.value == pytest.approx(1.0) and f.verdict == "agrees"
    assert "left out 1 of 12 runs not meeting train_error == 0: init.std=1.1" in f.text and "train_error 0.5" in f.text
    assert verdict("slope", (None, res)).verdict != "agrees"  # with it, the fit is pulled off the line


def test_compare_change_from_the_start_ignores_a_gap_present_at_initialization():
    rows = []
    for i, (g, start) in enumerate([("a", 1.0), ("b", 1.1)] * 3):  # b starts 0.1 higher, falls just as much
        for e in (0, 1):
            rows.append({"run_id": f"r{i}", "g": g, "epoch": e, "event": None,
                         "loss": start - 0.5 * e + 0.01 * NOISE[i]})
    h = pd.DataFrame(rows)
    level = evaluate({"name": "compare", "metric": "loss", "by": "g", "low": "a", "high": "b", "table": "history",
                      "where": "epoch == 1"}, h, None)[1]
    change = evaluate({"name": "compare", "metric": "loss", "by": "g", "low": "a", "high": "b", "table": "history",
                       "where": "epoch == 1", "change_from": 0}, h, None)[1]
    assert level.verdict == "agrees" and level.value == pytest.approx(0.1, abs=0.03)
    assert change.value == pytest.approx(0.0, abs=1e-9) and change.verdict == "differs"  # exactly 0 is not > 0
    one = evaluate({"name": "compare", "metric": "m", "by": "g", "low": "a", "high": "b"}, None,
                   compare_case(1.0, 0.1)[1].iloc[:2])[1]
    assert one.verdict is None and "one run" in one.reason and math.isnan(one.error)


def test_recovery_needs_a_control_and_a_jump():
    h = recovery_history(1.0, 1.0, 0.01)
    with pytest.raises(ValueError, match="needs an unperturbed control run: add events.perturb_std = 0.0"):
        evaluate({"name": "recovery"}, h[h["events.perturb_std"] > 0], None)
    flat = verdict("recovery", (recovery_history(1.0, -0.1, 0.01), None))  # the "perturbation" lowered the loss
    assert [c.verdict for c in flat.checks][-1] == "differs" and flat.verdict == "differs"
    ok = verdict("recovery", (h, None))
    assert ok.value == pytest.approx(1.0, abs=0.02) and len(ok.checks) == 3  # 2 perturbation sizes + the jump
    assert ok.checks[0].error > 0 and "mean over 3 seed(s)" in ok.text  # the error is the seed-to-seed one


def test_correlation_sign_zero_is_no_correlation_within_a_band():
    assert verdict("correlation", correlation_case(1.0, 0.1), sign=0).verdict == "differs"
    x = np.arange(40.0)
    flat = runs(x=x, y=np.tile([0.0, 1.0], 20))  # τ ≈ 0, tight with 40 runs
    assert verdict("correlation", (None, flat), sign=0, band=0.3).verdict == "agrees"
    with pytest.raises(ValueError, match="sign must be"):
        verdict("correlation", (None, flat), sign=2)


def test_exact_numbers_on_hand_made_tables():
    x = np.arange(1.0, 9.0)
    noisy = x + np.array([0.1, -0.1] * 4)
    a, se, b, _ = linear_fit(x, noisy)
    resid = noisy - (a * x + b)  # the textbook standard error of the slope
    assert se == pytest.approx(np.sqrt(resid @ resid / 6 / ((x - x.mean()) ** 2).sum()))
    df = runs(g=["a", "b"] * 4, m=[1.0, 3.0, 1.2, 3.2, 0.8, 2.8, 1.0, 3.0])
    c = evaluate({"name": "compare", "metric": "m", "by": "g", "low": "a", "high": "b"}, None, df)[1]
    sd = np.std([1.0, 1.2, 0.8, 1.0], ddof=1)  # the same spread in both groups
    assert c.value == pytest.approx(2.0) and c.error == pytest.approx(np.sqrt(2 * sd**2 / 4))
    v = evaluate({"name": "value", "metric": "m", "where": "run_id == 'r0'", "at_most": 1.0}, None, df)[1]
    assert v.value == 1.0 and math.isnan(v.error) and "±" not in v.text and v.verdict is None  # one run
    assert evaluate({"name": "value", "metric": "m"}, None, df)[1].verdict is None  # no line: not judged


def test_errors_name_what_is_wrong():
    df = compare_case(1.0, 0.1)[1]
    with pytest.raises(ValueError, match="'nope' is not a column"):
        evaluate({"name": "value", "metric": "nope"}, None, df)
    with pytest.raises(ValueError, match="no finished run with g = z; values present: a, b"):
        evaluate({"name": "compare", "metric": "m", "by": "g", "low": "a", "high": "z"}, None, df)
    with pytest.raises(ValueError, match="option colour"):
        evaluate({"name": "value", "metric": "m", "colour": 1}, None, df)


def test_a_precondition_no_run_meets_is_not_judged_and_says_why():
    _, res = slope_case(1.0, 0.5, 0.0)
    f = verdict("slope", (None, res.assign(train_error=0.01)), require="train_error == 0")
    assert f.verdict is None and f.reason == "precondition not met" and math.isnan(f.value) and "0 runs meet train_error == 0, 3 needed" in f.text
    assert f.expect == "not judged: precondition not met"  # not "inconclusive": no run could be judged at all
    g = verdict("correlation", (None, res.assign(train_error=0.01)), require="train_error == 0")
    assert g.verdict is None and g.expect == f.expect
    with pytest.raises(ValueError, match="needs at least 3 runs"):  # no precondition: too few runs is an error
        verdict("slope", (None, res.iloc[:2]))


def test_value_of_every_run_is_judged_on_the_worst_run():
    df = runs(m=[0.0] * 11 + [0.001])  # one run of 12 misses a single training point
    mean = evaluate({"name": "value", "metric": "m", "at_most": 0.0}, None, df)[1]
    worst = evaluate({"name": "value", "metric": "m", "at_most": 0.0, "stat": "max"}, None, df)[1]
    assert mean.verdict == "inconclusive"  # the mean's interval spans 0
    assert worst.verdict == "differs" and worst.value == 0.001 and worst.error == 0 and "max m" in worst.text
    assert evaluate({"name": "value", "metric": "m", "at_least": 0.0, "stat": "min"}, None, df)[1].verdict == "agrees"


def test_value_divided_by_judges_an_identity_as_a_ratio_per_run():
    # ‖w − X⁺y‖ = ‖P_null w‖: ratio 1 per run, whatever the scale of each run's null-space part
    d, nn = np.array([0.5, 0.55, 0.46, 1e-6]), np.array([0.5, 0.55, 0.46, 0.0])
    df = runs(d=list(d), nn=list(nn))
    f = evaluate({"name": "value", "metric": "d", "divided_by": "nn", "target": 1.0, "tolerance": 0.01}, None, df)[1]
    assert f.value == 1.0 and f.verdict == "agrees" and "d / nn = 1 (n = 3 runs)" in f.text
    assert "left out 1 of 4 runs with no finite d / nn: run_id=r3" in f.text  # the run dividing by 0 is listed
    off = runs(d=[0.6, 0.66, 0.552], nn=[0.5, 0.55, 0.46])  # 20 % above the identity: differs
    g = evaluate({"name": "value", "metric": "d", "divided_by": "nn", "target": 1.0, "tolerance": 0.01}, None, off)[1]
    assert g.value == pytest.approx(1.2) and g.verdict == "differs"


def test_value_at_the_best_sweep_value_is_chosen_on_training_loss_not_test():
    df = runs(**{"optim.lr": [0.01, 0.01, 0.1, 0.1, 1.0, 1.0], "train_loss": [0.5, 0.7, 0.01, 0.03, np.nan, np.nan],
                 "test_error": [0.01, 0.01, 0.2, 0.3, np.nan, np.nan], "status": ["completed"] * 4 + ["diverged"] * 2})
    f = evaluate({"name": "value", "metric": "test_error", "best_over": "optim.lr"}, None, df)[1]
    assert f.value == pytest.approx(0.25) and "at optim.lr=0.1 (lowest mean train_loss of 0.01: 0.6, 0.1: 0.02)" in f.text
    with pytest.raises(ValueError, match="2 of 2 selected runs diverged"):
        evaluate({"name": "value", "metric": "test_error", "where": "`optim.lr` == 1.0"}, None, df)


def test_rows_without_a_value_are_listed_not_dropped_silently():
    df = runs(m=[1.0, 2.0, np.nan, 3.0, np.nan], **{"train.rule": ["fa", "fa", "fa", "bp", "bp"]})
    f = evaluate({"name": "value", "metric": "m"}, None, df)[1]
    assert f.value == pytest.approx(2.0) and "n = 3 runs" in f.text
    assert "left out 2 of 5 runs with no finite m: train.rule=fa; train.rule=bp" in f.text
    _, res = slope_case(1.0, 0.5, 0.0)
    res.loc[[0, 5], "y"] = np.nan
    g = evaluate({"name": "slope", "x": "x", "y": "y"}, None, res)[1]
    assert "n = 10 runs" in g.text and "left out 2 of 12 runs with no finite x or y" in g.text
    h = pd.DataFrame({"run_id": np.repeat(["a", "b", "c"], 3), "epoch": np.tile([1, 2, 3], 3), "train.rule":
                      np.repeat(["bp", "fa", "ss"], 3), "angle": [0.0, np.nan, 0.0, 80, np.nan, 70, np.nan, np.nan, np.nan]})
    k = evaluate({"name": "value", "metric": "angle", "table": "history"}, h, None)[1]
    assert "4 of 9 (run, epoch) rows have it; left out 1 of 3 runs with no finite angle at any epoch: " \
           "train.rule=ss" in k.text  # epochs without the measure are by design; a run without any is listed


def test_counts_say_what_they_count():
    h = pd.DataFrame({"run_id": np.repeat(["a", "b", "c"], 4), "epoch": np.tile([1, 2, 3, 4], 3),
                      "angle": np.arange(12.0)})
    f = evaluate({"name": "value", "metric": "angle", "table": "history"}, h, None)[1]
    assert "n = 12 (run, epoch) rows of 3 runs" in f.text and "n = 12 runs" not in f.text
    g = evaluate({"name": "correlation", "x": "epoch", "y": "angle", "table": "history"}, h, None)[1]
    assert "n = 12 (run, epoch) rows of 3 runs" in g.text
    d = evaluate({"name": "dominates", "metric": "cap", "by": "data.corrupt_prob", "low": 0.0, "high": 1.0,
                  "over": "data.n_train"}, None, dominates_case(1.0, 0.0)[1])[1]
    assert d.unit == "fraction of the 3 values of data.n_train where it holds" and d.value == 1.0


def test_values_in_messages_are_numbers_not_numpy_reprs():
    df = runs(g=np.array([0.001, 0.01, 0.1, 0.001]), m=[1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError) as e:
        evaluate({"name": "compare", "metric": "m", "by": "g", "low": 0.001, "high": 0.5}, None, df)
    assert "values present: 0.001, 0.01, 0.1" in str(e.value) and "np." not in str(e.value)
