"""The store at a glance and kept tidy: `genlab status` with no target (every experiment, every state, epoch k
of n, ETA, last loss), `genlab tag` (tags and notes beside a run, outside its manifest) and `genlab rm` (dry
run by default, never a run being trained)."""

import json
import time

import pytest
from typer.testing import CliRunner

from genlab.spec import loader as experiment
from genlab.store import claims
from genlab.cli import app
from genlab.executors import Job, experiment_meta
from genlab.store import Store

from conftest import TINY

runner = CliRunner()
WIDE = TINY.replace("[0.01, 0.1]", "[0.01, 0.1, 0.2, 0.3, 0.4, 0.5]")


def cli(*args, store):
    return runner.invoke(app, [*args, "--store", str(store)])


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


@pytest.fixture
def lab(write_spec, tmp_path):
    """A store with one run in each state: done, running (epoch 2 of 4), stale, damaged, failed, pending."""
    from genlab.executors.local import run_local

    path = write_spec(WIDE)
    exp = experiment.load(path, profile=None)
    st = Store(tmp_path / "store")
    ids = dict(zip(("done", "running", "stale", "damaged", "failed", "pending"), (r.run_id for r in exp.runs)))
    run_local([Job(exp.runs[i], experiment_meta(exp)) for i in (0, 3)], st)
    (st.run_dir("tiny", ids["damaged"]) / "final.pt").write_bytes(b"")
    live = st.start(exp.runs[1].config.canonical_json(), "tiny", ids["running"], {})
    for e in range(3):
        live.log({"epoch": e, "train_loss": 0.5 - 0.1 * e, "test_loss": 0.7, "epoch_s": 2.0})
    dead = st.start(exp.runs[2].config.canonical_json(), "tiny", ids["stale"], {})
    dead.log({"epoch": 0})
    dead.lease._stop.set()
    claims.lease_path(st.root, "tiny", ids["stale"]).write_text(json.dumps(
        {"host": "gone", "pid": 7, "token": "t", "start": 0, "heartbeat": time.time() - 999}))
    bad = st.start(exp.runs[4].config.canonical_json(), "tiny", ids["failed"], {})
    bad.log({"epoch": 0})
    bad.fail(RuntimeError("boom"))
    half = st.start(exp.runs[5].config.canonical_json(), "tiny", ids["pending"], {})
    half.log({"epoch": 0})
    half.log({"epoch": 1})
    half.close()  # killed after epoch 1: no lease, no DONE
    yield st, ids, path
    live.close()
    dead.close()


def test_status_without_target_summarizes_every_experiment(lab, monkeypatch):
    st, ids, _ = lab
    narrow = flat(cli("status", store=st.root).stdout)  # 80 columns: ids and states whole
    assert f"{ids['running']} running 2/4" in narrow and f"{ids['failed']} failed 0/4" in narrow
    monkeypatch.setenv("COLUMNS", "200")
    r = cli("status", store=st.root)
    assert r.exit_code == 0, r.output
    text = flat(r.stdout)
    assert "tiny 6 1 1 1 1 1 1" in text  # runs, then done running stale failed damaged pending
    # running: epoch 2 of 4, ETA = 2 s per epoch × 2 epochs left, last losses
    assert f"{ids['running']} running 2/4 4s 0.3 0.7 last row" in text
    assert f"{ids['stale']} stale 0/4" in text and "gone pid 7" in text
    assert f"{ids['failed']} failed 0/4" in text and "RuntimeError: boom" in text
    assert f"{ids['damaged']} damaged" in text and "final.pt: 0 bytes" in text
    assert f"{ids['pending']} pending 1/4" in text and "interrupted after epoch 1" in text
    assert ids["done"] not in text
    assert ids["done"] in flat(cli("status", "--all", store=st.root).stdout)
    empty = cli("status", store=st.root / "nothing")
    assert empty.exit_code == 0 and "no experiments" in empty.stdout


def test_status_watch_needs_no_target(lab):
    st, _, _ = lab
    r = cli("status", "tiny", "--watch", store=st.root)
    assert r.exit_code == 2 and "--watch" in r.output


def test_tags_and_notes_live_beside_the_run_and_survive_verify(lab):
    st, ids, _ = lab
    done = ids["done"]
    r = cli("tag", "tiny", done[:6], "--add", "best", "--add", "lr-ok", "--note", "the one to show", store=st.root)
    assert r.exit_code == 0, r.output
    assert f"tiny/{done}: tags best lr-ok; note: the one to show" in flat(r.stdout)
    assert not any("note" in p.name or "tag" in p.name for p in st.run_dir("tiny", done).iterdir())  # not in the run
    v = cli("verify", "tiny", store=st.root)
    assert "1 intact, 1 damaged" in flat(v.stdout)  # the tagged run is intact; the damaged one is the fixture's
    assert st.is_done("tiny", done)
    res = cli("results", "tiny", "--format", "json", store=st.root)
    rows = {x["run_id"]: x for x in json.loads(res.stdout)}
    assert rows[done]["tags"] == "best lr-ok" and rows[done]["note"] == "the one to show"
    removed = cli("tag", "tiny", done, "--remove", "lr-ok", store=st.root)
    assert "tags best; note" in flat(removed.stdout)
    assert "tagged" in flat(cli("ls", store=st.root).stdout) and " 1 " in flat(cli("ls", store=st.root).stdout)
    bad = cli("tag", "tiny", done, "--add", "two words", store=st.root)
    assert bad.exit_code != 0 and "two words" in str(bad.exception)
    amb = cli("tag", "tiny", "zzzz", "--add", "x", store=st.root)
    assert amb.exit_code != 0 and "no run with an id starting 'zzzz'" in str(amb.exception)


