"""Specs: what to run, checked before anything runs. A spec file (TOML) is data, never evaluated.

configs.py holds the frozen pydantic configs of a run (`RunConfig`; run id = hash of its canonical JSON);
loader.py turns a spec file into an `Experiment` of planned runs (profile merged, `--set` applied, sweep ×
seeds expanded: resolve → check → expand); checks.py holds every check of a spec document (all problems
reported at once); overrides.py the `--set key=value` syntax; analysis.py and pairs.py the `[analysis]`
and `[pairs]` tables. The spec package reads registries of names (genlab.registry.lookup) and never
imports training code.
"""

from genlab.spec.configs import *  # noqa: F401,F403
from genlab.spec.configs import OMIT_DEFAULT, SEED_MAX, RunConfig, SpecError  # noqa: F401
from genlab.spec.loader import Experiment, PlannedRun, load  # noqa: E402,F401  (after the configs it reads)
