"""The stacked stepper: K ensemble members trained as one computation (see train/ensemble.py for what each
member keeps of its own and how it matches its solo run).

    params[name]: (K, *shape) leaves          the members' weights, stacked
    member.model: an nn.Module whose tensors are views of params[name][k] (events act on it in place)
    forward: (K, B, *in_shape) → (K, B, C)     `mlp_forward` (bmm) for Flatten/Linear/activation/Dropout
                                               stacks; `fused.fused_forward` (one grouped conv per layer,
                                               HFTA) for Sequential conv nets (convnet3, conv4); else
                                               torch.func: vmap(functional_call(base, ...)) (BN)
    optimizer: one registered `Optim` over the stacked leaves, (K,) hyperparameters (train/optim.py)
    dropout: masks[name]: (K, B, *feat)        drawn per step by `stacked_dropout.MemberMasks`, each member's
                                               as its solo run draws them

Members are matched to the stack by position (their parameters and buffers in order, shapes checked), not by
name: a member without dropout modules (mlp_uniform dropout=0 adds none) joins one with them as p = 0.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.func import functional_call, vmap

from genlab.losses import error_fn
from genlab.models.dropout import Dropout, dropout_layers
from genlab.train.evaluate import evaluate_splits, finish as finish_metrics, splits
from genlab.train.fused import fused_forward, is_fusable
from genlab.train.mlp_grads import ACT_GRAD, Masks, is_mlp, mlp_forward, mlp_grads
from genlab.train.optim import Optim
from genlab.train.stacked_dropout import MemberMasks
from genlab.models.rules import rule_of
from genlab.train.setup import autocast
from genlab.train.state import Member

FUSE = True  # Sequential conv nets by `fused_forward` (False: by vmap, as before; benchmarks compare the two)
# Conv members evaluated one by one, per device type: a solo evaluation is already one large-batch forward per
# split, where a fused one runs every conv grouped at a K times smaller batch and vmap adds its own cost. CPU,
# 1 thread, 8 members on digits' 1,797 points: Conv-4 c16 fused 50.6 ms vs one by one 45.5, ConvNet3-32 29.4
# vs 28.4; ResNet-20 (vmap) 1.72 vs 1.35 CPU-s over bench_ensemble.py's 2 epochs. Not measured on a GPU.
EVAL_ALONE = {"cpu": True}


class Stacked:
    """The stepper for K members (see the module docstring). Members must all be running when built."""

    def __init__(self, members: list[Member]):
        self.members = list(members)
        # the architecture: the member with the most dropout layers (p = 0 ones may have none); its own
        # tensors are never used, and its Dropout modules never draw (p = 0: the masks come from `self.dropout`)
        self.base = copy.deepcopy(max(members, key=lambda m: len(dropout_layers(m.model))).model)
        self.dropout = MemberMasks(self.base, members)  # the masks' layers; p per member and layer
        self.mlp = is_mlp(self.base) and rule_of(self.base) == "backprop"  # bmm/by hand: backprop only
        self.fused = FUSE and not self.mlp and is_fusable(self.base) and rule_of(self.base) == "backprop"
        self.cast = members[0].config.train.precision == "bf16"
        self.by_hand = self.mlp and members[0].loss.d_out is not None and all(
            type(m) in ACT_GRAD for m in self.base if not isinstance(m, (nn.Flatten, nn.Linear, Dropout)))
        for m in members:
            check_same_tensors(self.base, m)
        ps, bs = [list(m.model.parameters()) for m in members], [list(m.model.buffers()) for m in members]
        self.params = {n: torch.stack([p[j].detach() for p in ps]).requires_grad_()
                       for j, (n, _) in enumerate(self.base.named_parameters())}
        self.bufs = {n: torch.stack([b[j] for b in bs]) for j, (n, _) in enumerate(self.base.named_buffers())}
        self.dropout.measure(self.base, members[0])  # dropout name → the per-sample shape it sees
        self.opt = Optim([m.config.optim for m in members], list(self.params.values()))
        for k, m in enumerate(members):
            if m.resumed is not None:
                self.opt.load_member_state(k, m.resumed["optim"], list(self.params.values()))
        self._views()

    def optim_state(self, member: Member) -> dict:
        return self.opt.member_state(self.members.index(member))

    def _views(self) -> None:
        """Point each member's tensors at its slice of the stack (in-place events then act on the stack)."""
        for k, m in enumerate(self.members):  # by position: names differ where a member has no dropout layers
            for p, n in zip(m.model.parameters(), self.params):
                p.data = self.params[n].data[k]
            for b, n in zip(m.model.buffers(), self.bufs):
                b.data = self.bufs[n][k]

    def forward(self, params: dict[str, torch.Tensor], bufs: dict[str, torch.Tensor], x: torch.Tensor,
                shared_x: bool, masks: Masks | None = None) -> torch.Tensor:
        """x: (B, ...) shared by all members if `shared_x`, else (K, B, ...) → (K, B, C). `masks`: the step's
        dropout multipliers (training), none in evaluation."""
        k = next(iter(params.values())).shape[0]
        if self.mlp:
            return mlp_forward(self.base, params, x.unsqueeze(0).expand(k, *x.shape) if shared_x else x, masks)
        if self.fused:  # no dropout layers (is_fusable): no masks
            return fused_forward(self.base, params, bufs, x, shared_x)

        def call(p, b, xb, mk):  # one member; mk: its (B, *feat) multipliers, set as replays for this forward
            for name, d in self.dropout.layers:
                d.replay = mk.get(name)
            try:
                return functional_call(self.base, (p, b), (xb,))
            finally:
                for _, d in self.dropout.layers:
                    d.replay = None
        return vmap(call, in_dims=(0, 0, None if shared_x else 0, 0))(params, bufs, x, masks or {})

    def train_epoch(self, members: list[Member], epoch: int) -> tuple[list[bool], list[float]]:
        assert members == self.members, "the ensemble trains exactly its running members"
        K, m0 = len(members), members[0]
        bs, n = m0.config.train.batch_size, m0.data.n_train
        steps = math.ceil(n / bs)
        dev = m0.data.x_train.device
        shared = all(m.data.x_train is m0.data.x_train for m in members)
        perm = torch.stack([torch.randperm(n, generator=m.gens["shuffle"], device=dev) for m in members])  # (K, n)
        ys = torch.stack([m.data.y_train for m in members]).gather(1, perm)  # (K, n) labels in step order
        lrs = torch.tensor([[m.lr(epoch - 1 + s / steps) for m in members] for s in range(steps)],
                           dtype=next(iter(self.params.values())).dtype, device=dev)  # (steps, K)
        augment = m0.data.augment is not None
        bad = torch.zeros(K, dtype=torch.bool, device=dev)
        self.base.train()
        leaves = list(self.params.values())
        if shared and not augment:  # (K, n, ...) the epoch's inputs in step order; a batch is a view
            xs = m0.data.inputs(m0.data.x_train[perm.reshape(-1)])
            xs = xs.view(K, n, *xs.shape[1:])
        for s in range(steps):
            if shared and not augment:
                xb = xs[:, s * bs:(s + 1) * bs]
            else:  # per member: its own images, or its own augmentation draws (as its solo run makes them)
                xb = torch.stack([self._member_batch(m, perm[k, s * bs:(s + 1) * bs]) for k, m in enumerate(members)])
            yb = ys[:, s * bs:(s + 1) * bs]  # (K, B)
            masks = self.dropout.masks(members, yb.shape[1], dev)  # after the batch: a solo step augments, then drops
            with autocast(m0.config.train, dev):
                losses, grads = self._grads(xb, yb, m0, K, leaves, masks)
            self.opt.step(leaves, [g.float() for g in grads] if self.cast else grads, lrs[s])
            if losses is not None:
                bad |= ~torch.isfinite(losses.detach())
        if self.by_hand:  # no loss values were made: a step with a non-finite loss leaves non-finite weights
            for p in leaves:
                bad |= ~torch.isfinite(p.detach()).flatten(1).all(1)
        return [not b for b in bad.tolist()], lrs[-1].tolist()  # the epoch's one host sync

    def _grads(self, xb: torch.Tensor, yb: torch.Tensor, m0: Member, K: int, leaves: list[torch.Tensor],
               masks: Masks):
        """(per-member losses (K,) or None, gradients in the order of self.params) for one step's batch."""
        if self.by_hand:
            with torch.no_grad():
                _, g = mlp_grads(self.base, self.params, xb, yb, m0.loss, with_loss=False, masks=masks)
            return None, [g[n] for n in self.params]
        out = self.forward(self.params, self.bufs, xb, shared_x=False, masks=masks)  # (K, B, C)
        B = out.shape[1]
        losses = m0.loss.per_sample(out.reshape(K * B, -1), yb.reshape(-1)).view(K, B).mean(1)
        return losses, torch.autograd.grad(losses.sum(), leaves)  # member k's gradient is in slice k

    @staticmethod
    def _member_batch(m: Member, idx: torch.Tensor) -> torch.Tensor:
        xb = m.data.inputs(m.data.x_train[idx])
        return m.data.augment(xb, m.gens["augment"]) if m.data.augment is not None else xb

    def evaluate(self, members: list[Member]) -> list[dict[str, float]]:
        """Loss and error per split for `members` (a subset of the stack): all members in one stacked forward,
        or, for conv nets where EVAL_ALONE says so, each member's own net (its tensors are views of the stack)
        evaluated as its solo run evaluates it — the same numbers."""
        device = next(iter(self.params.values())).device.type
        if not self.mlp and EVAL_ALONE.get(device, False):
            return [evaluate_splits(m.model, m.data, m.loss, m.config.train.eval_batch_size) for m in members]
        return evaluate_stacked(self, members)

    def drop(self, members: list[Member]) -> None:
        """Compact the stack to the members still running (stopped members keep their views of the old one)."""
        keep = [k for k, m in enumerate(self.members) if m not in members]
        if not keep:
            self.members = []
            return
        idx = torch.tensor(keep, device=next(iter(self.params.values())).device)
        self.members = [self.members[k] for k in keep]
        self.params = {n: p.detach()[idx].clone().requires_grad_() for n, p in self.params.items()}
        self.bufs = {n: b[idx].clone() for n, b in self.bufs.items()}
        self.opt.keep(idx)
        self._views()
        self.dropout.keep(self.members)


