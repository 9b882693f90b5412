"""What one point of the 004 full profiles costs on this machine: training steps and the measures.

Times, with one torch thread as `genlab run`, on synthetic inputs of the real shapes (the speed does not
depend on pixel values; the real files are used nowhere):
  * VGG-16-BN on 3×32×32: a training step at batch 64 (forward, cross-entropy, backward, SGD step), so an
    epoch of n images costs n/64 steps, plus the per-epoch evaluation of the training and test sets;
  * the 2-layer MLP on 784 inputs at h = 8192 (the widest, the most costly): the same;
  * each measure of the specs' `record.measures` on VGG-16-BN with `compute` (float64, as the trainer calls
    it); sharpness_004 on its 1,024 rows is timed as one loss+gradient pass on 64 rows, times 16 × 21.

    python benchmarks/cost_004_capacity.py [--steps 5]

Prints CPU seconds (one thread, so the wall time on an idle core) per step/pass and the derived per-epoch and per-measure costs.
"""

from __future__ import annotations

import argparse

import torch

from costing import CLOCK, eval_seconds_per_image, step_seconds

from genlab.measures import MeasureData, compute
from genlab.measures.strided_sharpness import SHARPNESS_SAMPLES
from genlab.measures.objective import value_and_grad, params_of
from genlab.measures.sharpness import SharpnessConfig
from genlab.models import create_model
from genlab.losses import get_loss

CAPACITIES = ["log_l2_capacity", "log_l1_path_capacity", "log_l2_path_capacity", "log_spectral_capacity",
              "margin_q5"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    vgg = create_model("vgg16_bn", (3, 32, 32), 10)
    s = step_seconds(vgg, (3, 32, 32), 64, args.steps)
    e = eval_seconds_per_image(vgg, (3, 32, 32))
    print(f"vgg16_bn: {s:.3f} s per step of 64; eval {e * 1e3:.2f} ms per image")
    for n in (1000, 10000, 50000):
        print(f"  epoch of n={n}: {n / 64 * s + (n + 10000) * e:.0f} s (steps + eval of train and 10k test)")
    mlp = create_model("mlp", (784,), 10, widths=[8192])
    sm = step_seconds(mlp, (784,), 64, args.steps * 4)
    em = eval_seconds_per_image(mlp, (784,))
    print(f"mlp h=8192: {sm * 1e3:.1f} ms per step of 64; epoch of 60k: {60000 / 64 * sm + 70000 * em:.0f} s")

    x = torch.randn(SHARPNESS_SAMPLES, 3, 32, 32)
    y = torch.randint(0, 10, (SHARPNESS_SAMPLES,))
    vgg.eval()
    data = MeasureData(x, y, x[:64], y[:64], get_loss("cross_entropy"), num_classes=10)
    for name in CAPACITIES:
        t0 = CLOCK()
        compute([name], vgg, data)
        print(f"  {name}: {CLOCK() - t0:.1f} s")
    net, d64 = vgg.double(), MeasureData(x[:64].double(), y[:64], x[:64].double(), y[:64],
                                      get_loss("cross_entropy"), num_classes=10)
    t0 = CLOCK()
    value_and_grad(net, d64, d64.x_train, d64.y_train, params_of(net))
    g = CLOCK() - t0
    passes = SharpnessConfig().iterations + 1
    print(f"  sharpness_004: {g:.2f} s per float64 loss+grad on 64 rows → "
          f"{g * SHARPNESS_SAMPLES / 64 * passes:.0f} s for {passes} passes over {SHARPNESS_SAMPLES} rows")


if __name__ == "__main__":
    main()
