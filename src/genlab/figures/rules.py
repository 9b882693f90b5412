"""The learning-rules study (experiments/000/learning_rules.toml): backprop, feedback alignment and sign
symmetry side by side — what they reach, how far their updates are from the gradient, and whether 000 ch. 4's
normalized-loss line of slope 1 survives when training is not backprop.
"""

from __future__ import annotations

import numpy as np
from genlab.lazy import pd
from genlab.lazy import Figure

from genlab.figures import register_figure
from genlab.figures.curves import with_accuracy
from genlab.expr import Where
from genlab.figures.seed000 import LABELS, RL_WHERE, free_fit_label, rl_mask, runs_drawn, slope_one_fit
from genlab.figures.style import note
from genlab.findings import linear_fit
from genlab.tables import describe_rows, numeric, select

ORDER = ("backprop", "feedback_alignment", "sign_symmetry")  # known rules first, in this order; others after


def rules_in(df: pd.DataFrame, column: str) -> list[str]:
    """The rules present in `df[column]`, known ones first (a missing value is backprop: runs from before)."""
    present = set(df[column].fillna("backprop")) if column in df.columns else {"backprop"}
    return [r for r in ORDER if r in present] + sorted(present - set(ORDER))


def _rule_of(df: pd.DataFrame, column: str) -> pd.Series:
    return df[column].fillna("backprop") if column in df.columns else pd.Series("backprop", index=df.index)


@register_figure("learning_rules")
def learning_rules(history: pd.DataFrame | None, results: pd.DataFrame, *, rule: str = "train.rule",
                   angle: str = "grad_alignment_deg.first", x: str = "normalized_loss.train",
                   y: str = "normalized_loss.test", rl: Where | None = RL_WHERE, title: str = "",
                   fit: str = "free", require: Where | None = None, where: Where | None = None) -> Figure:
    """Three panels, one colour per learning rule (`rule`, a config column):

    (a) test accuracy per rule, one dot per correctly labelled run, the mean ± standard error as a bar;
    (b) `angle` (degrees between the rule's update and the true gradient, `grad_alignment_deg.*`) against the
        epoch, mean over the correctly labelled runs of each rule (history rows with the measure); from the
        results (one dot per run) when the history has none;
    (c) `y` against `x` (normalized test vs training loss, 000 ch. 4) with each rule's fit over its runs, RL
        runs included as stars (000 Fig. 4-6): `fit = "free"`, the least-squares line the `slope` finding
        judges (slope and intercept ± standard errors in the legend), or "slope_one", y = x + b.
        `require` (e.g. "train_error == 0", the claim's precondition) leaves runs out of (c) and lists them.

    Runs with no value of `angle` (NaN: the measure was undefined) are listed under the axes, not dropped
    without a word.
    """
    if fit not in ("free", "slope_one"):
        raise ValueError(f"learning_rules: fit must be 'free' or 'slope_one', got {fit!r}")
    df = with_accuracy(select(results, where)).reset_index(drop=True)
    if df.empty:
        raise ValueError("no finished runs to draw: run the spec first (`genlab run SPEC`)")
    rules, rule_col, is_rl = rules_in(df, rule), _rule_of(df, rule), rl_mask(df, rl)
    colours = {r: f"C{i}" for i, r in enumerate(rules)}
    fig = Figure(figsize=(16, 4.4))
    acc_ax, ang_ax, loss_ax = fig.subplots(1, 3)

    _accuracy_panel(acc_ax, df, rules, rule_col, is_rl, colours)
    notes = _angle_panel(ang_ax, df, history, rules, rule_col, is_rl, colours, angle=angle, rule=rule, rl=rl,
                         where=where)
    notes.append(_loss_panel(loss_ax, df, rules, rule_col, is_rl, colours, x=x, y=y, fit=fit, require=require))
    for ax in (ang_ax, loss_ax):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for ax in (acc_ax, ang_ax, loss_ax):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    note(fig, notes)
    return fig


def _accuracy_panel(acc_ax, df: pd.DataFrame, rules: list, rule_col: pd.Series, is_rl: np.ndarray,
                    colours: dict) -> None:
    """(a) test accuracy per rule: a dot per correctly labelled run, the mean ± standard error as a bar."""
    acc = numeric(df, "test_accuracy").to_numpy(float)
    for i, r in enumerate(rules):  # (a)
        v = acc[(rule_col == r).to_numpy() & ~is_rl & np.isfinite(acc)]
        if len(v):
            se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
            acc_ax.bar(i, v.mean(), yerr=se, color=colours[r], alpha=0.35, capsize=4)
            acc_ax.scatter(np.full(len(v), i) + np.linspace(-0.15, 0.15, len(v)), v, s=14, color=colours[r])
    acc_ax.set_xticks(range(len(rules)), [r.replace("_", " ") for r in rules], fontsize=8)
    acc_ax.set_xlabel("learning rule")
    acc_ax.set_ylabel("test accuracy (fraction, correct labels)")
    lo = np.nanmin(acc[~is_rl]) if (~is_rl & np.isfinite(acc)).any() else 0.0
    acc_ax.set_ylim(max(0.0, lo - 0.05), 1.0)