def _folders(st):
    return sorted(p.name for p in (st.root / "tiny").iterdir() if not p.name.startswith("."))


def test_rm_is_a_dry_run_without_yes_and_never_touches_a_run_being_trained(lab):
    st, ids, path = lab
    before = _folders(st)
    dry = cli("rm", "tiny", store=st.root)
    assert dry.exit_code == 0, dry.output
    text = flat(dry.stdout)
    assert "5 runs would be deleted" in text and "nothing deleted" in text  # 6 runs, one being trained
    assert f"being trained and are left alone: {ids['running']}" in text
    assert _folders(st) == before  # a dry run deletes nothing

    failed = cli("rm", "tiny", "--failed", "--yes", store=st.root)
    assert failed.exit_code == 0 and "deleted 1 runs" in failed.stdout
    assert _folders(st) == sorted(set(before) - {ids["failed"]})  # only the failed run went

    cli("tag", "tiny", ids["pending"], "--add", "gone", store=st.root)
    where = cli("rm", "tiny", "--where", "init.std == 0.5", "--yes", store=st.root)  # the pending run's point
    assert "deleted 1 runs" in where.stdout and ids["pending"] not in _folders(st)
    assert not (st.root / "tiny" / ".notes" / f"{ids['pending']}.json").exists()  # its tags went with it

    every = cli("rm", "tiny", "--yes", store=st.root)
    assert every.exit_code == 0
    assert _folders(st) == [ids["running"]]  # the live worker's run is still there, its claim untouched
    assert st.state("tiny", ids["running"]).kind == "running"


def test_rm_orphans_keeps_the_specs_runs(lab, write_spec):
    st, ids, _ = lab
    narrower = write_spec(WIDE.replace("[0.01, 0.1, 0.2, 0.3, 0.4, 0.5]", "[0.01, 0.1, 0.2]"), name="narrow.toml")
    r = cli("rm", str(narrower), "--orphans", "--profile", "none", "--yes", store=st.root)
    assert r.exit_code == 0, r.output
    assert set(_folders(st)) == {ids["done"], ids["running"], ids["stale"]}  # the narrower spec's three runs
    need = cli("rm", "tiny", "--orphans", store=st.root)
    assert need.exit_code != 0 and "needs the spec file" in str(need.exception)


def test_compare_across_a_variant_and_did_you_mean(write_spec, tmp_path):
    path, store = write_spec(TINY), tmp_path / "s"
    assert cli("run", str(path), "--profile", "none", "-q", store=store).exit_code == 0
    v = cli("run", str(path), "--profile", "none", "-q", "--name", "tinyv", "--set", "optim.lr=0.05", store=store)
    assert v.exit_code == 0, v.output
    st = Store(store)
    a, b = st.run_ids("tiny")[0], st.run_ids("tinyv")[0]
    for ref in (f"tinyv/{b[:6]}", b[:6]):  # named, or found in the store's other experiment
        r = cli("compare", "tiny", a[:6], ref, "--out", str(tmp_path / "c.png"), store=store)
        assert r.exit_code == 0, r.output
        text = flat(r.stdout)
        assert "optim.lr 0.1 0.05" in text and "experiment tiny tinyv" in text
    col = cli("results", "tiny", "--columns", "run_id,tset_error", store=store)
    assert col.exit_code != 0 and "did you mean 'test_error'" in str(col.exception)
    reg = runner.invoke(app, ["registry", "measure"])
    assert reg.exit_code != 0 and "did you mean 'measures'" in str(reg.exception)
    opt = runner.invoke(app, ["results", "tiny", "--colums", "x"])
    assert opt.exit_code != 0 and "--columns" in opt.output  # click's own suggestion for options


