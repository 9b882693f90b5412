"""The training loop: one `RunConfig` in, metrics per epoch and a result out.

    data → model → init → optimizer; epoch 0 = evaluation at initialization; then for each epoch:
    steps over a seeded permutation → save reference → eval → perturb (→ eval again) → stop rules.

With a [constraint] (000 ch. 5, train/weightnorm.py) the model is trained as ρ·f_V, the Lagrange penalty is
added to each batch loss, λ is updated after each step, and the projection happens at the end of each epoch
(before its evaluation); checkpoints and measures see the plain net with ρ folded into its output layer.

An epoch with a perturbation has two rows in the history: the one before it and one with event="perturb".

Everything random draws from generators derived from `config.seed`, so the same config gives the same
numbers on the CPU. A non-finite loss ends the run as "diverged", with its history kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from genlab.data import Dataset, build_dataset
from genlab.models import count_params, create_model
from genlab.models.init import initialize
from genlab.spec import RecordSpec, RunConfig
from genlab.train.events import cosine, flat_params, perturb
from genlab.losses import Loss, error_fn, get_loss
from genlab.train.optim import build_optimizer, schedule_fn, set_lr
from genlab.train.weightnorm import hook_for, plain

Progress = Callable[[int, int], None]  # (epochs done, epochs total)
STREAMS = ("init", "shuffle", "augment", "perturb")  # one independent generator each


def generators(seed: int, device: torch.device) -> dict[str, torch.Generator]:
    """Independent torch generators per purpose, from one seed (numpy's SeedSequence spawning)."""
    kids = np.random.SeedSequence(seed).spawn(len(STREAMS))
    out = {}
    for name, ss in zip(STREAMS, kids):
        dev = device if name in ("shuffle", "augment") else torch.device("cpu")
        out[name] = torch.Generator(device=dev).manual_seed(int(ss.generate_state(1)[0]))
    return out


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device; use --device cpu")
    return torch.device(device)


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, x: torch.Tensor, y: torch.Tensor, loss: Loss,
             batch_size: int) -> dict[str, float]:
    """Mean loss and error rate over (x, y), in eval mode."""
    was_training = model.training
    model.eval()
    errs = error_fn(loss, data.num_classes)
    total, wrong = 0.0, 0
    for i in range(0, len(x), batch_size):
        out = model(data.inputs(x[i:i + batch_size]))
        yb = y[i:i + batch_size]
        total += float(loss.per_sample(out, yb).sum())
        if errs is not None:
            wrong += int(errs(out, yb).sum())
    model.train(was_training)
    n = max(len(x), 1)
    return {"loss": total / n, "error": wrong / n if errs is not None else float("nan")}


def build(config: RunConfig, device: torch.device) -> tuple[Dataset, nn.Module, Loss, dict[str, torch.Generator]]:
    """Data, an initialized model and the loss for a config (also what measures use to rebuild a run)."""
    data = build_dataset(config.data.name, **config.data.options).to(device)
    loss = get_loss(config.train.loss)
    gens = generators(config.seed, device)
    torch.manual_seed(config.seed)  # PyTorch's own default init draws from the global generator
    model = create_model(config.model.name, data.in_shape, loss.num_outputs(data.num_classes), **config.model.options)
    initialize(model, config.init.name, gens["init"], options=config.init.options, bias=config.init.bias,
               scale=config.init.scale)
    return data, model.to(device), loss, gens


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


