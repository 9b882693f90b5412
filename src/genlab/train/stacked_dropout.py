"""Dropout for stacked ensemble members: each step's masks, drawn outside the stacked computation.

    masks[name]: (K, B, *feat)     drawn member by member from its own "dropout" generator with the calls its
                                   solo run makes (`models.dropout.multiplier`, forward order), so member k's
                                   masks are its solo run's; p may differ per member (0: ones, nothing drawn);
                                   applied by `mlp_forward`/`mlp_grads` (forward and hand-written backward) or,
                                   under vmap, as `Dropout.replay`

The stack's architecture keeps its Dropout modules at p = 0 with no generator: they never draw themselves.
"""

from __future__ import annotations

import torch
from torch import nn

from genlab.measures.layers import run_with_hooks
from genlab.models.dropout import dropout_layers, multiplier
from genlab.train.mlp_grads import Masks
from genlab.train.state import Member


class MemberMasks:
    """The dropout layers of the stack's architecture `base` and each member's p per layer."""

    def __init__(self, base: nn.Module, members: list[Member]):
        self.layers = dropout_layers(base)  # [(name, module)] in forward order
        for _, d in self.layers:
            d.p, d.gen = 0.0, None
        self.p = {m: member_dropout(m, len(self.layers)) for m in members}  # member → p per dropout layer
        self.feat: dict[str, tuple[int, ...]] = {}

    def measure(self, base: nn.Module, m: Member) -> None:
        """Learn each layer's per-sample input shape (once the members are known to share `base`'s tensors)."""
        self.feat = drop_shapes(base, m)

    def masks(self, members: list[Member], B: int, dev: torch.device) -> Masks:
        """This step's dropout multipliers, {name: (K, B, *feat)}: member by member, layer by layer in forward
        order, each drawn from the member's own generator exactly as its solo forward draws it (p = 0: ones,
        no draw, as the solo module). {} when no member drops anything."""
        if not any(map(any, self.p.values())):
            return {}
        per = [self._member_masks(m, B, dev) for m in members]  # [k][layer]: (B, *feat)
        return {name: torch.stack([row[j] for row in per]) for j, (name, _) in enumerate(self.layers)}

    def _member_masks(self, m: Member, B: int, dev: torch.device) -> list[torch.Tensor]:
        """Member m's multipliers for one step, one per dropout layer in forward order: its solo forward's draws."""
        out = []
        for (name, _), p in zip(self.layers, self.p[m]):
            shape = (B, *self.feat[name])
            out.append(multiplier(shape, p, m.gens["dropout"], dev) if p > 0 else torch.ones(shape, device=dev))
        return out

    def keep(self, members: list[Member]) -> None:
        """Forget the members that stopped."""
        self.p = {m: self.p[m] for m in members}


def member_dropout(m: Member, n: int) -> list[float]:
    """Member m's drop probability per dropout layer of the stack's `n` (all 0 when it has no dropout layers)."""
    ps = [d.p for _, d in dropout_layers(m.model)]
    if ps and len(ps) != n:
        raise ValueError(f"run {m.config.experiment}/seed {m.config.seed} has {len(ps)} dropout layers, the "
                         f"ensemble's architecture {n}: model options {m.config.model.options}")
    return ps or [0.0] * n


def drop_shapes(base: nn.Module, m: Member) -> dict[str, tuple[int, ...]]:
    """Dropout name → the per-sample shape of its input (what a mask's (B, *feat) needs), from one forward
    of one training sample through `base` (eval mode, no grad: no statistics or generators touched)."""
    names = {d: n for n, d in dropout_layers(base)}
    if not names:
        return {}
    seen: dict[str, tuple[int, ...]] = {}

    def hook(mod: nn.Module, inp: tuple, _out: torch.Tensor) -> None:
        if mod in names:
            seen[names[mod]] = tuple(inp[0].shape[1:])

    run_with_hooks(base, m.data.inputs(m.data.x_train[:1]), hook)
    return seen
