"""Things done to the weights between epochs, and the end-of-epoch sequence every trainer runs.

At the end of epoch e, for the members that trained it, in this order (EPOCH_END):
  project      the [constraint]'s projection (000 ch. 5) and its facts (norms, log ρ, λ)
  reference    save the cosine reference weights (cosine is then 1 at this epoch)
  measures     record.measures at record.measure_epochs
  evaluate     the epoch's history row (loss and error per split)
  perturbation w ← w + N(0, std²) and a second row with event = "perturb" (000 §3.5)
  checkpoint   epoch_<e>.pt at record.checkpoint_epochs
Each event takes the members and an `EpochEnd`; `EpochEnd.evaluate` is the trainer's (batched in ensembles).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from genlab.train.evaluate import measure
from genlab.train.state import Member
from genlab.train.constraints import plain


def flat_params(model: nn.Module) -> torch.Tensor:
    """All parameters (weights and biases) as one detached vector (P,)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@torch.no_grad()
def perturb(model: nn.Module, std: float, gen: torch.Generator) -> None:
    """w ← w + ε, ε ~ N(0, std²) independently for every weight and bias (000 §3.5). `std` is a std."""
    for p in model.parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=p.dtype, device=gen.device)
        p.add_(noise.to(p.device), alpha=std)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """cos θ = a·b / (‖a‖ ‖b‖) of two flat vectors (000 §3.6); NaN if either is zero."""
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return float("nan")
    return float((a @ b) / (na * nb))


Evaluate = Callable[[list[Member]], list[dict[str, float]]]  # members → their {split_loss, split_error}


@dataclass
class EpochEnd:
    epoch: int
    lrs: list[float]  # per member: the learning rate of the epoch's last step
    finite: list[bool]  # per member: every step's loss was finite
    evaluate: Evaluate
    extra: list[dict[str, Any]] = field(default_factory=list)  # per member: fields for the epoch's row
    rows: list[dict[str, Any]] = field(default_factory=list)  # per member: its last row so far


def row(member: Member, epoch: int, lr: float, metrics: dict[str, float], extra: dict[str, Any]) -> dict[str, Any]:
    """One history row: epoch, lr, the events' fields, the metrics, and cosine once a reference exists."""
    r: dict[str, Any] = {"epoch": epoch, "lr": lr, **extra, **metrics}
    if member.ref is not None:
        r["cosine"] = cosine(flat_params(member.model), member.ref)
    return member.record(r)


def project(members: list[Member], end: EpochEnd) -> None:
    for m, ok, ex in zip(members, end.finite, end.extra):
        if ok and m.wn:
            ex.update(m.wn.end_epoch(m.model))


def reference(members: list[Member], end: EpochEnd) -> None:
    for m in members:
        if m.config.events.cosine_ref_epoch == end.epoch:
            m.ref = flat_params(m.model).clone()  # saved before this epoch's perturbation: cosine here is 1


def measures(members: list[Member], end: EpochEnd) -> None:
    for m, ok, ex in zip(members, end.finite, end.extra):
        if ok and end.epoch in m.config.record.measure_epochs:
            ex.update(measure(plain(m.model), m.data, m.loss, m.init_state, m.config.record))


def evaluate(members: list[Member], end: EpochEnd) -> None:
    metrics = end.evaluate(members)
    end.rows = [row(m, end.epoch, lr, mt, ex) for m, lr, mt, ex in zip(members, end.lrs, metrics, end.extra)]


def perturbation(members: list[Member], end: EpochEnd) -> None:
    hit = [i for i, (m, ok) in enumerate(zip(members, end.finite))
           if ok and end.epoch in m.config.events.perturb_epochs and m.config.events.perturb_std > 0]
    for i in hit:
        perturb(members[i].model, members[i].config.events.perturb_std, members[i].gens["perturb"])
    if hit:  # a second row at this epoch: the jump itself
        metrics = end.evaluate([members[i] for i in hit])
        for i, mt in zip(hit, metrics):
            end.rows[i] = row(members[i], end.epoch, end.lrs[i], mt, {"event": "perturb"})


def checkpoint(members: list[Member], end: EpochEnd) -> None:
    for m in members:
        if end.epoch in m.config.record.checkpoint_epochs:
            m.checkpoint(f"epoch_{end.epoch}", plain(m.model))


EPOCH_END = (project, reference, measures, evaluate, perturbation, checkpoint)


def end_epoch(members: list[Member], epoch: int, lrs: list[float], finite: list[bool], epoch_s: float,
              evaluate_fn: Evaluate) -> list[dict[str, Any]]:
    """Run EPOCH_END for `members` after epoch `epoch`; returns each member's last row."""
    end = EpochEnd(epoch, lrs, finite, evaluate_fn, extra=[{"epoch_s": epoch_s} for _ in members])
    for event in EPOCH_END:
        event(members, end)
    return end.rows