def check_same_tensors(base: nn.Module, m: Member) -> None:
    """Member m's parameters and buffers, in order, have the shapes of the stack's architecture."""
    shapes = lambda mod: ([tuple(p.shape) for p in mod.parameters()], [tuple(b.shape) for b in mod.buffers()])  # noqa: E731
    if shapes(base) != shapes(m.model):
        raise ValueError(f"run {m.config.experiment}/seed {m.config.seed} does not have the ensemble's "
                         f"architecture (parameter and buffer shapes differ): model {m.config.model.name} "
                         f"{m.config.model.options}")


@torch.no_grad()
def evaluate_stacked(stack: Stacked, members: list[Member]) -> list[dict[str, float]]:
    """Loss and error per split for `members` (a subset of the stack), all members in one stacked forward per
    batch; per member the numbers its solo evaluation gives (train/evaluate.py)."""
    idx = torch.tensor([stack.members.index(m) for m in members], device=next(iter(stack.params.values())).device)
    params = {n: p.detach()[idx] for n, p in stack.params.items()}
    bufs = {n: b[idx] for n, b in stack.bufs.items()}
    m0, K = members[0], len(members)
    stack.base.eval()
    errs = error_fn(m0.loss, m0.data.num_classes)
    bs = m0.config.train.eval_batch_size  # K members per forward; for conv nets K times smaller: solo's memory
    bs = bs if stack.mlp else max(1, bs // K)
    rows: list[dict[str, float]] = [{} for _ in members]
    for split, (x0, _) in splits(m0.data).items():
        xs = [splits(m.data)[split][0] for m in members]
        ys = torch.stack([splits(m.data)[split][1] for m in members])  # (K, n)
        shared = all(x is x0 for x in xs)
        dev = x0.device
        total = torch.zeros(K, dtype=torch.float64, device=dev)
        wrong = torch.zeros(K, dtype=torch.int64, device=dev)
        bad = torch.zeros(K, dtype=torch.bool, device=dev)
        for i in range(0, len(x0), bs):
            xb = m0.data.inputs(x0[i:i + bs]) if shared else torch.stack([m.data.inputs(x[i:i + bs])
                                                                            for m, x in zip(members, xs)])
            out = stack.forward(params, bufs, xb, shared_x=shared)  # (K, B, C)
            B = out.shape[1]
            yb = ys[:, i:i + bs].reshape(-1)
            flat = out.reshape(K * B, -1)
            total += m0.loss.per_sample(flat, yb).view(K, B).double().sum(1)
            bad |= ~torch.isfinite(out).flatten(1).all(1)
            if errs is not None:
                wrong += errs(flat, yb).view(K, B).sum(1)
        for k in range(K):
            r = finish_metrics(total[k], wrong[k], bad[k], len(x0), errs is not None)
            rows[k][f"{split}_loss"], rows[k][f"{split}_error"] = r["loss"], r["error"]
    stack.base.train()
    return rows

