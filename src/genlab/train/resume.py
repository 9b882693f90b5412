"""Mid-run resume: a member's whole training state as one object, and putting it back.

A snapshot holds the epoch, the history, the weights (as trained: ρ·f_V under a constraint), the optimizer
state (from the stepper), every generator (the run's `gens`: init, shuffle, augment, perturb, dropout; torch's global and CUDA ones,
numpy's and Python's), the cosine reference and the Lagrange multipliers. Restored into a freshly built member
of the same config, training goes on exactly as if it had never stopped (bit-identical on the CPU).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from genlab.train.state import Member
from genlab.train.weightnorm import LagrangeState

RESUME_SECONDS = 300.0  # record.resume_every = 0: a snapshot after any epoch that ends this long after the last


def due(member: Member, epoch: int, seconds_since: float) -> bool:
    k = member.config.record.resume_every
    return epoch % k == 0 if k > 0 else seconds_since >= RESUME_SECONDS


def snapshot(member: Member, optim: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to continue `member` after its current epoch; `optim` is the stepper's state for it."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return {"version": 1, "epoch": member.epoch, "history": list(member.history),
            "model": {k: v.detach().clone() for k, v in member.model.state_dict().items()}, "optim": optim,
            "gens": {k: g.get_state() for k, g in member.gens.items()},
            "rng": {"torch": torch.get_rng_state(), "cuda": cuda, "numpy": np.random.get_state(),
                    "python": random.getstate()},
            "ref": member.ref, "lam": member.wn.state.lam.clone() if member.wn and member.wn.state else None}


def restore(member: Member, state: dict[str, Any]) -> None:
    """Put a snapshot back into a member built from the same config (before its stepper is made)."""
    if state.get("version") != 1:
        raise ValueError(f"resume state version {state.get('version')!r} is not 1; delete resume.pt to start over")
    member.model.load_state_dict(state["model"])
    for k, g in member.gens.items():
        if k in state["gens"]:  # a stream newer than the snapshot (dropout) starts from its seed
            g.set_state(state["gens"][k])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    member.epoch, member.history, member.ref = state["epoch"], list(state["history"]), state["ref"]
    if member.wn and state["lam"] is not None:
        member.wn.state = LagrangeState(state["lam"])
