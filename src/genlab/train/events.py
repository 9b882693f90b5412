"""Things done to the weights between epochs: Gaussian perturbation, cosine similarity to a reference."""

from __future__ import annotations

import torch
from torch import nn


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


def run_generator(seed: int, run_id: str) -> torch.Generator:
    """A CPU generator of perturbation noise for one run (events.perturb_draw = "per_run"): seeded by the
    seed and the run id, so runs of a perturb_std sweep draw different directions, reproducibly."""
    import numpy as np

    ss = np.random.SeedSequence([seed, int(run_id, 16)])
    return torch.Generator().manual_seed(int(ss.generate_state(1)[0]))
