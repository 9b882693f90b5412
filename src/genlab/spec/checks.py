"""Every check of a spec, in one place: what `genlab.spec.loader.parse` runs on a spec document before it
expands a single run. Problems are collected (`Problems`), so `genlab run --dry-run` lists them all; each is
one line naming the file, the dotted field, what is wrong and the bad value (cut to one readable line).

    shape_problems    nesting depth, non-finite numbers, integers beyond int64 (no recursion)
    sweep_axes        sweep keys: run fields only, each swept once, `seed` refused; the axes to expand
    entries           [[figures]] / [[findings]]: names, options (the registry's validator), file names
    column_problems   config columns an entry names that no run has
    data_problems     a dataset's cheap feasibility check (class-balanced n_train)
"""

from __future__ import annotations

import math
from typing import Any

from genlab.paths import check_name
from genlab.registry import short
from genlab.spec import RunConfig, SpecError

RUN_FIELDS = tuple(f for f in RunConfig.model_fields if f not in ("experiment", "seed"))  # the run's tables


def problem(where: str, path: str, msg: str, value: Any = None) -> SpecError:
    v = "" if value is None else f" (got {short(value)})"
    return SpecError(f"{where}: {path}: {msg}{v}")



MAX_RUNS = 10_000  # a spec expanding to more runs is refused (split it): expansion itself takes time
MAX_NESTING = 32  # tables and arrays inside each other; deeper specs are refused before anything recurses
MAX_INT = 2**63 - 1  # integers beyond int64 cannot reach torch
PROFILE_KEYS = ("seeds", "sweep", "description", "figures", "findings", "analysis")
MAX_PROBLEMS = 50  # a --dry-run lists at most this many


class Problems:
    """Collects `where: field: message` lines; `fail()` raises them as one SpecError."""

    def __init__(self, where: str):
        self.where, self.lines, self.paths = where, [], set()

    def add(self, path: str, msg: str, value: Any = None) -> None:
        """One problem per field: the first found (e.g. `inf` is reported once, not again per sweep point)."""
        if path not in self.paths and len(self.lines) < MAX_PROBLEMS:
            self.paths.add(path)
            self.lines.append(str(problem(self.where, path, msg, value)))

    def fail(self) -> None:
        if self.lines:
            raise SpecError(self.lines)


