"""Plotting and table libraries imported on first use, so that checking a spec costs no matplotlib or pandas.

`genlab run` checks a spec's [[figures]] and [[findings]] against the registered functions' options, which
imports every figure and finding module; with pandas and matplotlib imported at their tops that cost ~1 CPU-s
per process before any training (issue 28). Here pandas is a stand-in that imports it on its first attribute
access, and the matplotlib classes the figures construct are thin callables:

    from genlab.lazy import pd, Figure      # pd.DataFrame(...) imports pandas; Figure(...) matplotlib
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """Stands for the module `name` until an attribute is read, then imports it and takes on its namespace.
    Never put in sys.modules: torch's start-up walks sys.modules (inspect.getmodule), which would load it."""

    def __getattr__(self, attr: str) -> Any:  # called only for names not yet in this object's namespace
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)
        return getattr(module, attr)


def lazy_module(name: str) -> ModuleType:
    """The module `name`, already imported, or a `LazyModule` that imports it on first attribute access."""
    if name in sys.modules:
        return sys.modules[name]
    if importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    return LazyModule(name)


pd = lazy_module("pandas")


def Figure(*args: Any, **kwargs: Any):  # noqa: N802  (stands for matplotlib.figure.Figure)
    """matplotlib.figure.Figure(*args, **kwargs), importing matplotlib on the first figure drawn."""
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(*args, **kwargs)


def LogNorm(*args: Any, **kwargs: Any):  # noqa: N802
    from matplotlib.colors import LogNorm as C

    return C(*args, **kwargs)


def Normalize(*args: Any, **kwargs: Any):  # noqa: N802
    from matplotlib.colors import Normalize as C

    return C(*args, **kwargs)
