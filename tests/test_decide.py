"""Deciding claims: the sequential design keeps wrong verdicts at its stated rate however often it looks (a
simulation that a naive ±2·SE re-check fails), decides real effects within the seed cap, and `genlab run
--decide` adds seeds to the runs undecided findings read, which the report then reads."""

import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from genlab.cli import app
from genlab.findings import evaluate
from genlab.findings.verdicts import ALPHA, DECIDED, Check, Evidence, judge, look_at, welch

START, CAP = 3, 24  # the spec's seeds, and --max-seeds: looks at 3, 6, 12 and 24 seeds (each round doubles)


def naive(d: float, se: float) -> str:
    """The rule a naive loop would re-check after each round: d ± 2·SE against 0."""
    lo, hi = d - 2 * se, d + 2 * se
    return "agrees" if lo > 0 else "differs" if hi < 0 else "inconclusive"


def sequential(d: float, se: float, df: float, look: int, margin: float | None) -> str:
    return judge("", Evidence(d, se, df, look), "above", 0.0, strict=True, margin=margin).verdict


def simulate(effect: float, sims: int, rule, margin: float | None = None, seed: int = 0) -> dict[str, int]:
    """`sims` sequences: two groups of START seeds each, metric ~ N(mean, 1) with mean(high) − mean(low) =
    effect; after each look the seeds per group double, until decided or CAP seeds. Returns verdict counts."""
    rng = np.random.default_rng(seed)
    out = {"agrees": 0, "differs": 0, "no effect": 0, "inconclusive": 0}
    looks = [n for n in (START * 2 ** k for k in range(8)) if n <= CAP]
    for _ in range(sims):
        lo, hi = rng.standard_normal(CAP), rng.standard_normal(CAP) + effect
        for n in looks:
            d, se, df = welch(pd.Series(lo[:n]), pd.Series(hi[:n]))
            v = rule(d, se) if rule is naive else rule(d, se, df, look_at(n, START), margin)
            if v != "inconclusive":
                break
        out[v] += 1
    return out


def check_rates(sims: int) -> None:
    on_line = simulate(0.0, sims, sequential)
    wrong = (on_line["agrees"] + on_line["differs"]) / sims
    assert wrong <= ALPHA, on_line  # the stated rate, over every look of every sequence
    naive_line = simulate(0.0, sims, naive)
    assert (naive_line["agrees"] + naive_line["differs"]) / sims > 2 * ALPHA, naive_line  # the naive loop fails
    off = simulate(3.0, sims, sequential, seed=1)
    assert off["agrees"] / sims >= 0.95 and off["differs"] == 0, off  # a real effect: decided within the cap
    null_margin = simulate(0.0, sims, sequential, margin=2.5, seed=2)  # "no effect": reachable, and right
    assert (null_margin["agrees"] + null_margin["differs"]) / sims <= ALPHA, null_margin
    assert null_margin["no effect"] / sims >= 0.5, null_margin


def test_sequential_verdicts_keep_their_rate_short():
    check_rates(300)


@pytest.mark.slow
def test_sequential_verdicts_keep_their_rate_long():
    check_rates(2000)


def test_findings_read_seeds_beyond_the_design_as_later_looks():
    rng = np.random.default_rng(3)
    rows = [{"run_id": f"{g}{s}", "seed": s, "g": g, "m": float(rng.normal(0.8 if g == "b" else 0.0, 1.0))}
            for s in range(6) for g in "ab"]
    df = pd.DataFrame(rows)
    entry = {"name": "compare", "metric": "m", "by": "g", "low": "a", "high": "b"}
    at_design = evaluate(entry, None, df, design_seeds=6)[1].checks[0]
    as_look_3 = evaluate(entry, None, df, design_seeds=1)[1].checks[0]  # 6 seeds from 1: look 3 (up to 8 = 1·2³)
    assert at_design.value == as_look_3.value
    d, se, dof = welch(df[df.g == "a"].m, df[df.g == "b"].m)
    from scipy import stats
    assert at_design.hi - at_design.lo == pytest.approx(2 * stats.t.ppf(1 - ALPHA / 4, dof) * se)
    assert as_look_3.hi - as_look_3.lo == pytest.approx(2 * stats.t.ppf(1 - ALPHA / 40, dof) * se)  # α_3 = α/20
    assert [look_at(n, 3) for n in (1, 3, 4, 6, 7, 12, 13, 24)] == [0, 0, 1, 1, 2, 2, 3, 3]


SPEC = """
name = "dec"
seeds = [0, 1]
[data]
name = "separable"
dim = 3
n_train = 64
n_test = 64
[model]
name = "linear"
[init]
name = "normal"
std = 0.1
bias = "same"
[optim]
lr = 0.1
[train]
epochs = 3
batch_size = 16
[sweep]
"init.std" = [0.01, 0.5, 3.0]
[[findings]]
name = "compare"
claim = "a larger init has a higher final test loss (a tiny effect: needs seeds)"
metric = "test_loss"
by = "init.std"
low = 0.01
high = 0.5
[[findings]]
name = "value"
claim = "every run ends with a non-negative loss (exact: the smallest over the runs)"
metric = "train_loss"
stat = "min"
at_least = 0.0
"""