def _angle_panel(ang_ax, df: pd.DataFrame, history, rules: list, rule_col: pd.Series, is_rl: np.ndarray,
                 colours: dict, *, angle: str, rule: str, rl, where) -> list[str]:
    """(b) the update–gradient angle per epoch (mean over each rule's correctly labelled runs), or per run at
    the end; returns notes naming the runs without a value."""
    notes = []
    h = select(history, where) if history is not None and not history.empty else pd.DataFrame()
    if angle in df.columns:  # runs whose final angle is missing: say which
        gone = df[numeric(df, angle).isna().to_numpy() & ~is_rl]
        if len(gone):
            notes.append(f"No {angle} (NaN) for {len(gone)} of {int((~is_rl).sum())} correctly labelled runs, "
                         f"not in (b): {describe_rows(gone, df)}.")
    if angle in h.columns:  # (b) per epoch
        h = h[~rl_mask(h, rl)].assign(_rule=_rule_of(h, rule))
        h = h.assign(_a=numeric(h, angle)).dropna(subset=["_a"])
        for r in rules:
            m = h[h["_rule"] == r].groupby("epoch")["_a"].mean()
            if len(m):
                ang_ax.plot(m.index, m.to_numpy(), "o-", ms=3, color=colours[r], label=r.replace("_", " "))
        ang_ax.set_xlabel("epoch")
    elif angle in df.columns:  # (b) at the end of training
        a = numeric(df, angle).to_numpy(float)
        for i, r in enumerate(rules):
            sel = (rule_col == r).to_numpy() & ~is_rl
            ang_ax.scatter(np.full(sel.sum(), i), a[sel], color=colours[r], label=r.replace("_", " "))
        ang_ax.set_xticks(range(len(rules)), [r.replace("_", " ") for r in rules], fontsize=8)
        ang_ax.set_xlabel("learning rule (end of training)")
    ang_ax.axhline(90, color="0.5", lw=0.8, ls=":")  # orthogonal: no better than a random direction
    ang_ax.set_ylabel("angle between update and gradient (degrees)")
    ang_ax.set_ylim(-3, 100)
    return notes


def _loss_panel(loss_ax, df: pd.DataFrame, rules: list, rule_col: pd.Series, is_rl: np.ndarray, colours: dict, *,
                x: str, y: str, fit: str, require) -> str:
    """(c) y against x per rule with each rule's fit (RL runs as stars), over the runs meeting `require`;
    returns the note listing the runs it left out."""
    kept, left_out = runs_drawn(df, require)  # (c) draws only the runs meeting the claim's precondition
    keep = df.index.isin(kept.index) if require else np.ones(len(df), bool)
    xs, ys = numeric(df, x).to_numpy(float), numeric(df, y).to_numpy(float)
    for r in rules:  # (c)
        sel = (rule_col == r).to_numpy() & keep
        ok = sel & np.isfinite(xs) & np.isfinite(ys)
        loss_ax.scatter(xs[ok & ~is_rl], ys[ok & ~is_rl], s=22, color=colours[r], edgecolors="k", linewidths=0.3)
        loss_ax.scatter(xs[ok & is_rl], ys[ok & is_rl], marker="*", s=140, color=colours[r], edgecolors="k",
                        linewidths=0.4)
        grid = np.linspace(xs[ok].min(), xs[ok].max(), 20) if ok.any() else None
        if fit == "free" and ok.sum() >= 3:
            a, se_a, b, se_b = linear_fit(xs[ok], ys[ok])
            loss_ax.plot(grid, a * grid + b, "-", color=colours[r], lw=1.1,
                         label=f"{r.replace('_', ' ')}: " + free_fit_label(a, se_a, b, se_b, int(ok.sum())))
        elif fit == "slope_one" and ok.sum() >= 2:
            b, se = slope_one_fit(xs[ok], ys[ok])
            loss_ax.plot(grid, grid + b, "-", color=colours[r], lw=1.1,
                         label=f"{r.replace('_', ' ')}: y = x + {b:.3g} ± {se:.2g}")
    loss_ax.set_xlabel(LABELS.get(x, x))
    loss_ax.set_ylabel(LABELS.get(y, y))
    return left_out
