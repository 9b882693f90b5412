"""Figures of seed 000 that the generic ones (curves, scatter, versus) cannot draw, registered by name."""

from __future__ import annotations

from genlab.figures import register_figure  # noqa: F401