def test_registry_reads_at_80_columns_and_help_is_clean():
    from rich.cells import cell_len

    r = runner.invoke(app, ["registry", "measures"], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert max(map(cell_len, lines)) <= 80
    from genlab.measures import _MEASURES

    names = _MEASURES.names()
    assert len(lines) < 6 * len(names)  # a few lines per entry, not one per 2 characters
    text = " ".join(r.stdout.split())
    for n in names:  # every description whole: its first paragraph's words in order
        doc = " ".join((_MEASURES.get(n).__doc__ or "").strip().split("\n\n")[0].split())
        assert doc in text, n
    wide = runner.invoke(app, ["registry", "measures"], env={"COLUMNS": "200"})
    assert wide.exit_code == 0 and len(wide.stdout.splitlines()) < len(lines)  # a table when there is room

    v = runner.invoke(app, ["--version"])
    import genlab

    assert v.exit_code == 0 and v.stdout.strip() == f"genlab {genlab.__version__}"
    h = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "120"})
    assert "<bool>" not in h.stdout and "[default: default]" not in h.stdout
    assert "--dry-run" in h.stdout and "[default: 1]" in h.stdout  # the real defaults are still shown


def test_progress_labels_put_what_differs_first():
    from types import SimpleNamespace as NS

    from genlab.cli.progress import run_labels

    def job(rid, exp, point):
        return NS(run=NS(run_id=rid, point=point, config=NS(experiment=exp)))

    jobs = [job("a", "fig3_5_long_experiment_name", {"model.options.width": 512, "events.perturb_std": 0.0, "seed": 0}),
            job("b", "fig3_5_long_experiment_name", {"model.options.width": 512, "events.perturb_std": 0.0, "seed": 1}),
            job("c", "other", {"optim.lr": 0.1, "seed": 0})]
    labels = run_labels(jobs)
    assert labels == {"a": "seed=0 fig3_5_long_experiment_name", "b": "seed=1 fig3_5_long_experiment_name",
                      "c": "lr=0.1 seed=0 other"}  # alone in its experiment: its whole point
    assert labels["a"][:40] != labels["b"][:40]  # the 40 characters a bar shows tell them apart


def test_figures_say_what_their_bands_are():
    import pandas as pd

    from genlab.figures import get_figure

    rows = [{"run_id": f"{std}-{s}", "init.std": std, "seed": s, "epoch": e, "train_loss": 1.0 / (e + 1) + 0.01 * s,
             "test_loss": 1.2 / (e + 1) + 0.02 * s} for std in (0.1, 0.2) for s in range(3) for e in range(4)]
    hist = pd.DataFrame(rows)
    res = hist[hist["epoch"] == 3]
    fig = get_figure("curves")(hist, res, hue="init.std")
    (line,) = fig.genlab_notes
    assert "mean over 3 runs (seeds)" in line and "± 1 sample standard deviation (ddof=1)" in line
    one = get_figure("curves")(hist[hist["seed"] == 0], res, hue="init.std")
    assert not getattr(one, "genlab_notes", [])  # one run per curve: no band, nothing to say
    bars = get_figure("versus")(hist, res, x="init.std", metrics=["test_loss"])
    assert "error bars: ± 1 sample standard deviation" in bars.genlab_notes[0]


def test_report_lists_tagged_runs_and_leaves_out_unset_fields(write_spec, tmp_path):
    path, store = write_spec(TINY), tmp_path / "s"
    assert cli("run", str(path), "--profile", "none", "-q", store=store).exit_code == 0
    rid = Store(store).run_ids("tiny")[0]
    cli("tag", "tiny", rid, "--add", "best", "--note", "<b>not markup</b>", store=store)
    out = tmp_path / "r.html"
    r = cli("report", str(path), "--profile", "none", "--out", str(out), store=store)
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert "Tagged runs" in html and f"<code>{rid[:8]}</code> best — &lt;b&gt;not markup&lt;/b&gt;" in html
    assert "training points <b>64</b>" in html and "—</b>" not in html


def test_report_header_leaves_out_a_field_no_run_sets():
    from types import SimpleNamespace as NS

    import pandas as pd

    from genlab.report import Section, provenance

    res = pd.DataFrame({"run_id": ["a"], "data.name": ["digits"], "data.n_train": [None], "model.name": ["mlp"]})
    html = provenance(Section(NS(profile="small", path="x.toml", name="x"), pd.DataFrame(), res))
    assert "data <b>digits" in html and "training points" not in html and "model <b>MLP</b>" in html


def test_status_watch_redraws_until_ctrl_c(lab, monkeypatch):
    import genlab.cli.overview as ov

    st, ids, _ = lab
    drawn, sleeps = [], []
    real = ov.render
    monkeypatch.setattr(ov, "render", lambda *a, **k: drawn.append(1) or real(*a, **k))

    def sleep(s):
        sleeps.append(s)
        if len(sleeps) == 3:
            raise KeyboardInterrupt  # the user's Ctrl-C ends the watch quietly

    monkeypatch.setattr(ov.time, "sleep", sleep)
    r = cli("status", "--watch", "--every", "0.5", store=st.root)
    assert r.exit_code == 0, r.output
    assert sleeps == [0.5, 0.5, 0.5] and len(drawn) == 3  # the first draw, then one per interval
    assert ids["running"] in r.stdout
