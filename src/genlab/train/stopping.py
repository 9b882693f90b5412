"""Stop rules: after each epoch's events, whether a run ends and why. One function for solo and ensemble runs."""

from __future__ import annotations

import math
from typing import Any

from genlab.spec import TrainSpec


def stop_rule(row: dict[str, Any], epoch: int, finite: bool, spec: TrainSpec) -> tuple[str, str] | None:
    """(status, reason) if the run ends after `epoch` whose last history row is `row`, else None.

    A non-finite loss (in a step or in the evaluation) ends the run as diverged; zero training error and a
    training loss below the threshold end it when asked for; the last epoch ends it.
    """
    if not finite or not math.isfinite(row["train_loss"]):
        return "diverged", "non_finite_loss"
    if spec.stop_at_zero_error and row["train_error"] == 0:
        return "completed", "zero_train_error"
    if spec.stop_below_loss is not None and row["train_loss"] < spec.stop_below_loss:
        return "completed", "train_loss_below"
    if epoch >= spec.epochs:
        return "completed", "max_epochs"
    return None