def shape_problems(raw: dict, problems: Problems) -> bool:
    """Nesting depth, non-finite floats and out-of-range integers anywhere in the document (no recursion).
    True when it is nested too deep to look further (the checks after this recurse)."""
    stack: list[tuple[str, Any, int]] = [("", raw, 0)]
    too_deep = False
    while stack:
        path, v, depth = stack.pop()
        if depth > MAX_NESTING:
            problems.add(path or "(top)", f"nested more than {MAX_NESTING} levels deep")
            too_deep = True
            continue
        if isinstance(v, dict):
            stack.extend((f"{path}.{k}" if path else str(k), x, depth + 1) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((f"{path}[{i}]", x, depth + 1) for i, x in enumerate(v))
        elif isinstance(v, float) and not math.isfinite(v):
            problems.add(path, "must be a finite number", v)
        elif isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
            problems.add(path, "is too large an integer", v)
    return too_deep


def sweep_axes(sweep: Any, problems: Problems) -> list[list[dict[str, Any]]] | None:
    """The sweep as axes (grid lists, then zipped groups), each a list of {dotted: value}; None if unusable.

    A key must be a dotted path into a run field, and appear once in the grid and the zips together (a key
    both swept and zipped is ambiguous). `seed` is not a sweep key: `seeds = [...]` repeats every point.
    """
    if not isinstance(sweep, dict):
        problems.add("sweep", "must be a table of lists", sweep)
        return None
    grid = {k: v for k, v in sweep.items() if k != "zip"}
    zips = sweep.get("zip", [])
    zips = zips if isinstance(zips, list) else [zips]
    axes: list[list[dict[str, Any]]] = []
    seen: dict[str, str] = {}
    ok = True

    def key_ok(k: str, at: str) -> bool:
        if k in ("seed", "seeds"):
            problems.add(at, "seeds are not swept here: set `seeds = [0, 1, ...]` (every point runs once per seed)")
            return False
        if k.split(".")[0] not in RUN_FIELDS:
            problems.add(at, f"is not a path to a run field (starts with one of: {', '.join(RUN_FIELDS)})")
            return False
        if k in seen:
            problems.add(at, f"is swept twice (also at {seen[k]}); a field goes in the grid or in one zip")
            return False
        seen[k] = at
        return True

    for k, vals in grid.items():
        if not isinstance(vals, list) or not vals:
            problems.add(f"sweep.{k}", "must be a non-empty list of values", vals)
            ok = False
        elif key_ok(k, f"sweep.{k}"):
            axes.append([{k: v} for v in vals])
        else:
            ok = False
    for i, group in enumerate(zips):
        if not isinstance(group, dict):
            problems.add(f"sweep.zip[{i}]", "must be a table of equal-length lists", group)
            ok = False
            continue
        lens = {k: len(v) if isinstance(v, list) else -1 for k, v in group.items()}
        if not lens or min(lens.values()) < 1 or len(set(lens.values())) != 1:
            problems.add(f"sweep.zip[{i}]", "needs non-empty lists of one common length", lens)
            ok = False
            continue
        if not all([key_ok(k, f"sweep.zip[{i}].{k}") for k in group]):
            ok = False
            continue
        n = next(iter(lens.values()))
        axes.append([{k: group[k][j] for k in group} for j in range(n)])
    return axes if ok else None


FIGURE_KEYS = ("file",)  # keys of a [[figures]] table that are not the figure function's options
FINDING_KEYS = ("claim", "figure")  # keys of a [[findings]] table that are not the function's options


def entries(raw: Any, key: str, problems: Problems) -> tuple[dict[str, Any], ...]:
    """[[figures]] / [[findings]]: their names, options (against the registered signature) and file names."""
    if key not in raw:
        return ()
    entries = raw[key]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        problems.add(key, f"must be an array of tables ([[{key}]] with a `name` each)", entries)
        return ()
    from genlab.registry import OptionsError, entry_options, lookup

    registry = lookup("figure" if key == "figures" else "finding")
    ignore = FIGURE_KEYS if key == "figures" else FINDING_KEYS

    for i, entry in enumerate(entries):
        at = f"{key}[{i}]"
        try:
            entry_options(registry, entry, ignore)
        except KeyError as e:
            problems.add(f"{at}.name", str(e.args[0]))
        except OptionsError as e:
            for loc, msg in e.problems:
                problems.add(f"{at}.{loc}", msg)
        if key == "figures" and "file" in entry:
            try:
                check_name(entry["file"], "file")
            except ValueError as e:
                problems.add(f"{at}.file", str(e))
        if key == "findings" and not isinstance(entry.get("claim", ""), str):
            problems.add(f"{at}.claim", "must be a string", entry.get("claim"))
        if key == "findings" and "design_seeds" in entry:
            problems.add(f"{at}.design_seeds", "is set by genlab (the spec's seeds), not by a spec")
    return tuple(entries)


CONFIG_COLUMN_OPTIONS = ("where", "rl", "require", "hue", "by", "over", "facet", "x", "y")  # options that name columns


def column_problems(entries: tuple[dict, ...], key: str, columns: set[str], problems: Problems) -> None:
    """Config columns (`init.std`, ...) an entry names that no run has: a typo caught before any training."""
    from genlab.expr import ExprError, parse

    for i, entry in enumerate(entries):
        for opt in CONFIG_COLUMN_OPTIONS:
            v = entry.get(opt)
            if opt in ("where", "rl", "require") and isinstance(v, str):
                try:
                    names = parse(v).columns
                except ExprError:
                    continue  # reported by the options check
            else:
                names = [v] if isinstance(v, str) else [x for x in v if isinstance(x, str)] if isinstance(v, list) else []
            for c in names:
                if c.split(".")[0] in RUN_FIELDS and "." in c and c not in columns:
                    near = sorted(k for k in columns if k.split(".")[0] == c.split(".")[0])
                    problems.add(f"{key}[{i}].{opt}", f"names config column {c!r}, which no run has "
                                 f"(its table has: {', '.join(near) or 'nothing'})")



# columns of the results and history tables that are not config columns (store.results / store.history)
RESULT_COLUMNS = {"run_id", "experiment", "seed", "status", "stop_reason", "epochs_run", "n_params", "wall_s",
                  "members", "epoch", "lr", "epoch_s", "event"}
METRIC_SUFFIXES = ("_loss", "_error", "_acc", "_accuracy", "_margin")  # per split: train_loss, test_vflip_error …
TABLE_PREFIXES = ("data_info.", "per_class.")


def is_result_column(name: str) -> bool:
    """Whether a results/history table can hold a column `name` besides the config columns: the fixed ones,
    per-split metrics, data facts, per-class accuracies and registered measures (with their sub-keys)."""
    from genlab.registry import lookup

    is_measure = lookup("measure").__contains__
    return (name in RESULT_COLUMNS or name.endswith(METRIC_SUFFIXES) or name.startswith(TABLE_PREFIXES)
            or is_measure(name) or is_measure(name.split(".", 1)[0]))


def where_problems(entries: tuple[dict, ...], key: str, runs: list, problems: Problems) -> None:
    """Each entry's `where`/`require` typed against the runs' columns: an operation its operands' types refuse
    (`len` of a number, text arithmetic) or a column no table will have, caught before any training."""
    from genlab.expr import ExprError, parse
    from genlab.expr.types import infer, type_of
    from genlab.spec.overrides import MISSING, get_path

    configs = None
    for i, entry in enumerate(entries):
        for opt in ("where", "require"):
            text = entry.get(opt)
            if not isinstance(text, str):
                continue
            try:
                e = parse(text)
            except ExprError:
                continue  # reported by the options check
            if configs is None:
                configs = [r.config.model_dump(mode="json") for r in runs[:1000]]
            types: dict[str, str] = {}
            for c in e.columns:
                if c.split(".")[0] in RUN_FIELDS and "." in c:
                    seen = {type_of(v) for d in configs if (v := get_path(d, c)) is not MISSING and v is not None}
                    types[c] = seen.pop() if len(seen) == 1 else "any"
            try:
                infer(e, types, known=lambda c: c in types or is_result_column(c))
            except ExprError as err:
                problems.add(f"{key}[{i}].{opt}", str(err))


def data_problems(runs: list, problems: Problems) -> None:
    """A dataset's cheap feasibility check (`fn.check(**options) -> message | None`), once per data table."""
    from genlab.registry import lookup

    get_dataset_fn = lookup("dataset").get
    done = set()
    for r in runs:
        key = r.config.data.model_dump_json()
        if key in done:
            continue
        done.add(key)
        check = getattr(get_dataset_fn(r.config.data.name), "check", None)
        msg = check(**r.config.data.options) if check else None
        if msg:
            problems.add("data", msg)
