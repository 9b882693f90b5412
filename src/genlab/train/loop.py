"""The epoch loop, shared by every trainer: `fit(members, stepper)`; and `train`, one solo run.

    epoch 0 = evaluation at initialization; then for each epoch, for the members still running:
    stepper.train_epoch (steps over each member's seeded permutation) → events.end_epoch (project, reference,
    measures, evaluate, perturbation, checkpoint) → stopping.stop_rule → a stopped member is finished.

A stepper holds how members are trained and evaluated: `Solo` here (one nn.Module and its registered
optimizer, train/optim.py; the [constraint] hooks), `stacked.Stacked` (K members as one stacked computation). Everything random draws
from generators derived from `config.seed`, so the same config gives the same numbers on the CPU. There is no
host↔device sync inside an epoch: a non-finite loss is noticed at its end and ends the run as "diverged",
with its history kept.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable, Protocol

import torch
from torch import nn

from genlab import interrupt
from genlab.losses import Loss
from genlab.spec import RunConfig
from genlab.train.evaluate import evaluate_splits, measure, per_class
from genlab.train.events import Evaluate, end_epoch
from genlab.train.optim import Optim, lr_fn
from genlab.train.setup import autocast, build, check_device_options, generators, resolve_device, spawn  # noqa: F401
from genlab.train import resume
from genlab.train.state import Log, Member, Outcome, Progress, Save, SaveResume, summary  # noqa: F401
from genlab.train.stopping import stop_rule
from genlab.train.constraints import Hook, hook_for, plain


class Stepper(Protocol):
    def train_epoch(self, members: list[Member], epoch: int) -> tuple[list[bool], list[float]]:
        """Train `members` (all running) for one epoch; per member: all losses finite, the last step's lr."""

    def evaluate(self, members: list[Member]) -> list[dict[str, float]]:
        """Per member: {split_loss, split_error} of its current weights."""

    def drop(self, members: list[Member]) -> None:
        """Stop training these members (they have stopped); the others go on."""

    def optim_state(self, member: Member) -> dict:
        """The optimizer state of one member, canonical (train/resume.py: the same whatever the trainer)."""


def new_member(config: RunConfig, dev: torch.device, *, wrap: bool = True, log: Log | None = None,
               save: Save | None = None, progress: Progress | None = None, save_resume: SaveResume | None = None,
               resumed: dict | None = None) -> Member:
    """Build a run's data and initialized model; save init.pt. `wrap` applies the [constraint] (solo only).
    With `resumed` (a snapshot of this config), the member continues from it instead."""
    check_device_options(config.train, dev)
    data, model, loss, gens = build(config, dev)
    if config.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}  # for distance-from-init
    wn = hook_for(config.constraint) if wrap else None  # weight-normalized training (000 ch. 5)
    m = Member(config, data, wn.wrap(model) if wn else model, loss, gens, init_state,
               lr_fn(config.optim, config.schedule, config.train.epochs), wn, log, save, progress, save_resume,
               resumed)
    if resumed is not None:
        try:
            resume.restore(m, resumed)
        except resume.Foreign as e:
            e.run_id = config.run_id  # which member's snapshot (the executors set it aside and start it over)
            raise
    elif config.record.save_init and save:
        save("init", init_state)
    return m


def fit(members: list[Member], stepper: Stepper, on_finish: Callable[[int, Outcome], None] | None = None
        ) -> list[Outcome]:
    """Train every member to its stop; `on_finish(i, outcome)` as each one ends. Returns the outcomes."""
    outcomes: list[Outcome | None] = [None] * len(members)
    start = members[0].epoch  # > 0 when resumed from a snapshot
    if any(m.epoch != start for m in members):
        raise ValueError(f"members resumed at different epochs {[m.epoch for m in members]}; train them apart")
    if start == 0:
        for m, metrics in zip(members, stepper.evaluate(members)):
            m.record({"epoch": 0, "lr": m.lr(0.0), **metrics})
    last_snapshot = time.perf_counter()
    for epoch in range(start + 1, max(m.config.train.epochs for m in members) + 1):
        active = [m for m in members if m.running]
        if not active:
            break
        for m in active:  # spawned children part after their parent's epoch k (events.spawn_epoch)
            if m.config.events.spawn_epoch == epoch - 1:
                spawn(m.gens, m.config.seed, m.config.events.spawn_seed)
        t0 = time.perf_counter()
        finite, lrs = stepper.train_epoch(active, epoch)
        rows = end_epoch(active, epoch, lrs, finite, time.perf_counter() - t0, stepper.evaluate)
        stopped = []
        for m, r, ok in zip(active, rows, finite):
            m.epoch = epoch
            if ok and math.isfinite(r["train_loss"]) and m.progress:
                m.progress(epoch, m.config.train.epochs)
            rule = stop_rule(r, epoch, ok, m.config.train)
            if rule:
                m.status, m.stop_reason = rule
                stopped.append(m)
        if stopped:
            stepper.drop(stopped)
        for m in stopped:
            i = members.index(m)
            outcomes[i] = finish(m)
            if on_finish:
                on_finish(i, outcomes[i])
        since = time.perf_counter() - last_snapshot
        for m in members:
            if m.running and m.save_resume and resume.due(m, epoch, since):
                resume.write_snapshot(m, stepper)
                last_snapshot = time.perf_counter()
        if interrupt.requested() and any(m.running for m in members):
            raise pause(members, stepper)
    for i, m in enumerate(members):  # epochs = 0: nothing trained
        if outcomes[i] is None:
            m.status, m.stop_reason = "completed", "max_epochs"
            outcomes[i] = finish(m)
            if on_finish:
                on_finish(i, outcomes[i])
    return outcomes  # type: ignore[return-value]


