"""Start-up time of the `genlab` console script: `--help`, `ls` and `results` (none of them imports torch).

    python benchmarks/bench_startup.py          # median of 7 starts each; exits 1 if --help takes >= 0.5 s
The target (issue 16): `genlab --help` under 0.5 s on the 2-core dev machine. `ls` and `results` read a tiny
store written by this script (no training: a hand-made run folder). Also prints the modules that take the
most import time for --help (from python -X importtime), to show where the time goes.
"""

from __future__ import annotations

import json
import os
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


def median_start(args: list[str], env: dict[str, str]) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        subprocess.run([str(GENLAB), *args], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def slowest_imports(env: dict[str, str], n: int = 6) -> list[tuple[float, str]]:
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", "from genlab.cli import app"], env=env,
                       capture_output=True, text=True)
    rows = []
    for line in r.stderr.splitlines()[1:]:
        _, self_us, cum_us, name = (p.strip() for p in line.replace("import time:", "").split("|"))
        if not name.startswith(" "):  # top-level imports only (cumulative times of nested ones overlap)
            rows.append((int(cum_us) / 1e6, name))
    return sorted(rows, reverse=True)[:n]


def main() -> int:
    env = {**os.environ, "COLUMNS": "120"}
    with tempfile.TemporaryDirectory() as root:
        fake_store(Path(root))
        env["GENLAB_STORE"] = root
        t_py = statistics.median(_time([sys.executable, "-c", "pass"], env) for _ in range(REPEATS))
        t_help = median_start(["--help"], env)
        t_ls = median_start(["ls"], env)
        t_res = median_start(["results", "demo", "--format", "csv"], env)
    print(f"python -c pass:         {t_py:.3f} s (the interpreter alone)")
    print(f"genlab --help:          {t_help:.3f} s (target < {HELP_TARGET_S} s)")
    print(f"genlab ls:              {t_ls:.3f} s")
    print(f"genlab results --format csv: {t_res:.3f} s")
    print("slowest top-level imports of genlab.cli (cumulative s):")
    for s, name in slowest_imports(env):
        print(f"  {s:.3f}  {name}")
    return 0 if t_help < HELP_TARGET_S else 1


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, capture_output=True, check=True)
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
