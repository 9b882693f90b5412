"""How many ensemble members fit in memory: one member's training footprint, and the device's free memory."""

from __future__ import annotations

import torch

from genlab.measures.layers import output_sizes
from genlab.train.state import Member

MEMORY_SHARE = 0.5  # of the device's free memory an ensemble may plan to use


def member_bytes(m: Member) -> int:
    """Memory one member needs while training, bytes: weights, gradient and two optimizer buffers, plus every
    layer's output on one batch, kept for the backward pass (counted by a forward pass with hooks)."""
    bs = min(m.config.train.batch_size, m.data.n_train)
    n_out = sum(output_sizes(m.model, m.data.inputs(m.data.x_train[:bs])))  # eval: no BatchNorm statistics touched
    weights = sum(p.numel() * p.element_size() for p in m.model.parameters())
    return 4 * weights + 2 * 4 * n_out


def free_bytes(dev: torch.device) -> int:
    if dev.type == "cuda":
        return torch.cuda.mem_get_info(dev)[0]
    import os

    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def memory_cap(members: list[Member], free: int) -> int:
    """The most members that fit in MEMORY_SHARE of `free` bytes (`free_bytes(device)`; at least 1)."""
    return max(1, int(MEMORY_SHARE * free // max(member_bytes(members[0]), 1)))
