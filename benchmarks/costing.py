"""Shared timers for the full-profile cost scripts (cost_002_tweaks.py, cost_003_hw0.py, cost_004_capacity.py).

CPU seconds (`time.process_time`) with one torch thread: on a shared machine they stay close to what an idle
core's wall clock would give. Synthetic inputs: the speed of these nets does not depend on the pixel values.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

CLOCK = time.process_time


def step_seconds(model: torch.nn.Module, shape: tuple[int, ...], batch: int, steps: int,
                 optimizer: str = "sgd", lr: float = 0.01, warmup: int = 2) -> float:
    """Mean seconds of one training step (forward, cross-entropy, backward, update) at `batch`."""
    opt = (torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=lr))
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    model.train()
    for i in range(steps + warmup):
        if i == warmup:
            t0 = CLOCK()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (CLOCK() - t0) / steps


@torch.no_grad()
def eval_seconds_per_image(model: torch.nn.Module, shape: tuple[int, ...], batch: int = 1000, reps: int = 2) -> float:
    """Mean seconds per image of an eval-mode forward pass in batches of `batch` (after one warm-up)."""
    model.eval()
    x = torch.randn(batch, *shape)
    model(x)
    t0 = CLOCK()
    for _ in range(reps):
        model(x)
    return (CLOCK() - t0) / (batch * reps)
