"""What one epoch of the 002 full profiles costs on this machine (CIFAR-10 40k/10k/10k, tweaks_cnn, batch 32).

Times, with one torch thread as `genlab run`, on synthetic inputs of the real shape (3×32×32; the speed does
not depend on pixel values, so the CIFAR files are not needed):
  * a training step (forward, cross-entropy, backward, SGD-momentum step) at each batch size the specs use,
    without and with BatchNorm (fig3_5_batchnorm sweeps both);
  * the per-epoch evaluation of train (40k), validation (10k) and test (10k) at eval batch 1000.
An epoch is 40,000 / batch steps plus that evaluation.

    python benchmarks/cost_002_tweaks.py [--steps 20]

Prints CPU seconds of one thread (= wall seconds on an idle core; the CPU here is shared, so the process
clock is steadier than the wall clock).
"""

from __future__ import annotations

import argparse

import torch

from costing import eval_seconds_per_image, step_seconds

from genlab.models import count_params, create_model

N_TRAIN, N_VAL, N_TEST = 40_000, 10_000, 10_000  # 002 §2
SHAPE = (3, 32, 32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for bn in (False, True):
        model = create_model("tweaks_cnn", SHAPE, 10, batch_norm=bn)
        e = eval_seconds_per_image(model, SHAPE)
        ev = (N_TRAIN + N_VAL + N_TEST) * e
        print(f"tweaks_cnn batch_norm={bn} ({count_params(model):,} parameters): eval {e * 1e3:.3f} ms per image, "
              f"{ev:.0f} s per epoch (train + val + test)")
        for batch in (32, 64, 128, 256):
            s = step_seconds(model, SHAPE, batch, max(args.steps * 32 // batch, 3))
            steps = -(-N_TRAIN // batch)
            print(f"  batch {batch:3d}: {s * 1e3:7.1f} ms per step × {steps} steps = {steps * s:5.0f} s; "
                  f"epoch with eval {steps * s + ev:5.0f} s; 10 epochs {10 * (steps * s + ev) / 60:5.1f} min")


if __name__ == "__main__":
    main()