def train(config: RunConfig, *, device: str = "cpu", log: Callable[[dict], None] | None = None,
          save: Callable[[str, dict], None] | None = None, progress: Progress | None = None) -> Outcome:
    """Train one run. `log(row)` receives each epoch's metrics; `save(name, state_dict)` checkpoints."""
    dev = resolve_device(device)
    data, model, loss, gens = build(config, dev)
    tr, ev, rec = config.train, config.events, config.record
    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}  # for distance-from-init
    wn = hook_for(config.constraint)  # weight-normalized training (000 ch. 5), None for plain training
    model = wn.wrap(model) if wn else model
    opt = build_optimizer(model.parameters(), config.optim)
    factor = schedule_fn(config.schedule, tr.epochs)
    save = save or (lambda name, state: None)
    if rec.save_init:
        save("init", init_state)

    history: list[dict[str, Any]] = []
    ref: torch.Tensor | None = None

    def record(epoch: int, lr: float, extra: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {"epoch": epoch, "lr": lr, **extra}
        for split, (x, y) in {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test),
                              **data.extra_tests}.items():
            m = evaluate(model, data, x, y, loss, tr.eval_batch_size)
            row[f"{split}_loss"], row[f"{split}_error"] = m["loss"], m["error"]
        if ref is not None:
            row["cosine"] = cosine(flat_params(model), ref)
        history.append(row)
        if log:
            log(row)
        return row

    record(0, config.optim.lr * factor(0.0), {})
    n, bs = data.n_train, tr.batch_size
    steps = math.ceil(n / bs)
    status, reason, epoch = "completed", "max_epochs", 0
    for epoch in range(1, tr.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gens["shuffle"], device=dev)
        xs, ys = data.x_train[perm], data.y_train[perm]  # (n, ...) shuffled copies; batches are views
        lr, diverged = config.optim.lr, False
        for s in range(steps):
            lr = config.optim.lr * factor(epoch - 1 + s / steps)
            set_lr(opt, lr)
            xb = data.inputs(xs[s * bs:(s + 1) * bs])
            if data.augment is not None:
                xb = data.augment(xb, gens["augment"])
            l = loss(model(xb), ys[s * bs:(s + 1) * bs])
            if wn:
                l = l + wn.loss_term(model)
            opt.zero_grad(set_to_none=True)
            l.backward()
            opt.step()
            if wn:
                wn.after_step(model)
            if not torch.isfinite(l):
                diverged = True
                break
        epoch_s = time.perf_counter() - t0
        constraint = wn.end_epoch(model) if wn and not diverged else {}  # projection; norms, log ρ, λ
        if ev.cosine_ref_epoch == epoch:
            ref = flat_params(model).clone()  # saved before this epoch's perturbation: cosine here is 1
        row = record(epoch, lr, {"epoch_s": epoch_s, **constraint,
                                 **(measure(plain(model), data, loss, init_state, rec)
                                    if epoch in rec.measure_epochs and not diverged else {})})
        if epoch in ev.perturb_epochs and ev.perturb_std > 0 and not diverged:
            perturb(model, ev.perturb_std, gens["perturb"])
            row = record(epoch, lr, {"event": "perturb"})  # a second row at this epoch: the jump itself
        if epoch in rec.checkpoint_epochs:
            save(f"epoch_{epoch}", plain(model).state_dict())
        if diverged or not math.isfinite(row["train_loss"]):
            status, reason = "diverged", "non_finite_loss"
            break
        if progress:
            progress(epoch, tr.epochs)
        if tr.stop_at_zero_error and row["train_error"] == 0:
            reason = "zero_train_error"
            break
        if tr.stop_below_loss is not None and row["train_loss"] < tr.stop_below_loss:
            reason = "train_loss_below"
            break
    model = plain(model)  # ρ folded into the output layer: the registered architecture, same function
    if rec.checkpoint == "final":
        save("final", model.state_dict())
    tensors = {k: v.cpu() for k, v in data.info.items() if isinstance(v, torch.Tensor)}
    if tensors:  # label-corruption masks and true labels: too long for JSON
        save("data_info", tensors)
    measures = measure(model, data, loss, init_state, rec) if rec.measures and status == "completed" else {}
    return Outcome(status, reason, epoch, history, model, measures, per_class(model, data, loss),
                   {k: v for k, v in data.info.items() if not isinstance(v, torch.Tensor)})


def per_class(model: nn.Module, data: Dataset, loss: Loss) -> dict[str, list[float]]:
    """Per-class test accuracy (and on each extra test set, e.g. flipped), for argmax classifiers."""
    if data.num_classes is None or loss.num_outputs(data.num_classes) != data.num_classes:
        return {}  # regression, or one-output binary losses
    from genlab.data.labels import per_class_accuracy

    splits = {"test": (data.x_test, data.y_test), **data.extra_tests}
    return {k: per_class_accuracy(model, data, x, y).tolist() for k, (x, y) in splits.items()}


def measure(model: nn.Module, data: Dataset, loss: Loss, init_state: dict, rec: RecordSpec) -> dict[str, float]:
    """`rec.measures` of the current weights, with `rec.measure_options`, on a copy in `rec.measure_dtype`."""
    if not rec.measures:
        return {}
    from genlab.measures import MeasureData, compute, get_measure, parse_dtype
    from genlab.registry import options_model

    options = {name: dict(options_model(get_measure(name), name).model_validate(opts))
               for name, opts in rec.measure_options.items()}  # JSON → typed (e.g. a config dataclass)
    return compute(list(rec.measures), model, MeasureData.from_dataset(data, loss, init_state=init_state),
                   options=options, dtype=parse_dtype(rec.measure_dtype))


def summary(outcome: Outcome, config: RunConfig, wall_s: float) -> dict[str, Any]:
    """result.json's content: status, stop reason, last epoch's metrics, sizes, timing."""
    last = {k: v for k, v in outcome.history[-1].items() if k not in ("epoch", "event", "lr", "epoch_s")}
    return {"status": outcome.status, "stop_reason": outcome.stop_reason, "epochs_run": outcome.epochs_run,
            "n_params": count_params(outcome.model), "wall_s": wall_s, "final": last, "measures": outcome.measures,
            "per_class_accuracy": outcome.per_class, "data": outcome.data_info}
