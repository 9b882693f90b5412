"""Hostile and broken specs (issue 13): how many are refused with one clear line, how many give a traceback,
how many are accepted and wrong. The corpus is tests/hostile_cases.py; the fuzzed part is
tests/test_spec_fuzz.py's strategy, run here for `--fuzz N` examples.

    python benchmarks/hostile_specs.py                 # the corpus
    python benchmarks/hostile_specs.py --fuzz 20000    # plus N random documents and mutations of every shipped spec

Prints: tried / refused with a clear line / tracebacks (hangs over CASE_LIMIT_S count here) / accepted and
wrong (goals: 0 and 0), and one line per case that missed. `PYTHONPATH=<old checkout>/src python
benchmarks/hostile_specs.py` counts an older genlab on the same corpus.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from genlab.spec.loader import load  # noqa: E402
from genlab.spec import SpecError  # noqa: E402


CASE_LIMIT_S = 60  # a case that takes longer counts as a hang (with the tracebacks)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def classify(path: Path, field: str | None, check) -> tuple[str, str]:
    """("refused" | "accepted" | "traceback" | "wrong", detail) for one spec file."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_LIMIT_S)
    try:
        exp = load(path)  # the default profile, as `genlab run` does
    except Hang:
        return "traceback", f"hang: no answer in {CASE_LIMIT_S} s"
    except SpecError as e:
        msg = str(e)
        clear = "\n" not in msg and msg.startswith(str(path)) and (field is None or field in msg)
        if field is None:
            return "wrong", f"refused a good spec: {msg}"
        return ("refused", msg) if clear else ("wrong", f"unclear line (wants {field!r}): {msg}")
    except BaseException as e:  # noqa: BLE001 (counting them is the point)
        return "traceback", f"{type(e).__name__}: {e}"[:300]
    finally:
        signal.alarm(0)
    if field is not None:
        return "wrong", "accepted"
    return ("accepted", "") if check is None or check(exp) else ("wrong", "accepted but not as written")


def corpus(tmp: Path) -> dict[str, int]:
    from hostile_cases import CASES, MARKER

    counts = {"tried": 0, "refused": 0, "accepted": 0, "traceback": 0, "wrong": 0}
    Path(MARKER).unlink(missing_ok=True)
    for case in CASES:
        p = tmp / f"{case.id}.toml"
        p.write_bytes(case.text if isinstance(case.text, bytes) else case.text.encode())
        t0 = time.perf_counter()
        kind, detail = classify(p, case.field, case.check)
        dt = time.perf_counter() - t0
        counts["tried"] += 1
        counts[kind] += 1
        if kind in ("traceback", "wrong") or dt > 5:
            print(f"  {case.id}: {kind} ({dt:.1f} s) {detail}")
    if Path(MARKER).exists():
        print("  an injected command ran: the marker file exists")
        counts["wrong"] += 1
    return counts


def fuzz(n: int) -> dict[str, int]:
    from hypothesis import HealthCheck, given, settings

    from test_spec_fuzz import documents, outcome

    counts = {"tried": 0, "refused": 0, "accepted": 0, "traceback": 0, "wrong": 0}

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(documents())
    def one(doc):
        kind = outcome(doc)
        counts["tried"] += 1
        counts[kind] += 1

    one()
    return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fuzz", type=int, default=0, help="also N fuzzed documents")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        c = corpus(Path(tmp))
        print(f"corpus: {c['tried']} hostile or broken specs tried / {c['refused']} refused with a clear line / "
              f"{c['accepted']} good ones accepted / {c['traceback']} tracebacks / {c['wrong']} accepted and wrong "
              f"or unclear ({time.perf_counter() - t0:.1f} s)")
    if args.fuzz:
        t0 = time.perf_counter()
        f = fuzz(args.fuzz)
        print(f"fuzz: {f['tried']} documents / {f['refused']} refused with a clear line / {f['accepted']} accepted / "
              f"{f['traceback']} tracebacks / {f['wrong']} unclear refusals ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
