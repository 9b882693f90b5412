"""Names that become paths, and the check that every path genlab writes stays under its root.

An experiment name is a folder of the store and a figure's `file` is a file under `--out`: both must match
NAME (letters, digits, `_`, `-`, `.`; not starting with `.`; at most 100 characters), so `..`, `.`, `.hidden`,
`a/b` and absolute paths are refused before anything is written. `under(root, *parts)` joins and checks
that the result, resolved, is still inside `root` (a symlink pointing out is refused too).
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_LEN = 100
NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,%d}" % (MAX_LEN - 1))
RULE = f"letters, digits, '_', '-' or '.', not starting with '.', at most {MAX_LEN} characters"


class UnsafePathError(ValueError):
    """A name or path that would leave its root; the message names it and the rule."""


def is_safe_name(name: object) -> bool:
    return isinstance(name, str) and NAME.fullmatch(name) is not None


def check_name(name: object, what: str = "name") -> str:
    """`name` if it is a safe single path component, else UnsafePathError naming `what` and the rule."""
    if not is_safe_name(name):
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:59] + "…"
        raise UnsafePathError(f"{what} {shown} is not allowed: use {RULE}")
    return name  # type: ignore[return-value]


def under(root: str | Path, *parts: str) -> Path:
    """root/part/... after checking that it resolves inside root (UnsafePathError otherwise)."""
    base = Path(root)
    path = base.joinpath(*parts)
    inside = base.resolve()
    target = path.resolve()
    if target != inside and inside not in target.parents:
        raise UnsafePathError(f"{path} would be written outside {base} (it resolves to {target}): a name with "
                              "'..' or '/', or a symlink, leads out; choose another name or remove the link")
    return path
