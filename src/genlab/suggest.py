""""Did you mean": the closest known names to a mistyped one (difflib), for errors that name what is known."""

from __future__ import annotations

import difflib
from typing import Iterable

SHOWN = 12  # known names listed after the suggestions, at most


def close(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Up to `n` known names close to `name` (difflib's ratio ≥ 0.6; also the dotted fields ending in it)."""
    known = [str(k) for k in known]
    tail = [k for k in known if k.rsplit(".", 1)[-1] == name]  # `lr` → `optim.lr`
    near = difflib.get_close_matches(name, known, n=n, cutoff=0.6)
    return list(dict.fromkeys([*tail, *near]))[:n]


def unknown(what: str, name: str, known: Iterable[str]) -> str:
    """`--columns: no column 'tset_error'; did you mean 'test_error'? (70 present: a, b, ...)`."""
    known = [str(k) for k in known]
    hint = close(name, known)
    head = f"{what} {name!r}" + (f"; did you mean {' or '.join(map(repr, hint))}?" if hint else "")
    listed = ", ".join(known[:SHOWN]) + (f", … ({len(known) - SHOWN} more)" if len(known) > SHOWN else "")
    return f"{head} ({len(known)} present: {listed})"
