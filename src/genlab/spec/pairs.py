"""The `[pairs]` table of a spec: which pair measures (genlab.measures.pairs) on which pairs of its runs.

    [pairs]
    measures = ["mode_connectivity", "cka"]
    by = "seed"                 # runs whose configs are equal but for the seed (init and data order), or
                                # "spawn": children of one parent (equal but for events.spawn_seed; Frankle et al.)
    max_pairs = 1               # per config point, the first pairs in seed order (omit: every pair)
    measure_options = { cka = { debiased = true } }

Measured by genlab.executors.pairs, stored and read back by genlab.store.pairs.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import Field

from genlab.registry import format_errors, lookup, validate_options


class PairSpec(pydantic.BaseModel):
    """The `[pairs]` table of a spec (checked when the spec loads)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
    measures: list[str] = Field(min_length=1)
    by: Literal["seed", "spawn"] = "seed"
    max_pairs: int | None = Field(None, ge=1)
    measure_options: dict[str, dict[str, Any]] = {}
    dtype: Literal["float32", "float64"] = "float32"
    max_samples: int | None = Field(None, ge=4)

    @pydantic.model_validator(mode="after")
    def _known(self):
        get_pair_measure = lookup("pair_measure").get
        for name in self.measures:
            get_pair_measure(name)  # KeyError listing the known ones
        for name, opts in self.measure_options.items():
            if name not in self.measures:
                raise ValueError(f"measure_options.{name}: {name!r} is not in pairs.measures")
            validate_options(get_pair_measure(name), name, opts, "pair measure")
        return self

    def options(self) -> dict[str, dict[str, Any]]:
        """Typed options per measure (JSON tables → the measures' option types)."""
        get_pair_measure = lookup("pair_measure").get
        return {n: validate_options(get_pair_measure(n), n, o, "pair measure") for n, o in
                self.measure_options.items()}


def check_pairs(raw: dict, problems) -> dict[str, Any] | None:
    """The checked `[pairs]` table of a spec (as plain data), or None; each problem added to `problems`."""
    if "pairs" not in raw:
        return None
    try:
        return PairSpec.model_validate(raw["pairs"]).model_dump()
    except (pydantic.ValidationError, KeyError, ValueError) as err:
        if isinstance(err, pydantic.ValidationError):
            for loc, msg in format_errors(err):
                problems.add(f"pairs.{loc}", msg)
        else:
            problems.add("pairs", str(err.args[0]) if err.args else str(err))
        return None
