"""Hostile stores (issue 24): what a user who can write to a shared store can make `genlab` do to the next user.
The counterpart of hostile_specs.py for store files, the SQL door and output paths.

    python benchmarks/hostile_store.py                  # every case (~12 min on 2 loaded cores)
    python benchmarks/hostile_store.py sql resume.pt    # the cases whose names contain these words
    PYTHONPATH=<old checkout>/src python benchmarks/hostile_store.py   # an older genlab on the same cases

Each case prepares a fresh store (a tiny experiment, trained, or interrupted midway with resume states), does
one thing a hostile or careless writer could do, then runs the genlab commands a user would (as subprocesses:
`python -m genlab ...`) and counts:
    code executed      a pickle's os.system payload ran (its flag file exists)
    writes outside     anything written outside the store and the output folder, or a victim file changed
    blocked for good   after the case, `genlab run` (then `genlab run --retry-failed`) does not finish every run
    tracebacks         a command printed a traceback or "internal error"
    switch failed      a run interrupted under one trainer did not finish under the other in that command
Goals: 0, 0, 0, 0, 0. Prints one line per case, then the totals; asserts nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch

SPEC = textwrap.dedent("""
    name = "hs"
    seeds = [0, 1]
    [data]
    name = "separable"
    dim = 5
    n_train = 96
    n_test = 64
    [model]
    name = "mlp"
    widths = [12]
    [optim]
    lr = 0.02
    momentum = 0.9
    [train]
    epochs = 6
    batch_size = 16
    [record]
    resume_every = 1
    save_init = true
    [[figures]]
    name = "curves"
    file = "hs_curves"
