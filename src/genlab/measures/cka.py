"""Centered kernel alignment (CKA) between the layers of two networks on the same inputs (Kornblith et al. 2019).

For representations X (n × p) and Y (n × q) of the same n inputs, with Gram matrices K = k(X), L = k(Y):

    CKA(K, L) = HSIC(K, L) / √(HSIC(K, K) · HSIC(L, L)),   HSIC(K, L) = tr(K H L H) / (n − 1)²,  H = I − 11ᵀ/n

Linear kernel K = XXᵀ (then CKA = ‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F) on centered features); RBF kernel
K_ij = exp(−‖x_i − x_j‖² / (2 τ² m)), m the median of the squared distances (diagonal zeros included; numpy's
median, the mean of the two middle values — ckatorch takes torch's lower one) and τ the `rbf_threshold`
(Kornblith et al.'s code, default 1.0). `debiased` replaces HSIC by the unbiased estimator of
Song et al. 2012 (Nguyen, Raghu & Kornblith 2021 eq. 3), computed as Kornblith's `center_gram(unbiased=True)`:
the value is then free of the O(1/n) bias that makes CKA of unrelated wide layers look similar.

Representations: the output of every Linear/Conv layer in execution order (pre-activation, per sample flattened),
the layers the weight measures count; layer i of network A is compared with layer i of network B, and
`cka_matrix` gives every pair (layers × layers) for heat maps. Features are in the pass's dtype, centered Gram
matrices float64.

References:
  Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations Revisited", ICML 2019
  (https://arxiv.org/abs/1905.00414). Nguyen, Raghu & Kornblith, ICLR 2021 (https://arxiv.org/abs/2010.15327).
  Song, Smola, Gretton, Bedo & Borgwardt, JMLR 2012 (unbiased HSIC). ckatorch 1.0.3 (`cka_base`): the tests'
  reference, a float64 port of Kornblith et al.'s code.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from genlab.measures import MeasureData
from genlab.measures.layers import LINEAR_TYPES, run_with_hooks
from genlab.measures.pairs import register_pair_measure

Kernel = Literal["linear", "rbf"]
FEATURE_BATCH = 512  # rows per forward pass when collecting features


def features(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """(n, p_i) outputs of every Linear/Conv call of `model` on x, in execution order (eval mode), in the
    model's dtype."""
    chunks: list[list[torch.Tensor]] = []
    for i in range(0, len(x), FEATURE_BATCH):
        seen: list[torch.Tensor] = []
        run_with_hooks(model, x[i:i + FEATURE_BATCH],
                       lambda m, inp, out: seen.append(out.flatten(1)) if isinstance(m, LINEAR_TYPES)
                       else None)
        chunks.append(seen)
    if not chunks or not chunks[0]:
        raise ValueError("the model has no nn.Linear or nn.Conv layer that runs in a forward pass")
    return [torch.cat([c[j] for c in chunks]) for j in range(len(chunks[0]))]


def gram(x: torch.Tensor, kernel: Kernel = "linear", rbf_threshold: float = 1.0) -> torch.Tensor:
    """(n, n) float64 Gram matrix of the rows of x (n, p): XXᵀ or the RBF kernel at τ²·median squared distance.
    XXᵀ is formed in x's dtype (the measure's `dtype`: float32 halves the cost of the n × p × n product, the
    largest of the measure) and cast; centering and the kernel are float64."""
    k = (x @ x.T).double()
    if kernel == "linear":
        return k
    sq = k.diag()
    d2 = (sq[:, None] + sq[None, :] - 2 * k).clamp_min(0)
    med = float(np.median(d2.cpu().numpy()))  # numpy's median (mean of the middle two), as Kornblith's code
    return torch.exp(-d2 / (2 * rbf_threshold ** 2 * med))


