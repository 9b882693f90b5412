"""Mid-run resume: a run's whole training state as plain data, and putting it back.

A snapshot holds the epoch, the history (its rows), the weights (as trained: ρ·f_V under a constraint), the
optimizer state, every generator (the run's `gens`: init, shuffle, augment, perturb, dropout; torch's global
and CUDA ones, numpy's and Python's), the cosine reference and the Lagrange multipliers — only tensors, ints,
floats, strings, None, lists and dicts, so `torch.load(weights_only=True)` reads it and no store file is ever
unpickled (runfiles.pack_resume adds a SHA-256 over the bytes, checked before use).

One format whatever trained the run: a solo run and an ensemble member write the same snapshot (the member's
slice of the stacked optimizer is a solo optimizer state), so a snapshot resumes under either trainer:

    optim = {"name": a registered optimizer (train/optim.py: "sgd" | "adam" | "manhattan" | …),
             "t": steps taken (Adam's bias correction; 0 where the optimizer keeps no count),
             "bufs": per parameter (model.parameters() order): momentum buffer / Adam's first moment, or None,
             "sq":   per parameter: Adam's second moment, or None}

    (the registered entry's `OptState`, as its `plain` keeps it: both trainers hold the same entry)

Restored into a freshly built member of the same config by the same trainer, training goes on exactly as if it
had never stopped (bit-identical on the CPU); by the other trainer, to the float tolerance that separates a solo
run from its ensemble member (tests/test_resume_switch.py).

`write_snapshot(member, stepper)` is the one place a snapshot is taken and stored (the epoch loop calls it).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from genlab.train.state import Member
from genlab.train.constraints import LagrangeState

VERSION = 2  # 1: the pickled format before plain data (never read: set aside, the run starts over)
RESUME_SECONDS = 300.0  # record.resume_every = 0: a snapshot after any epoch that ends this long after the last


class Foreign(ValueError):
    """A snapshot that is not a state of this run (wrong version, shapes, optimizer, …): set aside, start over."""


def due(member: Member, epoch: int, seconds_since: float) -> bool:
    k = member.config.record.resume_every
    return epoch % k == 0 if k > 0 else seconds_since >= RESUME_SECONDS


def write_snapshot(member: Member, stepper: Any) -> bool:
    """Take `member`'s snapshot now (after a whole epoch) and store it through its `save_resume`; False when it
    has nowhere to store one. The single entry point for writing resume states (epoch loop, Ctrl-C)."""
    if member.save_resume is None:
        return False
    member.save_resume(snapshot(member, stepper.optim_state(member)))
    return True


# ---- generators as plain data ------------------------------------------------------------------------------

def _numpy_state() -> dict[str, Any]:
    name, key, pos, has_gauss, gauss = np.random.get_state()
    return {"name": str(name), "key": torch.from_numpy(np.asarray(key, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _set_numpy_state(s: dict[str, Any]) -> None:
    np.random.set_state((s["name"], s["key"].numpy().astype(np.uint32), s["pos"], s["has_gauss"], s["gauss"]))


def _python_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    return {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _set_python_state(s: dict[str, Any]) -> None:
    random.setstate((s["version"], tuple(int(v) for v in s["state"].tolist()), s["gauss"]))


# ---- the optimizer, trainer-independent ----------------------------------------------------------------------

def plain_optim(name: str, state: Any) -> dict[str, Any]:
    """The canonical optimizer state of a registered optimizer `name` (train/optim.py), from the `OptState`
    its entry's `plain` keeps (no momentum buffer where momentum is 0, moments only for Adam): CPU clones."""
    take = lambda ts: [None if x is None else x.detach().to("cpu", copy=True) for x in ts]  # noqa: E731
    return {"name": name, "t": int(state.t), "bufs": take(state.bufs), "sq": take(state.sq)}


# ---- snapshot and restore --------------------------------------------------------------------------------------

