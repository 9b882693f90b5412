"""Measures of a pair of trained networks: a registry of pure functions `fn(model_a, model_b, data, *, options)`.

Mode connectivity and representation similarity compare two solutions rather than describe one. They are kept
out of the single-network registry (`genlab.measures`), whose contract is one model in, numbers out; here both
models share one `MeasureData` (the pair's common data: runs of one config, differing in seed). Which pairs to
measure on a store is `genlab.executors.pairs`; the values are stored with both run ids (genlab.store.pairs).

    @register_pair_measure("cka")
    def cka(model_a, model_b, data, *, kernel="linear") -> dict[str, float]: ...

`compute_pair(names, a, b, data)` copies both models (eval mode, cast to `dtype`, the data cast with them) and
returns the flat dict (`name.sub` keys), as `genlab.measures.compute` does for one network.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, Callable

import torch
from torch import nn

from genlab.measures import Cache, MeasureData, flatten_values
from genlab.registry import Registry

PairMeasureFn = Callable[..., "dict[str, float]"]
_PAIR_MEASURES: Registry[PairMeasureFn] = Registry("pair_measure")
register_pair_measure = _PAIR_MEASURES.register
get_pair_measure = _PAIR_MEASURES.get
list_pair_measures = _PAIR_MEASURES.names


def is_pair_measure(name: str) -> bool:
    return name in _PAIR_MEASURES


def compute_pair(names: list[str], model_a: nn.Module, model_b: nn.Module, data: MeasureData, *,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float64,
                 options: dict[str, dict[str, Any]] | None = None) -> dict[str, float]:
    """Evaluate registered pair measures on copies of both models (neither is modified).

    Args:
      names: registered pair measures (`list_pair_measures()`); unknown names raise KeyError before any work.
      model_a, model_b: the two trained networks (same architecture for mode connectivity).
      data: the data both were trained on (`MeasureData.from_dataset`).
      dtype: precision of the passes over the data (float64 by default, as `compute`).
      options: per-measure keyword options, e.g. {"cka": {"debiased": True}}.

    Returns:
      A flat dict `name.sub` → value.
    """
    fns = {name: get_pair_measure(name) for name in names}
    if device is None:
        device = next(iter(model_a.parameters()), torch.empty(0)).device
    a = copy.deepcopy(model_a).to(device=device, dtype=dtype).eval()
    b = copy.deepcopy(model_b).to(device=device, dtype=dtype).eval()
    data = replace(data.to(device, dtype), cache=Cache())
    out: dict[str, float] = {}
    for name, fn in fns.items():
        try:
            out.update(flatten_values(name, fn(a, b, data, **(options or {}).get(name, {}))))
        except ValueError as e:
            raise ValueError(f"pair measure {name!r}: {e}") from e
    return out


from genlab.measures import cka, connectivity, curves  # noqa: E402,F401  (register the pair measures)
