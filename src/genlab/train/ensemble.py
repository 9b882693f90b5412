"""The ensemble trainer: K runs that share an architecture, data shape and batch size, trained as one stacked
computation. Each member keeps its own seed (init, data order, augmentation and perturbation draws), labels
(corruption mask), learning rate and schedule, optimizer hyperparameters, dropout probabilities and masks,
events and stop rules; a member that stops is finished and written at its epoch while the others go on; a
diverging member never touches the others' numbers (members share no arithmetic). Each member equals the solo
run of its config to float tolerance (tests/test_ensemble.py, tests/test_dropout.py), and is stored as that run.

The pieces: train/stacked.py (`Stacked`, the stepper: stacked state, forward, steps, evaluation),
train/mlp_grads.py (the hand-derived MLP gradients), train/ensemble_memory.py (how many members fit), and the
registered optimizers (train/optim.py) with (K,) hyperparameters.

Shapes and how the stacked forward, optimizer and dropout masks work: train/stacked.py's docstring.

Members are matched to the stack by position (their parameters and buffers in order, shapes checked), not by
name: a member without dropout modules (mlp_uniform dropout=0 adds none) joins one with them as p = 0.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch
from torch import nn

from genlab.spec import RunConfig
from genlab.train.constraints import CONSTRAINTS
from genlab.train.ensemble_memory import MEMORY_SHARE, free_bytes, member_bytes, memory_cap  # noqa: F401
from genlab.train.loop import fit, new_member
from genlab.train.mlp_grads import ACT_GRAD, ELEMENTWISE, is_mlp, mlp_forward, mlp_grads  # noqa: F401
from genlab.train.setup import resolve_device
from genlab.train.stacked import Stacked
from genlab.train.state import Log, Member, Outcome, Progress, Save, SaveResume


def ensemble_blocker(model: nn.Module, config: RunConfig) -> str | None:
    """Why this run cannot be an ensemble member (None if it can)."""
    if CONSTRAINTS.get(config.constraint.name).active:
        return "a [constraint] (weight-normalized training) trains solo"
    if config.train.channels_last:
        return "train.channels_last trains solo (fused ensembles choose their maps' layout themselves)"
    if any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules()):
        return "torch's nn.Dropout draws from the global RNG; use genlab.models.dropout.Dropout"
    return None


def share_data(members: list[Member]) -> None:
    """Members whose inputs are equal share one copy (their labels may differ: corruption masks)."""
    m0 = members[0]
    for m in members[1:]:
        if m.data.x_train.shape != m0.data.x_train.shape:
            raise ValueError(f"ensemble members need one data shape: {tuple(m0.data.x_train.shape)} vs "
                             f"{tuple(m.data.x_train.shape)} (runs {m0.config.data.options} and {m.config.data.options})")
        same = lambda a, b: a.shape == b.shape and torch.equal(a, b)  # noqa: E731
        ex = {k: (m0.data.extra_tests[k][0] if k in m0.data.extra_tests and same(x, m0.data.extra_tests[k][0])
                  else x, y) for k, (x, y) in m.data.extra_tests.items()}
        m.data = replace(m.data, x_train=m0.data.x_train if same(m.data.x_train, m0.data.x_train) else m.data.x_train,
                         x_test=m0.data.x_test if same(m.data.x_test, m0.data.x_test) else m.data.x_test,
                         extra_tests=ex)


def train_ensemble(configs: list[RunConfig], *, device: str = "cpu", logs: list[Log | None] | None = None,
                   saves: list[Save | None] | None = None, progress: list[Progress | None] | None = None,
                   on_finish: Callable[[int, Outcome], None] | None = None,
                   save_resumes: list[SaveResume | None] | None = None, resumed: list[dict | None] | None = None
                   ) -> list[Outcome]:
    """Train `configs` as one ensemble; each member's outcome equals its solo `train(config)` to float tolerance.
    Resumed members (snapshots of their configs) must all be at one epoch."""
    dev = resolve_device(device)
    K = len(configs)
    none = [None] * K
    members = [new_member(c, dev, wrap=False, log=lg, save=sv, progress=pg, save_resume=sr, resumed=rs)
               for c, lg, sv, pg, sr, rs in zip(configs, logs or none, saves or none, progress or none,
                                                save_resumes or none, resumed or none)]
    for m in members:
        why = ensemble_blocker(m.model, m.config)
        if why:
            raise ValueError(f"run {m.config.experiment}/seed {m.config.seed} cannot join an ensemble: {why}")
    rules = {(m.config.train.rule, repr(sorted(m.config.train.rule_options.items()))) for m in members}
    if len(rules) > 1:  # the stacked forward is members[0]'s architecture, its rule included
        raise ValueError(f"an ensemble's members must share train.rule and its options, got {sorted(rules)}")
    share_data(members)
    cap = memory_cap(members, free_bytes(dev))  # too many for the device's memory: ensembles of `cap`, one after another
    outcomes: list[Outcome] = []
    for lo in range(0, K, cap):
        part = members[lo:lo + cap]
        outcomes += fit(part, Stacked(part), (lambda i, o, lo=lo: on_finish(lo + i, o)) if on_finish else None)
    return outcomes
