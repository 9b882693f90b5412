"""Start-up time of the `genlab` console script: `--help`, `ls` and `results` (none of them imports torch).

    python benchmarks/bench_startup.py          # 7 starts each; exits 1 if --help takes >= 0.5 s of CPU
The target (issue 16): `genlab --help` under 0.5 s on the 2-core dev machine. It is judged on CPU time (user +
sys of the child): on a shared 2-core machine the wall time mostly measures the neighbours' load. `ls` and `results` read a tiny
store written by this script (no training: a hand-made run folder). Also prints the modules that take the
most import time for --help (from python -X importtime), to show where the time goes.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GENLAB = Path(sys.executable).parent / "genlab"  # the console script installed beside this Python
HELP_TARGET_S = 0.5
REPEATS = 7


def fake_store(root: Path) -> None:
    """One finished run of experiment `demo`, as the store writes it (config, metrics, result, DONE)."""
    d = root / "demo" / "0123456789ab"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"experiment": "demo", "seed": 0, "optim": {"lr": 0.1}}))
    (d / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "train_loss": 1.0 / (e + 1)}) + "\n"
                                             for e in range(3)))
    (d / "result.json").write_text(json.dumps({"status": "completed", "final": {"train_loss": 0.25}}))
    (d / "DONE").write_text("")


def start_times(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(median wall, min wall, median CPU = user + sys) seconds of the command over REPEATS starts."""
    wall, cpu = [], []
    for _ in range(REPEATS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        wall.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def slowest_imports(env: dict[str, str], n: int = 6) -> list[tuple[float, str]]:
    """The modules genlab.cli imports directly, by cumulative import time (python -X importtime)."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", "import genlab.cli"], env=env,
                       capture_output=True, text=True)
    rows = []
    for line in r.stderr.splitlines()[1:]:
        _self_us, cum_us, name = line.replace("import time:", "").split("|")
        if name.startswith("   ") and not name.startswith("     "):  # one level below genlab.cli
            rows.append((int(cum_us) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:n]


def main() -> int:
    env = {**os.environ, "COLUMNS": "120"}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times grow with it; CPU times do not)")
    times = {}
    with tempfile.TemporaryDirectory() as root:
        fake_store(Path(root))
        env["GENLAB_STORE"] = root
        times["python -c pass"] = start_times([sys.executable, "-c", "pass"], env)
        for args in (["--help"], ["ls"], ["results", "demo", "--format", "csv"]):
            times["genlab " + " ".join(args)] = start_times([str(GENLAB), *args], env)
    for what, (med, low, cpu) in times.items():
        print(f"{what:32s} wall median {med:.3f} s, min {low:.3f} s; CPU {cpu:.3f} s")
    print("slowest imports of genlab.cli (cumulative s):")
    for s, name in slowest_imports(env):
        print(f"  {s:.3f}  {name}")
    help_cpu = times["genlab --help"][2]
    print(f"--help: {help_cpu:.3f} s of CPU, target < {HELP_TARGET_S} s: {'met' if help_cpu < HELP_TARGET_S else 'MISSED'}")
    return 0 if help_cpu < HELP_TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