def run_quietly(spec, store, *options: str):
    """`genlab run SPEC --store STORE -q [options]`, which must succeed; its CliRunner result."""
    r = CliRunner().invoke(app, ["run", str(spec), "--store", str(store), *options, "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


def test_run_decide_adds_seeds_only_where_findings_need_them(tmp_path, write_spec):
    spec = write_spec(SPEC)
    store = tmp_path / "runs"
    r = run_quietly(spec, store, "--decide", "--max-seeds", "4", "--budget", "10m")
    from genlab.spec import loader as experiment
    from genlab.store import Store

    st = Store(store)
    seeds = {}
    for rid in st.run_ids("dec"):
        c = st.config("dec", rid)
        seeds.setdefault(c["init"]["std"], set()).add(c["seed"])
    # the compare reads init.std 0.01 and 0.5: those got seeds 2 and 3 (a round doubles 2 to 4); init.std 3.0
    # is read only by the value finding, decided (or judged) on the spec's two seeds, so it stayed at them
    assert seeds[3.0] == {0, 1}
    assert seeds[0.01] == seeds[0.5] and len(seeds[0.5]) >= 2
    # extra-seed runs are the runs a spec listing that seed would have: same ids
    full = experiment.load(spec, None, sets={"seeds": sorted(seeds[0.5])})
    ids = {r.run_id for r in full.runs if r.config.init.std == 0.5}
    assert ids <= set(st.run_ids("dec"))
    assert "--decide:" in r.output and "round" in r.output
    from genlab.cli.decide import cost
    from genlab.decide import seen

    sn = seen(spec, None, {}, None, st)
    res = st.results("dec", list(sn.done))
    assert res["members"].min() >= 1 and res["members"].max() > 1  # linear nets train as ensembles: shared walls
    per_point = (res["wall_s"] / res["members"]).groupby(res["init.std"]).mean()
    assert cost(sn, st, sn.design.runs) == pytest.approx(2 * per_point.sum())  # 2 seeds × each point's mean
    rep = CliRunner().invoke(app, ["report", str(spec), "--store", str(store), "--out", str(tmp_path / "r.html")])
    assert rep.exit_code == 0, rep.output
    page = (tmp_path / "r.html").read_text()
    assert f"{len(seeds[0.5])} and {len(seeds[0.5])} runs" in page  # the report reads the added seeds
    bad = CliRunner().invoke(app, ["run", str(spec), "--store", str(store), "--decide", "--budget", "soon"])
    assert bad.exit_code != 0 and "--budget: 'soon' is not a duration" in str(bad.exception)
    assert "runs" not in bad.output  # refused before anything was planned or run


def test_one_run_check_is_never_decided():
    c = judge("", Evidence(5.0, math.nan), "above", 0.0)
    assert isinstance(c, Check) and c.verdict not in DECIDED


def test_runs_read_brings_each_runs_pair_partner():
    """A finding that reads one child per spawned pair (`where = spawn_seed == 1`) still gets both children of
    each new parent seed: a pair value needs both runs. Without [pairs], only the rows `where` keeps."""
    from genlab.decide import runs_read
    from genlab.spec.loader import parse

    spec = {"name": "sp", "seeds": [0, 1], "data": {"name": "separable", "n_train": 64, "n_test": 32},
            "model": {"name": "mlp", "widths": [8]}, "train": {"epochs": 3},
            "events": {"spawn_epoch": 1}, "sweep": {"events.spawn_seed": [1, 2], "optim.lr": [0.01, 0.1]},
            "pairs": {"measures": ["mode_connectivity"], "by": "spawn"}}
    entry = {"name": "value", "metric": "mode_connectivity.loss_barrier.test",
             "where": "`events.spawn_seed` == 1 and `optim.lr` == 0.1"}
    exp = parse(spec)
    got = runs_read(exp, [entry])
    assert {(r.config.seed, r.config.events.spawn_seed, r.config.optim.lr) for r in got} == {
        (s, c, 0.1) for s in (0, 1) for c in (1, 2)}  # both children, only the lr the finding reads
    alone = parse({k: v for k, v in spec.items() if k != "pairs"})
    assert {(r.config.seed, r.config.events.spawn_seed) for r in runs_read(alone, [entry])} == {(0, 1), (1, 1)}


def test_left_out_runs_are_counted_not_listed_one_by_one():
    from genlab.tables import describe_rows

    among = pd.DataFrame({"run_id": list("abcde"), "events.spawn_epoch": [0, 0, 0, 1, 2], "seed": [0, 1, 2, 0, 0]})
    assert describe_rows(among.iloc[:4], among) == "events.spawn_epoch=0 ×3; events.spawn_epoch=1"


PAIRED = '''
name = "decpair"
seeds = [0]
[data]
name = "separable"
n_train = 64
n_test = 32
[model]
name = "mlp"
widths = [8]
[train]
epochs = 3
batch_size = 16
[events]
spawn_epoch = 1
[sweep]
"events.spawn_seed" = [1, 2]
[pairs]
measures = ["mode_connectivity"]
by = "spawn"
measure_options = { mode_connectivity = { points = 3 } }
[[findings]]
name = "value"
claim = "the children's test-loss barrier is below 10 nats"
metric = "mode_connectivity.loss_barrier.test"
where = "`events.spawn_seed` == 1"
at_most = 10.0
'''


def test_decide_on_pair_values_trains_both_children_and_measures_their_pairs(tmp_path, write_spec):
    """A finding on pair values read one child per pair: one parent is one value, not judged; --decide adds
    parents — both children of each (the finding's `where` keeps one) — and measures their pairs before it looks
    again, so the added seeds count."""
    spec = write_spec(PAIRED)
    store = tmp_path / "runs"
    run_quietly(spec, store, "--decide", "--max-seeds", "4", "--budget", "10m")
    from genlab.store import Store
    from genlab.store.pairs import pair_results

    st = Store(store)
    children = {(st.config("decpair", rid)["seed"], st.config("decpair", rid)["events"]["spawn_seed"])
                for rid in st.run_ids("decpair")}
    parents = {s for s, _ in children}
    assert len(parents) >= 2 and children == {(s, c) for s in parents for c in (1, 2)}
    assert len(pair_results(store, "decpair")) == len(parents)  # every parent's pair measured


def test_rounds_fit_the_budget_cheapest_per_claim_first():
    """Rounds run one after another on the same workers: their estimated seconds add up. A round that would
    overrun what is left waits, and cheaper rounds per claim are taken first, so a costly round cannot crowd
    out two cheap ones."""
    from genlab.cli.decide import Round, fit

    a, b, c = Round("a", [1], 100.0, 1), Round("b", [2], 60.0, 2), Round("c", [3], 50.0, 1)
    taken, over = fit([a, b, c], 120.0)
    assert [r.name for r in taken] == ["b", "c"] and over == ["a"]  # 30 s/claim, 50, then 100 would overrun
    taken, over = fit([a, b, c], 1000.0)
    assert [r.name for r in taken] == ["b", "c", "a"] and over == []
    assert fit([a], 99.0) == ([], ["a"])  # a round longer than the budget left waits, even alone
    assert fit([], 10.0) == ([], [])
    unknown = Round("u", [4], 0.0, 1)  # no stored seed of its points: an estimate of 0 s
    assert fit([unknown], 5.0) == ([unknown], []) and fit([unknown], 0.0) == ([], ["u"])
    assert fit([unknown], -30.0) == ([], ["u"])  # past the deadline nothing starts


def test_runs_the_judged_seeds_lack_come_first_and_within_the_budget():
    """`schedule`: the runs that seeds added earlier still lack (a pair's other child, another sweep point of a
    finding) are taken before any next round, and they too must fit what is left — at stop 25 such runs were
    added unbudgeted and a 30 m --decide ran 2.4 min past its deadline."""
    from genlab.cli.decide import Round, schedule

    gap, cheap, dear = Round("g", [1], 50.0, 1), Round("n1", [2], 30.0, 3), Round("n2", [3], 60.0, 1)
    taken, over = schedule([gap], [cheap, dear], 100.0)
    assert [r.name for r in taken] == ["g", "n1"] and over == ["n2"]  # 50 + 30 fit; 60 more would not
    taken, over = schedule([gap], [cheap], 40.0)
    assert taken == [cheap] and over == ["g"]  # the gap's 50 s do not fit; the 30 s round still does
    assert schedule([gap], [cheap], -1.0) == ([], ["g", "n1"])


def test_cost_reads_stores_written_before_results_had_members(tmp_path, write_spec, monkeypatch):
    """A store from before `members` was recorded (its results have no such column): each run counts whole,
    its wall time, as before."""
    from genlab.cli.decide import cost
    from genlab.decide import seen
    from genlab.store import Store

    spec, store = write_spec(SPEC), tmp_path / "runs"
    run_quietly(spec, store)
    st = Store(store)
    sn = seen(spec, None, {}, None, st)
    full = st.results("dec", list(sn.done))
    assert full["members"].max() > 1  # stacked today: an old store's wall times are not divided
    monkeypatch.setattr(st, "results", lambda name, ids: full.drop(columns="members"))
    assert cost(sn, st, sn.design.runs) == pytest.approx(full["wall_s"].sum())  # one seed's runs: their walls
