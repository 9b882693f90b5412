"""Linear mode connectivity: the loss and error barrier on the straight line between two solutions.

    θ(t) = (1 − t)·θ_A + t·θ_B,  t ∈ {0, 1/(k−1), …, 1}
    barrier = max_t L(θ(t)) − ½ (L(θ_A) + L(θ_B))      (Frankle et al. 2020's "error barrier height")

for the loss L (loss units) and the 0-1 error, each on a fixed training and test subset. Every floating
parameter and buffer is interpolated. With BatchNorm, the running statistics of an interpolated network are
those of neither endpoint, so by default (`bn_reestimate`) they are re-estimated at every t — endpoints included,
so a network compared with itself keeps a barrier of exactly 0 — as the cumulative mean/variance (momentum None)
over the training subset in batches of `bn_batch`, every other module in eval mode (no dropout), before the
evaluation in eval mode (Frankle et al. 2020 App.; Jordan et al. 2023, "REPAIR", §3 on why it matters).

The barrier is ≥ 0 up to rounding when the loss is convex on the segment; for two linearly connected minima
(a flat valley) it is 0, for a double well it is the height of the ridge between them (tests: closed forms).

References:
  Frankle, Dziugaite, Roy & Carbin, "Linear Mode Connectivity and the Lottery Ticket Hypothesis", ICML 2020
  (https://arxiv.org/abs/1912.05671), §2 (instability, error barrier height).
  Garipov et al. 2018 (https://arxiv.org/abs/1802.10026) and Draxler et al. 2018
  (https://arxiv.org/abs/1803.00885): curves of low loss between minima — the line only here; the trained
  quadratic Bézier curve is the pair measure `curve_connectivity` (genlab.measures.curves).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from genlab.measures import MeasureData
from genlab.measures.objective import error_rate
from genlab.measures.pairs import register_pair_measure

EVAL_BATCH = 512


def interpolate(model_a: nn.Module, model_b: nn.Module, t: float, into: nn.Module | None = None) -> nn.Module:
    """A copy of A (or `into`, a copy made before, overwritten) with every floating parameter and buffer
    (1 − t)·A + t·B; integer buffers (BN's step count) taken from A. Raises ValueError naming the first entry
    whose shape differs."""
    sa, sb = model_a.state_dict(), model_b.state_dict()
    if sa.keys() != sb.keys():
        raise ValueError(f"the two networks differ in their entries: {sorted(set(sa) ^ set(sb))[:3]}")
    mixed = {}
    for k, va in sa.items():
        vb = sb[k]
        if va.shape != vb.shape:
            raise ValueError(f"{k}: shapes differ ({tuple(va.shape)} vs {tuple(vb.shape)}); mode connectivity "
                             "needs two networks of one architecture")
        mixed[k] = torch.lerp(va, vb.to(va), t) if va.is_floating_point() else va.clone()
    net = copy.deepcopy(model_a) if into is None else into
    with torch.no_grad():  # in place: the state_dict's tensors are the module's own (no load_state_dict checks)
        for k, v in net.state_dict().items():
            v.copy_(mixed[k])
    return net.eval()


@torch.no_grad()
def reestimate_bn(model: nn.Module, x: torch.Tensor, batch: int) -> bool:
    """Recompute every BatchNorm's running mean/variance on x (cumulative average over batches); True if the
    model has any. The model is left in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not bns:
        return False
    saved = [m.momentum for m in bns]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs by its count
        m.train()
    try:
        for i in range(0, len(x), batch):
            model(x[i:i + batch])
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        model.eval()
    return True


@torch.no_grad()
def loss_and_error(model: nn.Module, data: MeasureData, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean loss, mean 0-1 error) on the rows (x, y), summed in float64; error NaN for regression."""
    loss = err = 0.0
    for i in range(0, len(x), EVAL_BATCH):
        out = model(x[i:i + EVAL_BATCH])
        yb = y[i:i + EVAL_BATCH]
        loss += float(data.loss.per_sample(out, yb).double().sum())
        err += float(error_rate(out, yb).double().sum()) if data.num_classes is not None else float("nan")
    return loss / len(x), err / len(x)


def barrier(curve: np.ndarray) -> float:
    """max over the path minus the mean of the two endpoints (Frankle et al. 2020)."""
    return float(np.max(curve) - 0.5 * (curve[0] + curve[-1]))


@register_pair_measure("mode_connectivity")
def mode_connectivity(model_a: nn.Module, model_b: nn.Module, data: MeasureData, *, points: int = 11,
                      bn_reestimate: bool = True, bn_batch: int = 128, max_samples: int | None = 2048
                      ) -> dict[str, float]:
    """Loss and error barriers on the segment between two networks, on train and test (Frankle et al. 2020).

    Definition: module docstring; `points` evenly spaced t in [0, 1] (endpoints included), the first
    `max_samples` rows of each split, BatchNorm statistics re-estimated at each t on the training rows.

    Returns:
      loss_barrier.train, error_barrier.train, loss_barrier.test, error_barrier.test (loss units / error rate);
      path.<quantity>.<split>.<j>: the value at t_j = j/(points − 1) (kept for figures).
    """
    if points < 2 or bn_batch < 2:
        raise ValueError(f"mode_connectivity needs points ≥ 2 and bn_batch ≥ 2, got points={points}, "
                         f"bn_batch={bn_batch}")
    cut = (lambda t: t) if max_samples is None else (lambda t: t[:max_samples])  # noqa: E731
    splits = {"train": (cut(data.x_train), cut(data.y_train)), "test": (cut(data.x_test), cut(data.y_test))}
    curves: dict[tuple[str, str], list[float]] = {(q, s): [] for q in ("loss", "error") for s in splits}
    net = copy.deepcopy(model_a)  # one copy, overwritten at each t
    for t in np.linspace(0.0, 1.0, points):
        net = interpolate(model_a, model_b, float(t), into=net)
        if bn_reestimate:
            reestimate_bn(net, splits["train"][0], bn_batch)
        for s, (x, y) in splits.items():
            loss, err = loss_and_error(net, data, x, y)
            curves[("loss", s)].append(loss)
            curves[("error", s)].append(err)
    out: dict[str, float] = {}
    for (q, s), c in curves.items():
        if data.num_classes is None and q == "error":
            continue
        out[f"{q}_barrier.{s}"] = barrier(np.array(c))
        out.update({f"path.{q}.{s}.{j}": v for j, v in enumerate(c)})
    return out
