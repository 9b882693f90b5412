"""genlab: a lab for the empirical science of generalization in deep networks.

One path: spec (TOML) → runs → store → measures → figures → report. See README.md.
"""

__version__ = "0.1.0"