def snapshot(member: Member, optim: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to continue `member` after its current epoch; `optim` is the stepper's canonical state."""
    cuda = list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else None
    return {"version": VERSION, "epoch": int(member.epoch), "history": [dict(r) for r in member.history],
            "model": {k: v.detach().to("cpu", copy=True) for k, v in member.model.state_dict().items()},
            "optim": optim, "gens": {k: g.get_state() for k, g in member.gens.items()},
            "rng": {"torch": torch.get_rng_state(), "cuda": cuda, "numpy": _numpy_state(),
                    "python": _python_state()},
            "ref": None if member.ref is None else member.ref.detach().clone(),
            "lam": member.wn.state.lam.clone() if member.wn and member.wn.state else None}


def _is_tensor_list(v: Any) -> bool:
    return isinstance(v, list) and all(x is None or isinstance(x, torch.Tensor) for x in v)


def check(state: Any, epochs: int | None = None, optim_name: str | None = None) -> None:
    """Raise Foreign (saying what) unless `state` has a snapshot's structure (and fits a run of `epochs` epochs
    trained with optimizer `optim_name`). Structure only: shapes are checked by `restore` against the member."""
    if not isinstance(state, dict) or state.get("version") != VERSION:
        got = state.get("version") if isinstance(state, dict) else type(state).__name__
        raise Foreign(f"snapshot format {got!r}, not {VERSION}")
    kinds = {"epoch": int, "history": list, "model": dict, "optim": dict, "gens": dict, "rng": dict}
    for key, kind in kinds.items():
        if not isinstance(state.get(key), kind):
            raise Foreign(f"snapshot field {key!r} is missing or not a {kind.__name__}")
    ep, hist = state["epoch"], state["history"]
    if ep < 0 or (epochs is not None and ep > epochs) or len(hist) != ep + 1 or \
            not all(isinstance(r, dict) for r in hist):
        raise Foreign(f"snapshot at epoch {ep} with {len(hist)} history rows (this run has {epochs} epochs)")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state["model"].items()):
        raise Foreign("snapshot weights are not name → tensor")
    o = state["optim"]
    if not (isinstance(o.get("name"), str) and isinstance(o.get("t"), int) and _is_tensor_list(o.get("bufs"))
            and _is_tensor_list(o.get("sq")) and len(o["bufs"]) == len(o["sq"])):
        raise Foreign("snapshot optimizer state is not {name, t, bufs, sq} (written by an older genlab?)")
    if optim_name is not None and o["name"] != optim_name:
        raise Foreign(f"snapshot optimizer {o['name']!r}, the run's is {optim_name!r}")
    if not all(isinstance(g, torch.Tensor) and g.dtype == torch.uint8 for g in state["gens"].values()):
        raise Foreign("snapshot generator states are not byte tensors")
    r = state["rng"]
    try:
        ok = isinstance(r["torch"], torch.Tensor) and (r["cuda"] is None or _is_tensor_list(r["cuda"])) \
            and isinstance(r["numpy"]["key"], torch.Tensor) and r["numpy"]["key"].numel() == 624 \
            and isinstance(r["python"]["state"], torch.Tensor) and isinstance(r["python"]["version"], int)
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise Foreign("snapshot global RNG states are malformed")
    if not all(x is None or isinstance(x, torch.Tensor) for x in (state.get("ref"), state.get("lam"))):
        raise Foreign("snapshot ref/lam are not tensors")


def _check_fits(member: Member, state: dict[str, Any]) -> None:
    """Shapes and dtypes of the weights and optimizer buffers match the freshly built member (before any change)."""
    mine = member.model.state_dict()
    theirs = state["model"]
    if set(mine) != set(theirs):
        raise Foreign(f"snapshot weights name {sorted(set(theirs) ^ set(mine))[:3]} that the model does not/does")
    for k, v in mine.items():
        if v.shape != theirs[k].shape or v.dtype != theirs[k].dtype:
            raise Foreign(f"snapshot weight {k}: {tuple(theirs[k].shape)} {theirs[k].dtype}, the model's "
                          f"{tuple(v.shape)} {v.dtype}")
    params = list(member.model.parameters())
    o = state["optim"]
    if len(o["bufs"]) != len(params):
        raise Foreign(f"snapshot optimizer has {len(o['bufs'])} parameters, the model {len(params)}")
    for p, b, s in zip(params, o["bufs"], o["sq"]):
        for x in (b, s):
            if x is not None and x.shape != p.shape:
                raise Foreign(f"snapshot optimizer buffer {tuple(x.shape)} for a parameter {tuple(p.shape)}")
    if o["name"] == "adam" and any((b is None) != (s is None) for b, s in zip(o["bufs"], o["sq"])):
        raise Foreign("snapshot Adam moments: a first moment without its second (or back)")
    if (state.get("lam") is None) != (member.wn is None or member.wn.state is None) and state.get("lam") is not None:
        raise Foreign("snapshot has Lagrange multipliers, the run no [constraint]")
    for k, g in member.gens.items():
        if k in state["gens"] and state["gens"][k].shape != g.get_state().shape:
            raise Foreign(f"snapshot generator {k!r} has another state size (another device?)")


def restore(member: Member, state: dict[str, Any]) -> None:
    """Put a snapshot back into a member built from the same config (before its stepper is made). Raises
    Foreign, changing nothing, when the snapshot does not fit the member."""
    check(state, member.config.train.epochs, member.config.optim.name)
    _check_fits(member, state)
    member.model.load_state_dict(state["model"])
    for k, g in member.gens.items():
        if k in state["gens"]:  # a stream newer than the snapshot (dropout) starts from its seed
            g.set_state(state["gens"][k])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    _set_numpy_state(rng["numpy"])
    _set_python_state(rng["python"])
    member.epoch, member.history = state["epoch"], [dict(r) for r in state["history"]]
    member.ref = None if state["ref"] is None else state["ref"].to(next(member.model.parameters()).device)
    if member.wn and state["lam"] is not None:
        member.wn.state = LagrangeState(state["lam"])
