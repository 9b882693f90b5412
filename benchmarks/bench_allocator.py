"""glibc's default allocator vs `genlab.runtime.keep_freed_memory`, each in fresh processes, interleaved.

    python benchmarks/bench_allocator.py [--repeats 5] [--threads 1,2] [--measures]

Per process: a bias-free ConvNet3-32 on 512 CIFAR-shaped images, in blocks of 128 (PAC-Bayes' block) —
forward passes (eval, no gradient) and training steps (forward, backward, SGD) — timed over 10 passes after one
warm-up, with the minor page faults per pass. `--measures` also times one compute() of every registered
measure (float32) on bench_measures.py's checkpoint (a trained ConvNet3-32, 512 points). Prints medians over the repeats and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = str(Path(__file__).parent)

CHILD = textwrap.dedent("""
    import json, resource, sys, time, torch
    from genlab.runtime import keep_freed_memory
    mode, threads, measures = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    if mode == "keep":
        assert keep_freed_memory() == "set"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    from genlab.models import create_model
    model = create_model("convnet3", (3, 32, 32), 10, width=32)
    x, y = torch.randn(512, 3, 32, 32), torch.randint(0, 10, (512,))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def forward():
        with torch.no_grad():
            for i in range(0, 512, 128):
                model(x[i:i + 128])

    def train():
        for i in range(0, 512, 128):
            loss = torch.nn.functional.cross_entropy(model(x[i:i + 128]), y[i:i + 128])
            opt.zero_grad()
            loss.backward()
            opt.step()

    def timed(fn, n):
        fn()
        f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / n

    out = {"forward": timed(forward, 10), "train": timed(train, 10)}
    if measures:  # on bench_measures' checkpoint (PAC-Bayes needs a trained net), trained in this process
        sys.path.insert(0, sys.argv[4])
        from bench_measures import checkpoint
        from genlab.losses import get_loss
        from genlab.measures import MeasureData, compute, list_measures
        net, xs, ys, init, _ = checkpoint(512, 32)
        data = MeasureData(xs[:512], ys[:512], xs[512:], ys[512:], get_loss("cross_entropy"), init_state=init,
                           num_classes=10)
        out["measures"] = timed(lambda: compute(list_measures(), net, data, dtype=torch.float32), 1)
    print(json.dumps(out))
""")


def child(mode: str, threads: int, measures: bool) -> dict[str, list[float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.update(OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(threads), "1" if measures else "0", HERE],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"child ({mode}, {threads} threads) failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--measures", action="store_true")
    args = ap.parse_args()
    import platform

    import torch

    print(f"torch {torch.__version__}, {platform.machine()}, glibc {platform.libc_ver()[1]}, "
          f"python {platform.python_version()}")
    for threads in (int(t) for t in args.threads.split(",")):
        res: dict[str, dict[str, list]] = {"default": {}, "keep": {}}
        for r in range(args.repeats):
            for mode in (("default", "keep") if r % 2 == 0 else ("keep", "default")):
                for part, v in child(mode, threads, args.measures).items():
                    res[mode].setdefault(part, []).append(v)
        for part in res["default"]:
            d, k = ([statistics.median(v[i] for v in res[m][part]) for i in (0, 1)] for m in ("default", "keep"))
            print(f"{threads} thread(s) {part:9s}: default {d[0] * 1e3:8.1f} ms ({d[1]:7.0f} faults), "
                  f"keep_freed_memory {k[0] * 1e3:8.1f} ms ({k[1]:6.0f} faults)  = {d[0] / k[0]:.2f}x")


if __name__ == "__main__":
    main()
