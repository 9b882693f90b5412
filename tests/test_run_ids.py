"""Every shipped spec's run ids, under each of its profiles, are the ones stored runs have: a refactor that
changes how a config is resolved or hashed would orphan every run in every store. tests/data/run_ids.json holds,
per `spec:profile`, the number of runs and the SHA-256 of their ids in order. After a deliberate change to a spec
(a run that should differ), rewrite it: `python tests/test_run_ids.py --write`."""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "run_ids.json"


def fingerprints() -> dict[str, list]:
    from genlab.spec.loader import load

    out = {}
    for path in sorted((ROOT / "experiments").glob("*/*.toml")):
        profiles = tomllib.loads(path.read_text()).get("profiles", {})
        for profile in [None, *sorted(profiles)]:
            ids = load(path, profile).run_ids
            key = f"{path.relative_to(ROOT)}:{profile or '-'}"
            out[key] = [len(ids), hashlib.sha256(" ".join(ids).encode()).hexdigest()]
    return out


@pytest.fixture(scope="module")
def now():
    return fingerprints()


def test_every_shipped_spec_keeps_its_run_ids(now):
    golden = json.loads(GOLDEN.read_text())
    changed = sorted(k for k in golden.keys() & now.keys() if golden[k] != now[k])
    assert changed == [], f"run ids changed for {changed} (deliberate? `python tests/test_run_ids.py --write`)"
    assert sorted(golden.keys() ^ now.keys()) == []  # every spec and profile is covered, none is stale


def test_the_check_can_fail(now):
    """A config that resolves differently (here one field changed by --set) gets other ids: the fingerprint the
    test compares would differ, so the test above would fail."""
    from genlab.spec.loader import load

    ids = load(ROOT / "experiments/000/fig3_1.toml", "small", sets={"optim.lr": 0.123}).run_ids
    key = "experiments/000/fig3_1.toml:small"
    assert now[key][0] == len(ids) and now[key][1] != hashlib.sha256(" ".join(ids).encode()).hexdigest()


if __name__ == "__main__" and "--write" in sys.argv:
    GOLDEN.write_text(json.dumps(fingerprints(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
