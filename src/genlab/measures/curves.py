"""Mode connectivity along a trained curve: the loss and error barrier on a quadratic Bézier curve between two
solutions whose bend is fitted to keep the training loss low (Garipov et al. 2018; Draxler et al. 2018).

    θ(t) = (1 − t)²·θ_A + 2t(1 − t)·θ_C + t²·θ_B,  t ∈ [0, 1]
    θ_C  = argmin E_{t ~ U(0,1)} L_train(θ(t))        (endpoints fixed; θ_C starts at the midpoint ½(θ_A + θ_B))
    barrier = max_j L(θ(t_j)) − ½ (L(θ_A) + L(θ_B)),  t_j = j/(points − 1)

for the loss L (loss units: nats for cross-entropy) and the 0-1 error, on a fixed training and test subset, as
`mode_connectivity` (genlab.measures.connectivity) does on the straight line. With the midpoint as control the
curve *is* the line, (1 − t)·θ_A + t·θ_B, so `steps = 0` gives the line's values and every training step can only
bend it; the line's own barriers and path are returned beside the curve's (`line_*`), from the same evaluation.

Training (Garipov et al. §3.2): each of `steps` steps draws one t ~ U(0,1) and a batch of training rows (both from
a torch.Generator seeded by `seed`: same inputs, same numbers on the CPU) and takes a step of SGD with momentum or
Adam on θ_C alone, the learning rate annealed by a half cosine to 0 (or constant). No weight decay: the
objective is the loss itself (Garipov et al. add 5e-4 to fit test-quality curves; a measure of the landscape
should not move it). Only floating *parameters* lie on the curve. While training, BatchNorm layers normalize by
the batch's statistics (train mode, as Garipov et al.); every other module is in eval mode (no dropout: a
measure draws from no global RNG). At every evaluated t, floating buffers are interpolated linearly (the curve
for a midpoint control) and, by default, BatchNorm running statistics are re-estimated on the training rows
(`reestimate_bn`, as for the line), so a network paired with itself has barrier exactly 0.

Cost: `steps` forward+backward passes on `batch` rows, plus 2·`points` re-estimations and evaluations on the
training and test subsets (half of them the line's); about steps·batch/(2·points·n) + 1 times mode_connectivity.

References:
  Garipov, Izmailov, Podoprikhin, Vetrov & Wilson, "Loss Surfaces, Mode Connectivity, and Fast Ensembling of
  DNNs", NeurIPS 2018 (https://arxiv.org/abs/1802.10026), §3 (Bézier curves, the uniform-t objective).
  Draxler, Veschgini, Salmhofer & Hamprecht, "Essentially No Barriers in Neural Network Energy Landscape",
  ICML 2018 (https://arxiv.org/abs/1803.00885): minimum-energy paths; same finding, a different path family.
"""

from __future__ import annotations

import copy
import math
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm

from genlab.measures import MeasureData
from genlab.measures import connectivity as line  # the line's helpers (a module: connectivity may be mid-import)
from genlab.measures.pairs import register_pair_measure

Params = dict[str, torch.Tensor]


