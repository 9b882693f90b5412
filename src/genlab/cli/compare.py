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


def locate(st, experiment: str, ref: str) -> tuple[str, str]:
    """(experiment, run id) of `ref`: `EXP/PREFIX` names the experiment (a --name variant's, say); a bare prefix
    is looked up in `experiment`, then, if no run there has it, in every other experiment of the store."""
    if "/" in ref:
        other, prefix = ref.split("/", 1)
        return other, resolve(st.run_ids(other), prefix, other)
    ids = st.run_ids(experiment)
    if any(r.startswith(ref) for r in ids):
        return experiment, resolve(ids, ref, experiment)
    hits = [(e, r) for e in st.experiments() if e != experiment for r in st.run_ids(e) if r.startswith(ref)]
    if len(hits) == 1:
        return hits[0]
    return experiment, resolve(ids, ref, experiment)  # the error names the experiment


@app.command()
def compare(experiment: str, run_a: str = typer.Argument(..., help="A run id prefix, or EXP/PREFIX for a run of "
                                                         "another experiment (a --name variant)."),
            run_b: str = typer.Argument(..., help="The same, for the second run."),
            store: Optional[Path] = StoreOpt,
            metrics: str = typer.Option("train_loss,test_loss;train_error,test_error",
                                        help="Panels of metrics per epoch: ';' between panels, ',' within."),
            out_file: Optional[Path] = typer.Option(None, "--out", help="Figure file (default "
                                                    "figures/<exp>_compare_<a>_<b>.png).")):
    """Two runs side by side: the config fields that differ, final metrics, and curves of both."""
    from genlab.figures import get_figure
    from genlab.tables import flatten

    import pandas as pd

    from genlab.notes import annotate

    st = open_store(store)
    (ea, a), (eb, b) = locate(st, experiment, run_a), locate(st, experiment, run_b)
    if (ea, a) == (eb, b):
        raise ValueError(f"{ea}/{a} is one run; name two")
    ca, cb = flatten(st.config(ea, a)), flatten(st.config(eb, b))
    diff = config_diff(ca, cb)  # across variants, `experiment` is among what differs
    out.print(_side_by_side(f"{experiment}: config fields that differ", diff, a, b) if diff
              else f"{experiment}: {a} and {b} have the same config")
    res = pd.concat([annotate(st.results(ea, [a]), st.root, ea), annotate(st.results(eb, [b]), st.root, eb)],
                    ignore_index=True).set_index("run_id")
    finals = [c for c in res.columns if c not in ca and c not in cb]  # status, final metrics, measures, tags
    out.print(_side_by_side("results", [(c, res.at[a, c], res.at[b, c]) for c in finals], a, b))
    panels = [[m for m in p.split(",") if m] for p in metrics.split(";") if p]
    hist = pd.concat([st.history(ea, [a]), st.history(eb, [b])], ignore_index=True)
    fig = get_figure("curves")(hist, res.reset_index(), panels=panels, hue="run_id",
                               title=f"{experiment}: {a[:8]} vs {b[:8]}")
    path = out_file or Path("figures") / f"{experiment}_compare_{a[:8]}_{b[:8]}.png"
    from genlab.outfiles import write_with

    write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"), "--out")
    out.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