def center(k: torch.Tensor, debiased: bool = False) -> torch.Tensor:
    """HKH (debiased: the U-statistic centering of Kornblith's `center_gram(unbiased=True)`, zero diagonal)."""
    k = k.clone()
    n = k.shape[0]
    if debiased:
        if n < 4:
            raise ValueError(f"debiased HSIC needs at least 4 samples, got {n}")
        k.fill_diagonal_(0)
        means = k.sum(0) / (n - 2)
        means = means - means.sum() / (2 * (n - 1))
        k = k - means[:, None] - means[None, :]
        k.fill_diagonal_(0)
        return k
    means = k.mean(0)
    means = means - means.mean() / 2
    return k - means[:, None] - means[None, :]


def cka_from_grams(k: torch.Tensor, l: torch.Tensor, debiased: bool = False) -> float:
    """CKA of two Gram matrices: ⟨K_c, L_c⟩ / (‖K_c‖_F ‖L_c‖_F). 0 when either is constant (no variance)."""
    kc, lc = center(k, debiased), center(l, debiased)
    den = float(torch.linalg.norm(kc) * torch.linalg.norm(lc))
    return float((kc * lc).sum()) / den if den > 0 else 0.0


def cka_matrix(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor], kernel: Kernel = "linear",
               debiased: bool = False, rbf_threshold: float = 1.0) -> np.ndarray:
    """(layers of A, layers of B) CKA of every pair of layers (Gram matrices centered once each)."""
    ca = [center(gram(f, kernel, rbf_threshold), debiased) for f in feats_a]
    cb = [center(gram(f, kernel, rbf_threshold), debiased) for f in feats_b]
    na, nb = [float(torch.linalg.norm(c)) for c in ca], [float(torch.linalg.norm(c)) for c in cb]
    out = np.zeros((len(ca), len(cb)))
    for i, a in enumerate(ca):
        for j, b in enumerate(cb):
            den = na[i] * nb[j]
            out[i, j] = float((a * b).sum()) / den if den > 0 else 0.0
    return out


def split_rows(data: MeasureData, split: Literal["train", "test"], max_samples: int | None) -> torch.Tensor:
    x = data.x_test if split == "test" else data.x_train
    return x if max_samples is None else x[:max_samples]


@register_pair_measure("cka")
def cka(model_a: nn.Module, model_b: nn.Module, data: MeasureData, *,
        kernels: list[Kernel] = ["linear", "rbf"], debiased: bool = False, rbf_threshold: float = 1.0,  # noqa: B006
        split: Literal["train", "test"] = "test", max_samples: int | None = 512, matrix: bool = False
        ) -> dict[str, float]:
    """CKA between layer i of network A and layer i of network B, per layer and on average (Kornblith et al. 2019).

    Definition: module docstring; inputs are the first `max_samples` rows of `split`. Layers are the Linear/Conv
    outputs in execution order; a pair of networks with different layer counts is compared over the shorter.

    Returns:
      <kernel>.<i> for each layer i and <kernel>.mean (mean over layers), for each kernel in `kernels`; in
      [0, 1], dimensionless (1: the same representation up to rotation and scale). With `matrix`, also
      <kernel>_matrix.<i>.<j>: layer i of A against layer j of B, every pair (for heat maps).
    """
    x = split_rows(data, split, max_samples)
    fa, fb = features(model_a, x), features(model_b, x)
    out: dict[str, float] = {}
    for kern in kernels:
        if matrix:
            mat = cka_matrix(fa, fb, kern, debiased, rbf_threshold)
            vals = [float(mat[i, i]) for i in range(min(mat.shape))]
            out.update({f"{kern}_matrix.{i}.{j}": float(v) for (i, j), v in np.ndenumerate(mat)})
        else:
            vals = [cka_from_grams(gram(a, kern, rbf_threshold), gram(b, kern, rbf_threshold), debiased)
                    for a, b in zip(fa, fb)]
        out.update({f"{kern}.{i}": v for i, v in enumerate(vals)})
        out[f"{kern}.mean"] = float(np.mean(vals))
    return out
