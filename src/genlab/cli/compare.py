"""`genlab compare EXP RUN_A RUN_B`: what differs in the two configs, their final metrics, their curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from genlab.cli import StoreOpt, app, open_store, out


def resolve(run_ids: list[str], prefix: str, experiment: str) -> str:
    """The one finished run id that starts with `prefix` (the 8 characters tables show are enough)."""
    hits = [r for r in run_ids if r.startswith(prefix)]
    if len(hits) != 1:
        what = "no finished run" if not hits else f"{len(hits)} runs ({', '.join(hits[:4])})"
        raise ValueError(f"{experiment}: {what} with an id starting {prefix!r}")
    return hits[0]


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted key, a's value, b's value) for every key whose values differ (absent: None), sorted."""
    same = lambda u, v: json.dumps(u, sort_keys=True, default=str) == json.dumps(v, sort_keys=True, default=str)  # noqa: E731
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if not same(a.get(k), b.get(k))]


def _side_by_side(title: str, rows: list[tuple[str, Any, Any]], a: str, b: str):
    from rich.table import Table
    from rich.text import Text

    from genlab.cli.output import cell

    t = Table(title=title, title_justify="left")
    for c in ("", a[:8], b[:8]):
        t.add_column(c, overflow="fold")
    for k, u, v in rows:
        t.add_row(Text(k), Text(cell(u)), Text(cell(v)))
    return t


@app.command()
def compare(experiment: str, run_a: str, run_b: str, store: Optional[Path] = StoreOpt,
            metrics: str = typer.Option("train_loss,test_loss;train_error,test_error",
                                        help="Panels of metrics per epoch: ';' between panels, ',' within."),
            out_file: Optional[Path] = typer.Option(None, "--out", help="Figure file (default "
                                                    "figures/<exp>_compare_<a>_<b>.png).")):
    """Two runs side by side: the config fields that differ, final metrics, and curves of both."""
    from genlab.figures import get_figure
    from genlab.store import flatten

    st = open_store(store)
    ids = st.run_ids(experiment)
    a, b = resolve(ids, run_a, experiment), resolve(ids, run_b, experiment)
    ca, cb = flatten(st.config(experiment, a)), flatten(st.config(experiment, b))
    diff = config_diff(ca, cb)
    out.print(_side_by_side(f"{experiment}: config fields that differ", diff, a, b) if diff
              else f"{experiment}: {a} and {b} have the same config")
    res = st.results(experiment, [a, b]).set_index("run_id")
    finals = [c for c in res.columns if c not in ca and c not in cb]  # status, final metrics, measures
    out.print(_side_by_side("results", [(c, res.at[a, c], res.at[b, c]) for c in finals], a, b))
    panels = [[m for m in p.split(",") if m] for p in metrics.split(";") if p]
    fig = get_figure("curves")(st.history(experiment, [a, b]), res.reset_index(), panels=panels, hue="run_id",
                               title=f"{experiment}: {a[:8]} vs {b[:8]}")
    path = out_file or Path("figures") / f"{experiment}_compare_{a[:8]}_{b[:8]}.png"
    from genlab.outfiles import write_with

    write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"), "--out")
    out.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
