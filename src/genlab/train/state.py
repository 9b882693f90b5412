"""A run's training state (`Member`): what one solo run — or one member of an ensemble — carries from epoch
to epoch, and the `Outcome` and result summary it ends with.

The model in a member is a plain `nn.Module`. In an ensemble its parameters are views into the stacked
(K, ...) tensors the ensemble trains, so end-of-epoch events (perturbation, cosine, checkpoints, measures)
act on members exactly as on solo runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from genlab.data import Dataset
from genlab.losses import Loss
from genlab.models import count_params
from genlab.spec import RunConfig
from genlab.train.constraints import Hook

Progress = Callable[[int, int], None]  # (epochs done, epochs total)
Log = Callable[[dict], None]  # receives each history row as it is made
Save = Callable[[str, dict], None]  # (checkpoint name, state_dict)
SaveResume = Callable[[dict], None]  # stores a resume snapshot atomically (train/resume.py)


@dataclass(eq=False)  # members are compared by identity (their tensors have no ==)
class Member:
    """One run being trained. `status` is "running" until a stop rule ends it."""

    config: RunConfig
    data: Dataset
    model: nn.Module  # wrapped as ρ·f_V when a [constraint] is set (solo runs only)
    loss: Loss
    gens: dict[str, torch.Generator]  # per purpose: setup.STREAMS (init, shuffle, augment, perturb, dropout)
    init_state: dict[str, torch.Tensor]  # the weights at initialization (distance-from-init measures)
    lr: Callable[[float], float]  # t in epochs (fractional inside an epoch) ↦ learning rate
    wn: Hook | None = None  # the weight-normalization hook (000 ch. 5), None for plain training
    log: Log | None = None
    save: Save | None = None
    progress: Progress | None = None
    save_resume: SaveResume | None = None
    resumed: dict[str, Any] | None = None  # the snapshot this member was restored from
    history: list[dict[str, Any]] = field(default_factory=list)
    ref: torch.Tensor | None = None  # (P,) the cosine reference weights, once saved
    status: str = "running"  # → "completed" | "diverged"
    stop_reason: str = ""  # "max_epochs" | "zero_train_error" | "train_loss_below" | "non_finite_loss"
    epoch: int = 0  # epochs trained so far

    @property
    def running(self) -> bool:
        return self.status == "running"

    def record(self, row: dict[str, Any]) -> dict[str, Any]:
        self.history.append(row)
        if self.log:
            self.log(row)
        return row

    def checkpoint(self, name: str, model: nn.Module) -> None:
        """Save a state_dict (cloned: an ensemble member's tensors are views into the whole stack)."""
        if self.save:
            self.save(name, {k: v.detach().clone() for k, v in model.state_dict().items()})


@dataclass
class Outcome:
    status: str  # "completed" | "diverged"
    stop_reason: str  # "max_epochs" | "zero_train_error" | "train_loss_below" | "non_finite_loss"
    epochs_run: int
    history: list[dict[str, Any]]
    model: nn.Module
    measures: dict[str, float]  # record.measures on the final weights ({} if none or diverged)
    per_class: dict[str, list[float]]  # split → (num_classes,) accuracies, NaN for absent classes
    data_info: dict[str, Any]  # the data set's scalar facts (e.g. label_noise, n_corrupted)


def summary(outcome: Outcome, config: RunConfig, wall_s: float, members: int = 1) -> dict[str, Any]:
    """result.json's content: status, stop reason, last epoch's metrics, sizes, timing. `wall_s` is the seconds
    from the start of training to this run's end; `members` runs trained together in one stack (an ensemble)
    shared those seconds, so one run's share of the machine is wall_s / members."""
    last = {k: v for k, v in outcome.history[-1].items() if k not in ("epoch", "event", "lr", "epoch_s")}
    return {"status": outcome.status, "stop_reason": outcome.stop_reason, "epochs_run": outcome.epochs_run,
            "n_params": count_params(outcome.model), "wall_s": wall_s, "members": members, "final": last,
            "measures": outcome.measures,
            "per_class_accuracy": outcome.per_class, "data": outcome.data_info}
