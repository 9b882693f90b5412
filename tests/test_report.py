"""The HTML report: self-contained, one section per spec, figures inlined, findings beside the claims."""

from typer.testing import CliRunner

from genlab.cli import app
from conftest import TINY

FINDING = """
[[findings]]
name = "compare"
claim = "a bigger init is slower"
metric = "train_loss"
by = "init.std"
low = 0.01
high = 0.1
[[findings]]
name = "value"
claim = "a broken claim"
metric = "no_such_metric"
"""


def test_report_has_figures_findings_and_results(write_spec, tmp_path):
    path, store, out = write_spec(TINY + FINDING), tmp_path / "runs", tmp_path / "r.html"
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(path), "--store", str(store)]).exit_code == 0
    r = runner.invoke(app, ["report", str(path), "--store", str(store), "--out", str(out)])
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert page.count("data:image/png;base64,") == 1  # the spec's one figure, inlined
    assert "a bigger init is slower" in page and any(v in page for v in ("agrees", "differs", "inconclusive"))
    assert "cannot compute: metric &#x27;no_such_metric&#x27;" in page  # shown, not hidden
    assert "<h4>Final results</h4>" in page and page.count("<tr>") >= 2 + 2 + 1
    assert "src=\"http" not in page and "src='http" not in page  # self-contained
    verdicts, body = page.split("<h2>Contents</h2>")
    assert "Verdicts" in verdicts and verdicts.count("href='#tiny-finding-") == 2  # a row per claim, linked
    assert "id='tiny-finding-0'" in body and "what would make it fail:" in body  # the row it links to says what would fail
    assert "profile <b>small</b>" in body and "data <b>separable synthetic data</b>" in body
    assert "href='#top'" in body and "classList.toggle('big')" in body  # back to top; click to enlarge


def test_sections_are_grouped_by_seed_and_chapter_in_order(tmp_path):
    import pandas as pd

    from genlab.report import Section, order_key, render
    from genlab.spec.loader import parse

    def section(seed: str, name: str, chapter: str) -> Section:
        raw = {"name": name, "chapter": chapter, "data": {"name": "separable"}, "model": {"name": "linear"}}
        return Section(parse(raw, path=tmp_path / seed / f"{name}.toml"), pd.DataFrame(), pd.DataFrame())

    given = [section("004", "fig1", "§3.1 x"), section("000", "ch4_b", "ch. 4 — b"),
             section("000", "fig3_10", "ch. 3 — a"), section("000", "fig3_2", "ch. 3 — a"),
             section("000", "ch5", "ch. 5 — c")]
    assert [s.exp.name for s in sorted(given, key=order_key)] == ["fig3_2", "fig3_10", "ch4_b", "ch5", "fig1"]
    page = render(given)
    order = [page.index(t) for t in ("id='seed-000'", "ch. 3 — a", "ch. 4 — b", "id='seed-004'")]
    assert order == sorted(order)
    assert page.count("class='chapter'") == 4 and page.index("Verdicts") < page.index("id='seed-000'")


def test_report_without_runs_says_what_to_do(write_spec, tmp_path):
    r = CliRunner().invoke(app, ["report", str(write_spec()), "--store", str(tmp_path)])
    assert r.exit_code != 0 and "genlab run" in str(r.exception)


def test_summary_expands_a_swept_table_into_its_varying_columns():
    import pandas as pd

    from genlab.report import Section, summary_table
    from genlab.spec.loader import parse

    raw = {"name": "x", "data": {"name": "separable"}, "model": {"name": "linear"},
           "sweep": {"init": [{"name": "constant", "value": 0.0}, {"name": "normal", "std": 0.1}]}}
    exp = parse(raw)
    res = pd.DataFrame({"init.name": ["constant", "normal"], "init.value": [0.0, None], "init.std": [None, 0.1],
                        "init.scale": [1.0, 1.0], "train_loss": [2.3, 0.1]})
    table = summary_table(Section(exp, pd.DataFrame(), res))
    assert list(table.columns[:3]) == ["init.name", "init.std", "init.value"] and len(table) == 2
    assert table["train_loss"].tolist() == ["2.3", "0.1"]


def test_figure_captions_list_what_the_figure_leaves_out(tmp_path):
    import pandas as pd

    from genlab.report import Section, figure_html
    from genlab.spec.loader import parse

    raw = {"name": "c4", "data": {"name": "separable"}, "model": {"name": "linear"}, "init": {"name": "normal"},
           "figures": [{"name": "ch4_points", "file": "f44", "x": "init.std", "y": "test_error", "log_x": True,
                        "require": "train_error == 0", "title": "at zero training error"}]}
    res = pd.DataFrame({"run_id": ["a", "b", "c"], "init.std": [0.01, 0.1, 0.2], "data.corrupt_prob": 0.0,
                        "train_error": [0.0, 0.0, 0.5], "test_error": [0.1, 0.2, 0.3]})
    exp = parse(raw, path=tmp_path / "000" / "c4.toml")
    page = figure_html(Section(exp, pd.DataFrame(), res), exp.figures[0])
    assert "id='fig-c4-f44'" in page and "Left out 1 of 3 runs not meeting train_error == 0: init.std=0.2" in page
