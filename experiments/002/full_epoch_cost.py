"""What one epoch of the 002 full profiles costs on this machine (CIFAR-10 40k/10k/10k, tweaks_cnn, batch 32).

Times, with one torch thread as `genlab run`, on synthetic inputs of the real shape (3×32×32; the speed does
not depend on pixel values, so the CIFAR files are not needed):
  * a training step (forward, cross-entropy, backward, SGD-momentum step) at each batch size the specs use,
    without and with BatchNorm (fig3_5_batchnorm sweeps both);
  * the per-epoch evaluation of train (40k), validation (10k) and test (10k) at eval batch 1000.
An epoch is 40,000 / batch steps plus that evaluation.

    python experiments/002/full_epoch_cost.py [--steps 20]

Prints CPU seconds of one thread (= wall seconds on an idle core; the CPU here is shared, so the process
clock is steadier than the wall clock).
"""

from __future__ import annotations

import argparse
import time

import torch

from genlab.models import count_params, create_model

CLOCK = time.process_time
N_TRAIN, N_VAL, N_TEST = 40_000, 10_000, 10_000  # 002 §2
SHAPE = (3, 32, 32)


def step_seconds(model: torch.nn.Module, batch: int, steps: int) -> float:
    """Mean CPU seconds of one SGD step at `batch`, after two warm-up steps."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, *SHAPE), torch.randint(0, 10, (batch,))
    model.train()
    for i in range(steps + 2):
        if i == 2:
            t0 = CLOCK()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (CLOCK() - t0) / steps


@torch.no_grad()
def eval_seconds_per_image(model: torch.nn.Module, batch: int = 1000, reps: int = 2) -> float:
    model.eval()
    x = torch.randn(batch, *SHAPE)
    model(x)  # warm-up
    t0 = CLOCK()
    for _ in range(reps):
        model(x)
    return (CLOCK() - t0) / (batch * reps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for bn in (False, True):
        model = create_model("tweaks_cnn", SHAPE, 10, batch_norm=bn)
        e = eval_seconds_per_image(model)
        ev = (N_TRAIN + N_VAL + N_TEST) * e
        print(f"tweaks_cnn batch_norm={bn} ({count_params(model):,} parameters): eval {e * 1e3:.3f} ms per image, "
              f"{ev:.0f} s per epoch (train + val + test)")
        for batch in (32, 64, 128, 256):
            s = step_seconds(model, batch, max(args.steps * 32 // batch, 3))
            steps = -(-N_TRAIN // batch)
            print(f"  batch {batch:3d}: {s * 1e3:7.1f} ms per step × {steps} steps = {steps * s:5.0f} s; "
                  f"epoch with eval {steps * s + ev:5.0f} s; 10 epochs {10 * (steps * s + ev) / 60:5.1f} min")


if __name__ == "__main__":
    main()