def bezier(t: float, a: torch.Tensor, c: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(1 − t)²·a + 2t(1 − t)·c + t²·b: the quadratic Bézier point at t (any shape, elementwise)."""
    return (1 - t) ** 2 * a + 2 * t * (1 - t) * c + t ** 2 * b


def floating_params(model: nn.Module) -> Params:
    """The model's floating parameters by name, detached (what lies on the curve)."""
    return {k: p.detach() for k, p in model.named_parameters() if p.is_floating_point()}


def midpoint(model_a: nn.Module, model_b: nn.Module) -> Params:
    """½(θ_A + θ_B) per floating parameter: the control point whose curve is the straight line."""
    pa, pb = floating_params(model_a), floating_params(model_b)
    if pa.keys() != pb.keys():
        raise ValueError(f"the two networks differ in their parameters: {sorted(set(pa) ^ set(pb))[:3]}")
    for k in pa:
        if pa[k].shape != pb[k].shape:
            raise ValueError(f"{k}: shapes differ ({tuple(pa[k].shape)} vs {tuple(pb[k].shape)}); a curve "
                             "needs two networks of one architecture")
    return {k: 0.5 * (pa[k] + pb[k].to(pa[k])) for k in pa}


def _bn_batch_mode(net: nn.Module) -> nn.Module:
    """Eval mode everywhere but BatchNorm, which normalizes by the batch (its running stats are overwritten
    before any evaluation)."""
    net.eval()
    for m in net.modules():
        if isinstance(m, _BatchNorm):
            m.train()
    return net


def train_control(model_a: nn.Module, model_b: nn.Module, data: MeasureData, x: torch.Tensor, y: torch.Tensor, *,
                  steps: int, lr: float, optimizer: str, momentum: float, batch: int, schedule: str, seed: int
                  ) -> Params:
    """θ_C after `steps` steps on E_t L(θ(t)) over the rows (x, y), from the midpoint; one t and one batch of
    rows (without replacement) per step, drawn from a generator seeded by `seed`."""
    pa, pb = floating_params(model_a), floating_params(model_b)
    control = {k: v.clone().requires_grad_(True) for k, v in midpoint(model_a, model_b).items()}
    if steps == 0:
        return {k: v.detach() for k, v in control.items()}
    opt = (torch.optim.SGD(control.values(), lr=lr, momentum=momentum) if optimizer == "sgd"
           else torch.optim.Adam(control.values(), lr=lr))
    net = _bn_batch_mode(copy.deepcopy(model_a))
    gen = torch.Generator().manual_seed(seed)  # CPU draws: the same t and rows on every device
    for step in range(steps):
        t = float(torch.rand((), generator=gen, dtype=torch.float64))
        rows = torch.randperm(len(x), generator=gen)[:batch].to(x.device)
        theta = {k: bezier(t, pa[k], control[k], pb[k]) for k in control}
        loss = data.loss.per_sample(functional_call(net, theta, (x[rows],)), y[rows]).mean()
        for g in opt.param_groups:  # half-cosine annealing to 0 (Garipov et al. also decay to ~0)
            g["lr"] = lr * (0.5 * (1 + math.cos(math.pi * step / steps)) if schedule == "cosine" else 1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {k: v.detach() for k, v in control.items()}


def curve_point(model_a: nn.Module, model_b: nn.Module, control: Params, t: float, into: nn.Module) -> nn.Module:
    """`into` overwritten with the network at t: buffers on the line, floating parameters on the Bézier curve."""
    net = line.interpolate(model_a, model_b, t, into=into)
    pa, pb = floating_params(model_a), floating_params(model_b)
    with torch.no_grad():
        for k, p in net.named_parameters():
            if k in control:
                p.copy_(bezier(t, pa[k], control[k], pb[k].to(pa[k])))
    return net


def _check(points: int, steps: int, lr: float, batch: int, bn_batch: int, optimizer: str, schedule: str) -> None:
    bad = [f"{n}={v!r}" for n, v, ok in [("points", points, points >= 2), ("steps", steps, steps >= 0),
                                          ("lr", lr, lr > 0), ("batch", batch, batch >= 2),
                                          ("bn_batch", bn_batch, bn_batch >= 2),
                                          ("optimizer", optimizer, optimizer in ("sgd", "adam")),
                                          ("schedule", schedule, schedule in ("cosine", "constant"))] if not ok]
    if bad:
        raise ValueError(f"curve_connectivity needs points ≥ 2, steps ≥ 0, lr > 0, batch ≥ 2, bn_batch ≥ 2, "
                         f"optimizer sgd|adam, schedule cosine|constant; got {', '.join(bad)}")


def _summary(curves: dict[tuple[str, str], list[float]], prefix: str, regression: bool) -> dict[str, float]:
    """barrier, mean over t, and the path of each (quantity, split), keys prefixed (``/"line_")."""
    out: dict[str, float] = {}
    for (q, s), c in curves.items():
        if regression and q == "error":
            continue
        out[f"{prefix}{q}_barrier.{s}"] = line.barrier(np.array(c))
        out[f"{prefix}mean_{q}.{s}"] = float(np.mean(c))
        out.update({f"{prefix}path.{q}.{s}.{j}": v for j, v in enumerate(c)})
    return out


@register_pair_measure("curve_connectivity")
def curve_connectivity(model_a: nn.Module, model_b: nn.Module, data: MeasureData, *,
                       steps: Annotated[int, Field(ge=0)] = 200, lr: Annotated[float, Field(gt=0)] = 0.01,
                       optimizer: Literal["sgd", "adam"] = "sgd", momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9,
                       batch: Annotated[int, Field(ge=2)] = 128, schedule: Literal["cosine", "constant"] = "cosine",
                       seed: int = 0, points: Annotated[int, Field(ge=2)] = 11, bn_reestimate: bool = True,
                       bn_batch: Annotated[int, Field(ge=2)] = 128, max_samples: int | None = 2048
                       ) -> dict[str, float]:
    """Loss and error barriers along a trained quadratic Bézier curve between two networks, and along the line
    (Garipov et al. 2018; definition, training and cost: module docstring).

    Options: `steps` steps of `optimizer` (SGD with `momentum`, or Adam) at learning rate `lr` (`schedule`:
    cosine-annealed or constant) on `batch` training rows and one t per step, draws seeded by `seed`; `points`
    evenly spaced t in [0, 1] evaluated; the first `max_samples` rows of each split train and evaluate;
    BatchNorm statistics re-estimated at each t on the training rows in batches of `bn_batch`.

    Returns (loss units / error rate; error keys absent for regression):
      loss_barrier.<split>, error_barrier.<split>: the curve's barriers, split ∈ {train, test};
      mean_loss.<split>, mean_error.<split>: the mean over the `points` t (what training lowers, on a grid);
      path.<quantity>.<split>.<j>: the value at t_j = j/(points − 1) (for figures);
      line_…: the same for the straight line (= mode_connectivity with these options);
      control_shift: ‖θ_C − ½(θ_A + θ_B)‖₂ and endpoint_distance: ‖θ_B − θ_A‖₂ (parameter units).
    """
    _check(points, steps, lr, batch, bn_batch, optimizer, schedule)
    cut = (lambda t: t) if max_samples is None else (lambda t: t[:max_samples])  # noqa: E731
    splits = {"train": (cut(data.x_train), cut(data.y_train)), "test": (cut(data.x_test), cut(data.y_test))}
    control = train_control(model_a, model_b, data, *splits["train"], steps=steps, lr=lr, optimizer=optimizer,
                            momentum=momentum, batch=batch, schedule=schedule, seed=seed)
    paths = {p: {(q, s): [] for q in ("loss", "error") for s in splits} for p in ("", "line_")}
    net = copy.deepcopy(model_a)  # one copy, overwritten at each t
    for t in np.linspace(0.0, 1.0, points):
        for prefix in paths:
            net = (line.interpolate(model_a, model_b, float(t), into=net) if prefix else
                   curve_point(model_a, model_b, control, float(t), into=net))
            if bn_reestimate:
                line.reestimate_bn(net, splits["train"][0], bn_batch)
            for s, (x, y) in splits.items():
                loss, err = line.loss_and_error(net, data, x, y)
                paths[prefix][("loss", s)].append(loss)
                paths[prefix][("error", s)].append(err)
    mid = midpoint(model_a, model_b)
    pa, pb = floating_params(model_a), floating_params(model_b)
    norm = lambda d: math.sqrt(sum(float((v.double() ** 2).sum()) for v in d.values()))  # noqa: E731
    out = {"control_shift": norm({k: control[k] - mid[k] for k in mid}),
           "endpoint_distance": norm({k: pb[k].to(pa[k]) - pa[k] for k in pa})}
    for prefix, curves in paths.items():
        out.update(_summary(curves, prefix, data.num_classes is None))
    return out
