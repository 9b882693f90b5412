"""Findings: exact values on hand-made tables, agreement rules, and a walk over the registry."""

import numpy as np
import pandas as pd
import pytest

from genlab.findings import evaluate, linear_fit, list_findings

from test_figures import synthetic_history


def runs_table() -> pd.DataFrame:
    x = np.arange(1.0, 9.0)
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(8)], "x": x, "y": 2.0 * x + 1.0,
                         "noisy": 1.0 * x + np.array([0.1, -0.1] * 4), "g": ["a", "b"] * 4,
                         "m": [1.0, 3.0, 1.2, 3.2, 0.8, 2.8, 1.0, 3.0]})


OPTIONS = {
    "slope": {"x": "x", "y": "y", "target": 2.0},
    "correlation": {"x": "x", "y": "y"},
    "compare": {"metric": "m", "by": "g", "low": "a", "high": "b"},
    "value": {"metric": "m", "at_least": 0.0},
    "recovery": {"metric": "train_loss"},
    "dominates": {"metric": "train_loss", "by": "seed", "low": 0, "high": 1, "over": "init.std", "table": "history"},
}


@pytest.mark.parametrize("name", list_findings())
def test_every_finding_evaluates(name):
    assert name in OPTIONS, f"add options for new finding {name!r} to this test"
    claim, f = evaluate({"name": name, "claim": "c", **OPTIONS[name]}, synthetic_history(), runs_table())
    assert claim == "c" and np.isfinite(f.value) and (f.error >= 0 or np.isnan(f.error)) and f.text


def test_slope_is_exact_on_a_line_and_judged_against_its_target():
    _, f = evaluate({"name": "slope", "x": "x", "y": "y", "target": 2.0}, None, runs_table())
    assert f.value == pytest.approx(2.0) and f.error == pytest.approx(0.0, abs=1e-12) and f.agrees
    _, g = evaluate({"name": "slope", "x": "x", "y": "y", "target": 1.0, "tolerance": 0.5}, None, runs_table())
    assert g.agrees is False
    a, se, b, _ = linear_fit(np.arange(1.0, 9.0), runs_table()["noisy"].to_numpy())
    x = np.arange(1.0, 9.0)  # the textbook standard error of the slope
    resid = runs_table()["noisy"].to_numpy() - (a * x + b)
    assert se == pytest.approx(np.sqrt(resid @ resid / 6 / ((x - x.mean()) ** 2).sum()))


def test_compare_value_correlation():
    _, c = evaluate({"name": "compare", "metric": "m", "by": "g", "low": "a", "high": "b"}, None, runs_table())
    assert c.value == pytest.approx(2.0) and c.agrees
    sd = np.std([1.0, 1.2, 0.8, 1.0], ddof=1)  # the same spread in both groups
    assert c.error == pytest.approx(np.sqrt(2 * sd**2 / 4))
    _, v = evaluate({"name": "value", "metric": "m", "where": "g == 'a'", "target": 1.0}, None, runs_table())
    assert v.value == pytest.approx(1.0) and v.agrees
    _, k = evaluate({"name": "correlation", "x": "x", "y": "y", "sign": -1}, None, runs_table())
    assert k.value == pytest.approx(1.0) and k.agrees is False


def test_recovery_ratio_from_history():
    _, r = evaluate({"name": "recovery", "metric": "train_loss"}, synthetic_history(), None)
    # per run: final loss (at epoch 3) over the loss just before the perturbation at epoch 2
    expect = np.mean([(1 / 4 + s) / (1 / 3 + s) for s in (0, 1) for _ in (0, 1)])
    assert r.value == pytest.approx(expect) and r.agrees


def test_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="'nope' is not a column"):
        evaluate({"name": "value", "metric": "nope"}, None, runs_table())
    with pytest.raises(ValueError, match="no finished run with g = 'z'"):
        evaluate({"name": "compare", "metric": "m", "by": "g", "low": "a", "high": "z"}, None, runs_table())
    with pytest.raises(ValueError, match="option colour"):
        evaluate({"name": "value", "metric": "m", "colour": 1}, None, runs_table())


def test_one_run_per_group_has_no_error_estimate():
    one = runs_table().iloc[:2]  # g = a and g = b, one run each
    _, c = evaluate({"name": "compare", "metric": "m", "by": "g", "low": "a", "high": "b"}, None, one)
    assert c.value == pytest.approx(2.0) and np.isnan(c.error) and c.agrees and "no error estimate" in c.text
    _, v = evaluate({"name": "value", "metric": "m", "where": "run_id == 'r0'"}, None, runs_table())
    assert np.isnan(v.error) and "±" not in v.text