""")


TRAINED: dict[int, Path] = {}  # ensemble size → a store where the experiment is finished


class Evil:
    def __init__(self, flag: Path):
        self.flag = str(flag)

    def __reduce__(self):
        return (os.system, (f"touch {self.flag}",))


class World:
    """A temporary folder: the spec, the store, an output folder, an `outside` folder and a victim file."""

    def __init__(self, root: Path):
        self.root = root
        self.spec = root / "hs.toml"
        self.spec.write_text(SPEC)
        self.store, self.out, self.outside = root / "store", root / "out", root / "outside"
        self.out.mkdir()
        self.outside.mkdir()
        self.victim = self.outside / "victim.txt"
        self.victim.write_text("precious")
        self.flag = self.outside / "PWNED"
        self.stderr: list[str] = []
        self.switch_failed = 0

    def genlab(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "genlab", *map(str, args)], capture_output=True, text=True,
                           timeout=timeout, cwd=self.root)
        self.stderr.append(r.stderr + r.stdout)
        return r

    def run_dirs(self) -> list[Path]:
        return sorted(p for p in (self.store / "hs").iterdir() if p.is_dir() and not p.name.startswith("."))

    def train(self, k: int = 1) -> None:
        """The experiment finished (trained once per process, copied for each case)."""
        if TRAINED.get(k) is None:
            TRAINED[k] = Path(tempfile.mkdtemp()) / "store"
            r = self.genlab("run", self.spec, "--profile", "none", "--store", TRAINED[k], "--ensemble", str(k))
            assert r.returncode == 0, r.stderr
        shutil.copytree(TRAINED[k], self.store, symlinks=True)

    def interrupt(self, k: int = 1) -> None:
        """Every run stopped after epoch 3 (as a kill leaves it): resume.pt at epoch 2, no DONE."""
        from genlab.spec import loader as experiment
        from genlab.executors import pending
        from genlab.executors.local import run_local
        from genlab.store import Store

        def stop(run_id, row, epochs):
            if row.get("epoch") == 3:
                raise KeyboardInterrupt

        exp, st = experiment.load(self.spec, profile=None), Store(self.store)
        try:
            run_local(pending(exp, st), st, progress=stop, ensemble=(k, False))
        except KeyboardInterrupt:
            pass

    def outcome(self) -> dict[str, int]:
        from genlab.store.runfiles import write_done  # noqa: F401  (genlab importable here)

        known = {self.victim, self.flag}
        extra = [p for p in self.outside.rglob("*") if p not in known]
        return {"switch failed": self.switch_failed, "code executed": int(self.flag.exists()),
                "writes outside": int(bool(extra) or self.victim.read_text() != "precious"),
                "tracebacks": sum("Traceback" in e or "internal error" in e for e in self.stderr)}

    def blocked(self) -> int:
        """Runs `genlab run` (then --retry-failed, if needed) cannot finish after the case."""
        for extra in ([], ["--retry-failed"]):
            self.genlab("run", self.spec, "--profile", "none", "--store", self.store, *extra)
            r = self.genlab("status", self.spec, "--profile", "none", "--store", self.store)
            if "2 done" in r.stdout and "pending" not in r.stdout and "failed" not in r.stdout:
                return 0
        return 1


def evil_pickle(path: Path, flag: Path, header: bool) -> None:
    buf = io.BytesIO()
    torch.save({"rows": 1, "state": Evil(flag)}, buf)
    body = buf.getvalue()
    if header:  # a writer who recomputes the hash
        body = b"genlab-resume 2 sha256=" + hashlib.sha256(body).hexdigest().encode() + b"\n" + body
    path.write_bytes(body)


def restamp(d: Path) -> None:
    from genlab.store.runfiles import write_done

    write_done(d)


# ---- the cases: (name, fn(world)); each fn does its harm and runs what a user runs --------------------------------

def resume_case(kind: str):
    def case(w: World) -> None:
        w.interrupt()
        f = w.run_dirs()[0] / "resume.pt"
        if kind.startswith("pickle"):
            evil_pickle(f, w.flag, kind == "pickle+hash")
        elif kind == "random":
            f.write_bytes(os.urandom(4096))
        elif kind == "empty":
            f.write_bytes(b"")
        elif kind == "foreign":
            try:
                from genlab.store.runfiles import pack_resume, unpack_resume
            except ImportError:  # an older genlab: its resume.pt is a bare pickle, which the attacker reads
                saved = torch.load(f, weights_only=False)
                saved["state"]["model"] = {k: torch.zeros(2, 2) for k in saved["state"]["model"]}
                torch.save(saved, f)
                return
            rows, state = unpack_resume(f.read_bytes())
            state["model"] = {k: torch.zeros(2, 2) for k in state["model"]}
            f.write_bytes(pack_resume(rows, state))
        elif kind == "set-aside links out":
            (f.parent.parent / ".set-aside").symlink_to(w.outside)
            f.write_bytes(b"junk")
    return case


def switch_case(before: int, after: int):
    def case(w: World) -> None:
        w.interrupt(before)
        w.genlab("run", w.spec, "--profile", "none", "--store", w.store, "--ensemble", str(after) if after > 1 else "off")
        r = w.genlab("status", w.spec, "--profile", "none", "--store", w.store)
        w.switch_failed = int("2 done" not in r.stdout)  # the switching command itself must finish every run
    return case


def checkpoint_case(name: str):
    def case(w: World) -> None:
        w.train()
        d = w.run_dirs()[0]
        torch.save({"weight": Evil(w.flag)}, d / name)
        restamp(d)
        w.genlab("measure", "hs", "-m", "num_params", "--store", w.store)
    return case


def sql_case(query: str):
    def case(w: World) -> None:
        w.train()
        r = w.genlab("sql", "hs", query.format(outside=w.outside), "--store", w.store)
        if "hostname" in query and Path("/etc/hostname").exists() and \
                Path("/etc/hostname").read_text().strip() and Path("/etc/hostname").read_text().strip() in r.stdout:
            (w.outside / "LEAKED").write_text("read")  # counts as a write outside: the door let a file through
    return case


def leases_case(w: World) -> None:
    (w.store / "hs").mkdir(parents=True)
    (w.store / "hs" / ".leases").symlink_to(w.outside)
    w.genlab("run", w.spec, "--profile", "none", "--store", w.store)
    (w.store / "hs" / ".leases").unlink()  # the user removes the link the message names; then runs finish


def output_link_case(cmd: str):
    def case(w: World) -> None:
        w.train()
        link = w.out / "link"
        link.symlink_to(w.victim)
        args = {"report": ["report", w.spec, "--profile", "none", "--out", link],
                "results": ["results", "hs", "--format", "csv", "-o", link],
                "sql": ["sql", "hs", "SELECT 1", "--format", "csv", "-o", link]}[cmd]
        w.genlab(*args, "--store", w.store)
    return case


def figures_dir_link(w: World) -> None:
    w.train()
    (w.out / "figs").symlink_to(w.outside)
    (w.out / "figs2").mkdir()
    (w.out / "figs2" / "hs_curves.png").symlink_to(w.victim)
    w.genlab("figures", w.spec, "--profile", "none", "--store", w.store, "--out", w.out / "figs2")


def malformed_case(name: str, content: bytes, cmds: list[list[str]]):
    def case(w: World) -> None:
        w.train()
        d = w.run_dirs()[0]
        if name == "metrics.jsonl":
            lines = (d / name).read_bytes().split(b"\n")
            lines[1] = content
            (d / name).write_bytes(b"\n".join(lines))
        else:
            (d / name).write_bytes(content)
        restamp(d)
        for c in cmds:
            w.genlab(*[a.format(spec=w.spec, out=w.out) for a in c], "--store", w.store)
    return case


def stray_case(w: World) -> None:
    w.train()
    (w.store / "hs" / "notes").mkdir()
    w.genlab("status", "hs", "--store", w.store)


REPORTING = [["results", "hs"], ["results", "hs", "--history"], ["report", "{spec}", "--profile", "none", "--out",
             "{out}/r.html"], ["figures", "{spec}", "--profile", "none", "--out", "{out}/f"],
             ["measure", "hs", "-m", "num_params"]]

CASES = [
    *[(f"resume.pt: {k}", resume_case(k)) for k in ("pickle", "pickle+hash", "random", "empty", "foreign",
                                                      "set-aside links out")],
    ("resume: solo → ensemble", switch_case(1, 2)), ("resume: ensemble → solo", switch_case(2, 1)),
    *[(f"{n}: pickle, re-stamped", checkpoint_case(n)) for n in ("final.pt", "init.pt")],
    *[(f"sql: {q[:40]}", sql_case(q)) for q in ("COPY (SELECT 42) TO '{outside}/x.csv'", "ATTACH '{outside}/x.db'",
                                                "SELECT * FROM read_text('/etc/hostname')", "INSTALL httpfs",
                                                "LOAD httpfs", "SET enable_external_access = true")],
    ("leases: .leases links out", leases_case),
    *[(f"{c} -o through a symlink", output_link_case(c)) for c in ("report", "results", "sql")],
    ("figures: a figure file is a symlink", figures_dir_link),
    ("result.json holds []", malformed_case("result.json", b"[]", REPORTING)),
    ("result.json not UTF-8", malformed_case("result.json", b'{"status": "\xff"}', REPORTING)),
    ("metrics.jsonl not UTF-8", malformed_case("metrics.jsonl", b'{"epoch": 1, "x": "\xfe"}', REPORTING)),
    ("a stray folder", stray_case),
]


RUN_STATE = ("resume", "leases", "result.json", "metrics.jsonl", "final.pt", "init.pt")  # cases that change runs


def main() -> None:
    totals = {"code executed": 0, "writes outside": 0, "blocked for good": 0, "tracebacks": 0, "switch failed": 0}
    t0, c0 = time.perf_counter(), time.process_time()
    chosen = [(n, c) for n, c in CASES if not sys.argv[1:] or any(a in n for a in sys.argv[1:])]
    for name, case in chosen:
        with tempfile.TemporaryDirectory() as d:
            w = World(Path(d))
            case(w)
            blocked = w.blocked() if name.startswith(RUN_STATE) else 0  # first: its runs may execute code too
            got = {**w.outcome(), "blocked for good": blocked}
            for k, v in got.items():
                totals[k] += v
            bad = {k: v for k, v in got.items() if v}
            print(f"{'MISS' if bad else 'ok  '} {name}" + (f"  {bad}" if bad else ""), flush=True)
            if bad and os.environ.get("HOSTILE_VERBOSE"):
                print("\n".join(e for e in w.stderr if e.strip())[-3000:])
            shutil.rmtree(w.root / "store", ignore_errors=True)
    print(f"{len(chosen)} hostile store cases / " + " / ".join(f"{v} {k}" for k, v in totals.items())
          + f" ({time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU in this process; "
            "the genlab subprocesses not counted)")


if __name__ == "__main__":
    main()
