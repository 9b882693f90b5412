"""Conditional mutual information between "μ ranks a pair of runs" and "the gap ranks them", given the
hyperparameter values of both runs — in the two published forms. Every number is in [0, 1]: the mutual
information divided by the entropy of the gap's variable, in bits.

(a) `cmi_pgdl` — the NeurIPS 2020 PGDL competition's score, as its scoring program computes it:
    pairs: all ordered pairs (i, j) of runs, i = j included;  V_gap = [gap_i > gap_j],  V_μ = [μ_i > μ_j]
    sets:  the ordered pairs (a, b) of two distinct axes;  a cell: the values (a_i, a_j, b_i, b_j)
    per cell: I(V_gap; V_μ) and H(V_gap) in bits, H with log2(p + 1e-12) as the program has it
    set score = mean_cells I / mean_cells H;  task score = min over sets  (reported ×100, `cmi_pgdl_x100`)
    The program assumes a complete grid; here the means run over the cells that hold pairs (the same on one).
    tests/test_analysis.py re-writes the program's loops (models × models per axis pair) and gets these
    numbers to 1e-12 on a complete 3-axis grid, with ties and without.
(b) `cmi_jiang` — the table of Jiang et al. 2020 §3 (eqs. 3-4), for conditioning sets S of 0, 1 and 2 axes:
    pairs: ordered pairs of distinct runs;  V = sgn(difference) (ties are a third value)
    Î(V_μ; V_gap | U_S) / Ĥ(V_gap | U_S), each a p(cell)-weighted sum over cells U_S (both runs' values on S)
    column k = min over the sets S of size k (`cmi_k0`, `cmi_k1`, `cmi_k2`); `cmi_k1[axis]` per axis.

References: Jiang, Foret, Yak, Roy, Mobahi, Dziugaite, Bengio, Gunasekar, Guyon & Neyshabur, "NeurIPS 2020
Competition: Predicting Generalization in Deep Learning", 2020 (https://arxiv.org/abs/2012.07976), §5 and its
public scoring program; Jiang et al., "Fantastic generalization measures and where to find them", ICLR 2020.
"""

from __future__ import annotations

from itertools import combinations, permutations

import numpy as np

from genlab.analysis import register_statistic
from genlab.analysis.sweep import Sample

PGDL_LOG_EPS = 1e-12  # the scoring program's entropy adds this inside log2 (so H of a pure cell is ~1e-11, not 0)
MAX_PAIRS = 50_000_000  # n² pairs in memory (int64 ×3): refuse beyond ~n = 7,000 runs rather than swap


def pair_index(n: int, self_pairs: bool) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) index arrays of every ordered pair of n runs, with or without i = j; each (P,) int."""
    if n * n > MAX_PAIRS:
        raise ValueError(f"{n} runs make {n * n:,} pairs; CMI handles at most {MAX_PAIRS:,} (analyze fewer runs)")
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = np.ones_like(i, dtype=bool) if self_pairs else i != j
    return i[keep], j[keep]


def cells(codes: np.ndarray, i: np.ndarray, j: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """(P,) cell id of each pair: the values of both runs on `axes`, in mixed radix (compact ids 0..C-1)."""
    key = np.zeros(len(i), dtype=np.int64)
    for a in axes:
        size = int(codes[:, a].max()) + 1
        key = (key * size + codes[i, a]) * size + codes[j, a]
    return np.unique(key, return_inverse=True)[1].reshape(-1)


def cell_tables(cell: np.ndarray, v_gap: np.ndarray, v_mu: np.ndarray, k: int) -> np.ndarray:
    """(C, k, k) counts of (V_gap, V_μ) per cell, V values in 0..k-1."""
    n_cells = int(cell.max()) + 1 if len(cell) else 0
    flat = np.bincount((cell * k + v_gap) * k + v_mu, minlength=n_cells * k * k)
    return flat.reshape(n_cells, k, k).astype(float)


def mi_and_entropy(tables: np.ndarray, log_eps: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per cell (C,) the mutual information of the two variables and the entropy of the first (rows), bits."""
    total = tables.sum(axis=(1, 2), keepdims=True)  # (C, 1, 1)
    p = tables / total
    p_gap, p_mu = p.sum(axis=2, keepdims=True), p.sum(axis=1, keepdims=True)  # (C, k, 1), (C, 1, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(p / (p_gap * p_mu)), 0.0)
        h_terms = np.where(p_gap > 0, -p_gap * np.log2(p_gap + log_eps), 0.0)
    return terms.sum(axis=(1, 2)), h_terms.sum(axis=(1, 2))


