"""Command-line overrides of a spec: `--set key=value`, applied after the profile, before the sweep expands.

    --set optim.lr=0.05                  a scalar: sets the field (and takes it out of the sweep, if swept)
    --set optim.lr=[0.1,0.01]            a list: sweeps the field (replacing the spec's sweep of it)
    --set model.widths=[64,64]           a field that holds a list: a list sets it ...
    --set model.widths=[[64],[256]]      ... and a list of lists sweeps it
    --set seeds=[0,1,2]                  the seeds
    --set model.name=mlp                 a value that is not TOML is taken as a string

Values are TOML (numbers, true/false, "strings", [lists], {inline = "tables"}); keys are dotted paths into
the run fields. The text is data: parsed as TOML, never evaluated. Every error names the `--set` item.
"""

from __future__ import annotations

import copy
import re
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")  # dotted identifiers
TOP_LEVEL = ("seeds",)  # experiment-level keys --set may change (the name has --name)
MISSING = object()


class OverrideError(ValueError):
    """A `--set` item that cannot be applied; the message names it."""


MAX_VALUE_CHARS = 100_000  # a --set value longer than this is refused (a spec's sweep belongs in its file)
MAX_NESTING = 32  # arrays/tables inside each other, as spec files (genlab.spec.checks.MAX_NESTING)


def _nesting(text: str) -> int:
    """How deep brackets and braces nest in `text`, outside quoted strings (a bound, without parsing)."""
    depth = best = 0
    quote = ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


def parse_value(text: str) -> Any:
    """A TOML value (`0.1`, `[1, 2]`, `true`, `"x"`); anything that is not TOML is the string itself.
    Values nested more than MAX_NESTING levels or longer than MAX_VALUE_CHARS are refused (OverrideError)."""
    if len(text) > MAX_VALUE_CHARS:
        raise OverrideError(f"a value of {len(text):,} characters is longer than {MAX_VALUE_CHARS:,}; put the "
                            "sweep in the spec file")
    if _nesting(text) > MAX_NESTING:
        raise OverrideError(f"a value nested more than {MAX_NESTING} levels deep (arrays or tables), as spec "
                            "files allow")
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()
    except RecursionError:  # not reached within MAX_NESTING; a guard all the same
        raise OverrideError(f"a value nested too deeply to read (more than {MAX_NESTING} levels)") from None


def parse_sets(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """["optim.lr=0.1", "seeds=[0,1]"] → {"optim.lr": 0.1, "seeds": [0, 1]} (a key given twice: last wins)."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not KEY.match(key):
            raise OverrideError(f"--set {item!r}: expected key=value with a dotted key, e.g. optim.lr=0.1")
        try:
            out[key] = parse_value(value)
        except OverrideError as e:
            raise OverrideError(f"--set {key}: {e}") from None
    return out


def get_path(d: Any, dotted: str) -> Any:
    """d["a"]["b"] for "a.b", or MISSING."""
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return MISSING
        d = d[part]
    return d


def _unsweep(sweep: dict[str, Any], key: str) -> dict[str, Any]:
    """`sweep` without `key`: out of the grid and out of every zip group (a group left empty goes)."""
    out = {k: v for k, v in sweep.items() if k not in (key, "zip")}
    zips = sweep.get("zip", [])
    groups = [{k: v for k, v in g.items() if k != key} for g in (zips if isinstance(zips, list) else [zips])]
    if any(groups):
        out["zip"] = [g for g in groups if g]
    return out


def apply(raw: dict[str, Any], sets: dict[str, Any], run_fields: tuple[str, ...],
          holds_list) -> dict[str, Any]:
    """The spec dict (profile already merged) with `sets` applied; `raw` is not changed.

    Args:
      run_fields: the top-level tables a key may start with (data, model, optim, ...).
      holds_list: holds_list(raw, key) -> bool, whether the field holds a list (then a list value sets it).
    """
    out = copy.deepcopy(raw)
    for key, value in sets.items():
        head = key.split(".", 1)[0]
        if key in TOP_LEVEL:
            out[key] = value if isinstance(value, list) else [value]
            continue
        if key in ("seed", "name"):
            raise OverrideError(f"--set {key}: use " + ("seeds=[...]" if key == "seed" else "--name NAME"))
        if head not in run_fields or "." not in key:
            known = ", ".join([*TOP_LEVEL, *(f"{f}.…" for f in run_fields if f != "seed")])
            raise OverrideError(f"--set {key}: unknown key {key!r} (a dotted path into: {known})")
        listy = holds_list(out, key)  # the field's value is a list: a list sets it, a list of lists sweeps it
        sweep = isinstance(value, list) and (not listy or (value and all(isinstance(v, list) for v in value)))
        if sweep and not value:
            raise OverrideError(f"--set {key}: an empty list sweeps nothing")
        out["sweep"] = _unsweep(out.get("sweep", {}), key)
        if sweep:
            out["sweep"][key] = value
            continue
        table = out
        for part in key.split(".")[:-1]:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise OverrideError(f"--set {key}: {part!r} is not a table")
        table[key.rsplit(".", 1)[-1]] = value
    return out


def describe(sets: dict[str, Any]) -> str:
    """{"optim.lr": 0.1} → "--set optim.lr=0.1" (for error locations and provenance)."""
    return " ".join(f"--set {k}={v!r}" if isinstance(v, str) else f"--set {k}={v}" for k, v in sets.items())
