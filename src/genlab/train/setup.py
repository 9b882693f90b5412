"""What every trainer builds from a `RunConfig` before its first step: device, generators, data, model, loss.

Used by the solo trainer, the ensemble trainer and the measure command (which rebuilds a run's data), so a
member of an ensemble starts from exactly the weights and draws a solo run of the same config would.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from genlab.data import Dataset, build_dataset
from genlab.losses import Loss, get_loss
from genlab.models import create_model
from genlab.models.dropout import attach_dropout
from genlab.models.init import initialize
from genlab.spec import RunConfig, TrainSpec
from genlab.models.rules import apply_rule, rule_generator  # its own seed stream, apart from STREAMS

# One independent generator each. SeedSequence.spawn's i-th child does not depend on how many are spawned, so
# a stream added at the END leaves the others' seeds as they were; never reorder or insert.
STREAMS = ("init", "shuffle", "augment", "perturb", "dropout")
ON_DEVICE = ("shuffle", "augment", "dropout")  # drawn where the batches are; the others on the CPU


def generators(seed: int, device: torch.device) -> dict[str, torch.Generator]:
    """Independent torch generators per purpose, from one seed (numpy's SeedSequence spawning).

    Shuffling, augmentation and dropout masks draw on the training device (no host round trip per step);
    init and perturbation draw on the CPU so that a seed gives the same weights on every device.
    """
    kids = np.random.SeedSequence(seed).spawn(len(STREAMS))
    out = {}
    for name, ss in zip(STREAMS, kids):
        dev = device if name in ON_DEVICE else torch.device("cpu")
        out[name] = torch.Generator(device=dev).manual_seed(int(ss.generate_state(1)[0]))
    return out


SPAWNED = ("shuffle", "augment", "dropout")  # the SGD noise a spawned child draws afresh (Frankle et al. 2020)


def spawn(gens: dict[str, torch.Generator], seed: int, spawn_seed: int) -> None:
    """Reseed the run's SGD-noise streams (data order, augmentation, dropout) from (seed, spawn_seed): from here
    on the child's noise is its own, while init and perturbations keep the run's streams."""
    kids = np.random.SeedSequence([seed, spawn_seed, 0x5BA3]).spawn(len(SPAWNED))
    for name, ss in zip(SPAWNED, kids):
        gens[name].manual_seed(int(ss.generate_state(1)[0]))


def run_generator(seed: int, run_id: str) -> torch.Generator:
    """A CPU generator of perturbation noise for one run (events.perturb_draw = "per_run"): seeded by the
    seed and the run id, so the runs of a perturb_std sweep draw different directions, reproducibly."""
    ss = np.random.SeedSequence([seed, int(run_id, 16)])
    return torch.Generator().manual_seed(int(ss.generate_state(1)[0]))


def resolve_device(device: str) -> torch.device:
    """"cpu", "cuda", "cuda:N" or "auto" (cuda when torch sees one) → a torch.device, or a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device; use --device cpu")
    return torch.device(device)


def check_device_options(train: TrainSpec, dev: torch.device) -> None:
    """train.precision = "bf16" and compile are for CUDA; on a CPU they are refused, not ignored. (channels_last
    runs anywhere: on a CPU it speeds some conv nets' steps up, README "Ensembles".)"""
    asked = [name for name, on in (("precision = 'bf16'", train.precision == "bf16"),
                                   ("compile", train.compile)) if on]
    if asked and dev.type != "cuda":
        raise ValueError(f"train.{asked[0]} needs a CUDA device, but this run is on {dev}: run it with "
                         "--device cuda, or leave it off (--set train.precision=float32 ...)")


def autocast(train: TrainSpec, dev: torch.device):
    """The forward pass's autocast context: bf16 when train.precision asks for it (CUDA), else a no-op."""
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=train.precision == "bf16")


def build(config: RunConfig, device: torch.device) -> tuple[Dataset, nn.Module, Loss, dict[str, torch.Generator]]:
    """Data (on `device`), an initialized model and the loss for a config, plus the run's generators."""
    data = build_dataset(config.data.name, **config.data.options).to(device)
    loss = get_loss(config.train.loss)
    gens = generators(config.seed, device)
    if config.events.perturb_draw == "per_run":  # each run of a perturb_std sweep its own noise direction
        gens["perturb"] = run_generator(config.seed, config.run_id)
    torch.manual_seed(config.seed)  # PyTorch's own default init draws from the global generator
    model = create_model(config.model.name, data.in_shape, loss.num_outputs(data.num_classes), **config.model.options)
    initialize(model, config.init.name, gens["init"], options=config.init.options, bias=config.init.bias,
               scale=config.init.scale)
    model = apply_rule(model, config.train.rule, rule_generator(config.seed), **config.train.rule_options)
    attach_dropout(model, gens["dropout"])  # masks from the run's own stream: an ensemble member replays them
    return data, model.to(device), loss, gens