def pgdl_score(s: Sample) -> tuple[float, dict[tuple[str, str], float]]:
    """PGDL's task score (min over ordered axis pairs) and each set's score, in [0, 1]; nan with < 2 axes."""
    i, j = pair_index(len(s.mu), self_pairs=True)
    v_gap = (s.gap[i] > s.gap[j]).astype(np.int64)
    v_mu = (s.mu[i] > s.mu[j]).astype(np.int64)
    per_set = {}
    for a, b in permutations(range(len(s.axes)), 2):
        mi, h = mi_and_entropy(cell_tables(cells(s.codes, i, j, (a, b)), v_gap, v_mu, 2), PGDL_LOG_EPS)
        per_set[(s.axes[a], s.axes[b])] = float(mi.mean() / h.mean()) if h.mean() > 0 else float("nan")
    scores = [v for v in per_set.values() if np.isfinite(v)]
    return (min(scores) if scores else float("nan")), per_set


def _sign(x: np.ndarray) -> np.ndarray:
    return (np.sign(x) + 1).astype(np.int64)  # -1, 0, +1 → 0, 1, 2


def jiang_cmi(s: Sample, axes: tuple[int, ...], pairs: tuple[np.ndarray, ...] | None = None) -> float:
    """Î(V_μ; V_gap | U_S) / Ĥ(V_gap | U_S) for the conditioning axes `axes` (Jiang et al. 2020 eq. 4).

    `pairs` = (i, j, V_gap, V_μ) from `jiang_pairs(s)`, to reuse across sets.
    """
    i, j, v_gap, v_mu = pairs if pairs is not None else jiang_pairs(s)
    tables = cell_tables(cells(s.codes, i, j, axes), v_gap, v_mu, 3)
    mi, h = mi_and_entropy(tables)
    weight = tables.sum(axis=(1, 2)) / tables.sum()  # p(U_S = cell)
    cond_h = float((weight * h).sum())
    return float((weight * mi).sum() / cond_h) if cond_h > 0 else float("nan")


def jiang_pairs(s: Sample) -> tuple[np.ndarray, ...]:
    """(i, j, V_gap, V_μ) over the ordered pairs of distinct runs; V = sgn(difference) + 1 in {0, 1, 2}."""
    i, j = pair_index(len(s.mu), self_pairs=False)
    return i, j, _sign(s.gap[i] - s.gap[j]), _sign(s.mu[i] - s.mu[j])


@register_statistic("cmi_pgdl")
def cmi_pgdl(s: Sample) -> dict[str, float]:
    """PGDL 2020's conditional mutual information score ×100 (min over ordered pairs of two axes)."""
    score, _ = pgdl_score(s)
    return {"cmi_pgdl_x100": 100 * score}


@register_statistic("cmi_jiang")
def cmi_jiang(s: Sample) -> dict[str, float]:
    """Jiang et al. 2020's normalized CMI, min over conditioning sets of 0, 1 and 2 axes (`cmi_k0..2`)."""
    k = len(s.axes)
    if len(s.mu) < 2:
        return {"cmi_k0": float("nan"), "cmi_k1": float("nan"), "cmi_k2": float("nan")}
    pairs = jiang_pairs(s)
    per_axis = {f"cmi_k1[{s.axes[a]}]": jiang_cmi(s, (a,), pairs) for a in range(k)}

    def low(values) -> float:
        finite = [v for v in values if np.isfinite(v)]
        return min(finite) if finite else float("nan")

    return {"cmi_k0": jiang_cmi(s, (), pairs), "cmi_k1": low(per_axis.values()),
            "cmi_k2": low(jiang_cmi(s, ab, pairs) for ab in combinations(range(k), 2)), **per_axis}
