"""genlab: a lab for the empirical science of generalization in deep networks.

One path: spec (TOML) → runs → store → measures → figures → report. See README.md.
For notebooks: `results, history = genlab.load("fig3_4")` and `genlab.plot("fig3_4", x=..., y=...)`
(genlab.api; imported on first use, so `import genlab` stays light).
"""

__version__ = "0.1.0"


def load(experiment, store=None, **kwargs):
    """(results, history) of an experiment in the store; see `genlab.api.load`."""
    from genlab.api import load as _load

    return _load(experiment, store, **kwargs)


def plot(experiment, **kwargs):
    """A matplotlib Figure of an experiment: y vs x per run, or learning curves; see `genlab.api.plot`."""
    from genlab.api import plot as _plot

    return _plot(experiment, **kwargs)
