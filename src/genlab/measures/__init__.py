"""Measures of trained networks (issue 5 fills this package)."""