def pause(members: list[Member], stepper: Stepper) -> interrupt.Interrupted:
    """Ctrl-C (genlab.interrupt): a resume snapshot of every running member after its last finished epoch."""
    for m in members:
        if m.running and m.save_resume:
            m.save_resume(resume.snapshot(m, stepper.optim_state(m)))
    return interrupt.Interrupted({m.config.run_id: m.epoch for m in members if m.running})


def finish(m: Member) -> Outcome:
    """Final checkpoint, label-corruption facts, measures (completed runs only) and per-class accuracy."""
    model = plain(m.model)  # ρ folded into the output layer: the registered architecture, same function
    rec = m.config.record
    if rec.checkpoint == "final":
        m.checkpoint("final", model)
    tensors = {k: v.cpu() for k, v in m.data.info.items() if isinstance(v, torch.Tensor)}
    if tensors and m.save:  # label-corruption masks and true labels: too long for JSON
        m.save("data_info", tensors)
    done = m.status == "completed"
    measures = measure(model, m.data, m.loss, m.init_state, rec) if rec.measures and done else {}
    sizes = {"n_train": len(m.data.y_train), "n_test": len(m.data.y_test)}  # every data set: how noisy its errors are
    return Outcome(m.status, m.stop_reason, m.epoch, m.history, model, measures,
                   per_class(model, m.data, m.loss) if done else {},
                   {**sizes, **{k: v for k, v in m.data.info.items() if not isinstance(v, torch.Tensor)}})


def step(model: nn.Module, params: list[nn.Parameter], opt: Optim, loss: Loss, xb: torch.Tensor, yb: torch.Tensor,
         lr: torch.Tensor, wn: Hook | None = None, cast=contextlib.nullcontext) -> torch.Tensor:
    """One optimizer step of `params` (the model's) on a batch at learning rate `lr` (0-d); returns the batch
    loss (detached, 0-d). `cast()` is the forward's autocast context (bf16 on CUDA when asked for)."""
    with cast():
        l = loss(model(xb), yb)
    if wn:
        l = l + wn.loss_term(model)  # the Lagrange penalty
    for p in params:
        p.grad = None
    l.backward()
    opt.step(params, [p.grad for p in params], lr)
    if wn:
        wn.after_step(model)  # λ ascent
    return l.detach()


class Solo:
    """One member: its nn.Module and its registered optimizer (0-d hyperparameters), one batch at a time."""

    def __init__(self, member: Member):
        self.params = list(member.model.parameters())
        self.opt = Optim(member.config.optim, self.params)
        tr, dev = member.config.train, member.data.x_train.device
        self.net = torch.compile(member.model) if tr.compile else member.model  # same parameters
        # built once: a no-op unless bf16 is asked for (an autocast context made per step cost +3 % of a step)
        self.cast = (lambda: autocast(tr, dev)) if tr.precision == "bf16" else contextlib.nullcontext  # noqa: E731
        self.channels_last = tr.channels_last
        if member.resumed is not None:
            self.opt.load_member_state(None, member.resumed["optim"], self.params)

    def optim_state(self, member: Member) -> dict:
        return self.opt.member_state()  # copies: training goes on after it

    def train_epoch(self, members: list[Member], epoch: int) -> tuple[list[bool], list[float]]:
        (m,) = members
        data, bs = m.data, m.config.train.batch_size
        n = data.n_train
        steps = math.ceil(n / bs)
        m.model.train()
        perm = torch.randperm(n, generator=m.gens["shuffle"], device=data.x_train.device)
        xs, ys = data.x_train[perm], data.y_train[perm]  # (n, ...) shuffled copies; batches are views
        losses = []  # the steps' 0-d losses, checked once at the epoch's end (a per-step isfinite: +14 % a step)
        lr_of = [m.lr(epoch - 1 + s / steps) for s in range(steps)]  # the steps' learning rates
        p0 = self.params[0]  # … as 0-d tensors, made at once for the epoch
        lrs = torch.tensor(lr_of, dtype=p0.dtype, device=p0.device).unbind()
        for s in range(steps):
            xb = data.inputs(xs[s * bs:(s + 1) * bs])
            if data.augment is not None:
                xb = data.augment(xb, m.gens["augment"])
            if self.channels_last and xb.dim() == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            losses.append(step(self.net, self.params, self.opt, m.loss, xb, ys[s * bs:(s + 1) * bs], lrs[s], m.wn,
                               self.cast))
        ok = not losses or bool(torch.isfinite(torch.stack(losses)).all())  # the epoch's one host sync
        return [ok], [lr_of[-1] if lr_of else m.lr(epoch - 1)]

    def evaluate(self, members: list[Member]) -> list[dict[str, float]]:
        return [evaluate_splits(m.model, m.data, m.loss, m.config.train.eval_batch_size) for m in members]

    def drop(self, members: list[Member]) -> None:
        pass


def train(config: RunConfig, *, device: str = "cpu", log: Log | None = None, save: Save | None = None,
          progress: Progress | None = None, save_resume: SaveResume | None = None,
          resumed: dict | None = None) -> Outcome:
    """Train one run. `log(row)` receives each epoch's metrics; `save(name, state_dict)` checkpoints;
    `save_resume(snapshot)` stores resume states; `resumed` continues from one."""
    m = new_member(config, resolve_device(device), log=log, save=save, progress=progress, save_resume=save_resume,
                   resumed=resumed)
    return fit([m], Solo(m))[0]


__all__ = ["Evaluate", "Member", "Outcome", "Solo", "build", "fit", "finish", "new_member", "step", "summary",
           "train"]
