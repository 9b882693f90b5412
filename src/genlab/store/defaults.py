"""Run-config fields added after runs were stored, and their defaults as plain JSON.

A stored config.json leaves such a field out when it is at its default (so old run ids stay valid; see
`spec.OMIT_DEFAULT`, whose defaults must equal these — tests/test_spec.py checks it). The store fills them
back in for the results tables. This module imports nothing heavy: `genlab results` and `ls` stay torch-free.
"""

from __future__ import annotations

import copy
import json
from typing import Any

OMIT_DEFAULT_JSON: dict[str, Any] = {
    "constraint": {"name": "none", "rho": True, "lam_init": 1.0, "lam_lr": 0.01, "fixed_lambda": False},
    "record.measure_options": {},
    "train.rule": "backprop",
    "train.rule_options": {},
    "record.resume_every": 0,
    "events.perturb_draw": "per_seed",
    "record.measure_dtype": "float32",
    "train.precision": "float32",
    "train.channels_last": False,
    "train.compile": False,
    "events.spawn_epoch": None,
    "events.spawn_seed": 0,
}


def with_omitted_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A stored config with the fields it leaves out put back at their defaults, so the results tables have a
    value (e.g. train.rule = "backprop") for every run, old or new."""
    out = json.loads(json.dumps(config))
    for dotted, default in OMIT_DEFAULT_JSON.items():
        *parents, last = dotted.split(".")
        table = out
        for p in parents:
            table = table.setdefault(p, {})
        if last not in table:
            table[last] = copy.deepcopy(default)
    return out
