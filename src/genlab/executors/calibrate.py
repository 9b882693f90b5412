"""Whether stacking pays for a model family on this machine: a small measurement, made once and cached.

`--ensemble auto` on a CPU stacks fully connected nets always and every other
family only when `stacking_pays` says so: K = `K_CAL` copies of the run's model, one training step on a batch
of the run's shape timed solo (K optimizer steps) and stacked (the ensemble trainer's step: fused grouped
convs, `train.fused`, or vmap), best of `REPEATS` after a warm-up; about a second for a small conv net. Stacking pays when it is at least `GAIN`×
faster (below that, timing noise and the stack's evaluation overhead eat the gain); CPU time on a CPU, wall
time on a GPU. Decisions are cached in
this process and in `<data root>/generated/stacking.json`, keyed by the ensemble group key (model and options,
data set apart from labels, batch sizes, loss, optimizer family), device, torch version, CPU and threads; `GENLAB_GEN_CACHE=off` keeps them in memory only.
The measurement runs at the torch threads the runs will train with (a pool's workers: 1 by default), not at
the planning process's own: measured at 2 threads, where workers train at 1, 003's random-label Conv-4
(1-D, width 22, Adam) was stacked although at 1 thread its stacked step is 0.85-0.96× K solo ones.
The decision changes only how runs are scheduled: a member's numbers equal its solo run's either way.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import time
from typing import Any

import torch

from genlab.spec import RunConfig

K_CAL = 8  # members in the calibration stack (4 measured too noisy on a loaded 2-core machine)
REPEATS = 5  # timed steps each way (the best counts)
GAIN = 1.25  # stack when stacked is at least this much faster than K solo steps (1.15 let ResNet-20 through
# on one of three loaded-machine calibrations, where whole training then ran 1.0×)
_DECIDED: dict[str, bool] = {}


def _key(group: str, device: str, threads: int) -> str:
    """The ensemble group key (model, data apart from labels, batch sizes, loss, optimizer family, rule), the
    machine (device, torch version, CPU, the runs' threads) and the fused step's memory layout (a decision
    measured with the other layout is not reused)."""
    from genlab.train.fused import CHANNELS_LAST, LAYOUT

    return json.dumps([group, device, torch.__version__, platform.processor() or platform.machine(),
                       threads, sorted(CHANNELS_LAST.items()), LAYOUT])


def _disk() -> tuple[Any, dict[str, bool]]:
    from genlab.data.gencache import OFF_VAR, cache_dir

    if os.environ.get(OFF_VAR, "").lower() in ("off", "0", "false", "no"):
        return None, {}
    path = cache_dir() / "stacking.json"
    try:
        data = json.loads(path.read_text())
        return path, {k: v for k, v in data.items() if isinstance(v, bool)} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return path, {}


def _save(path, decided: dict[str, bool]) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.part")
        tmp.write_text(json.dumps(decided, indent=0, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass  # a cache: never a reason for a sweep to fail


def measure(cfg: RunConfig, device: str = "cpu") -> tuple[float, float]:
    """(seconds of K_CAL solo steps, seconds of one stacked step of K_CAL members), best of REPEATS, on random
    inputs of the run's shape and batch size (the speed does not depend on the values)."""
    from genlab.train.ensemble import Stacked
    from genlab.train.loop import new_member
    from genlab.train.optim import build_optimizer
    from genlab.train.setup import resolve_device

    dev = resolve_device(device)
    cfg = cfg.model_copy(update={"record": cfg.record.model_copy(update={"save_init": False})})
    members = [new_member(cfg, dev, wrap=False) for _ in range(K_CAL)]
    m0 = members[0]
    B = min(cfg.train.batch_size, m0.data.n_train)
    gen = torch.Generator(device=dev).manual_seed(0)
    x = m0.data.inputs(m0.data.x_train[:B])
    x = x[torch.randint(0, B, (K_CAL, B), generator=gen, device=dev)]  # (K, B, ...)
    y = m0.data.y_train[:B][torch.randint(0, B, (K_CAL, B), generator=gen, device=dev)]  # (K, B)
    solo = [copy.deepcopy(m.model) for m in members]
    opts = [build_optimizer(net.parameters(), cfg.optim) for net in solo]

    def solo_step() -> None:
        for k, (net, opt) in enumerate(zip(solo, opts)):
            loss = m0.loss(net(x[k]), y[k])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    stack = Stacked(members)
    stack.base.train()
    leaves = list(stack.params.values())
    lrs = torch.full((K_CAL,), cfg.optim.lr, dtype=leaves[0].dtype, device=dev)

    def stacked_step() -> None:
        _, grads = stack._grads(x, y, m0, K_CAL, leaves, {})
        stack.opt.step(leaves, grads, lrs)

    clock = time.perf_counter if dev.type == "cuda" else time.process_time  # CPU: the neighbours' load aside

    def best(fn) -> float:
        fn()  # warm-up: allocator, kernels chosen
        times = []
        for _ in range(REPEATS):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = clock()
            fn()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            times.append(clock() - t0)
        return min(times)

    return best(solo_step), best(stacked_step)


def stacking_pays(cfg: RunConfig, group: str, device: str = "cpu", threads: int | None = None) -> bool:
    """Whether runs like `cfg` (of ensemble group key `group`) train faster as an ensemble than one by one
    here, with `threads` torch threads (None: this process's; measured once, cached)."""
    threads = threads or torch.get_num_threads()
    key = _key(group, device, threads)
    if key in _DECIDED:
        return _DECIDED[key]
    path, disk = _disk()
    if key not in disk:
        own = torch.get_num_threads()
        try:
            torch.set_num_threads(threads)
            solo_s, stacked_s = measure(cfg, device)
            disk[key] = stacked_s * GAIN <= solo_s
        except Exception:  # a model the stack cannot take: solo, as before (the run itself reports real errors)
            disk[key] = False
        finally:
            torch.set_num_threads(own)
        _save(path, disk)
    _DECIDED[key] = disk[key]
    return disk[key]
