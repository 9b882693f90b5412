"""One registry per kind of thing (datasets, models, inits, losses, measures, figures).

Each kind keeps a module-level `Registry` and exposes thin `register_*`, `get_*`, `list_*` functions,
as timm does. Entries are declared where they are defined:

    @register_model("mlp")
    def mlp(in_shape, num_outputs, *, widths=(100,), ...): ...

Look-ups fail loudly with the list of known names; registering a name twice is an error.
The typed keyword-only parameters of an entry are its schema: `options_model` turns them into a
frozen pydantic model, so a TOML spec is checked against the function it will call.

Plugins: any installed distribution can add entries of every kind through the `genlab.plugins` entry-point
group; each entry point names a module (imported: its decorators register) or a callable (called once):

    [project.entry-points."genlab.plugins"]        # the plugin's pyproject.toml
    my_lab = "my_lab.genlab_entries"

They are loaded lazily, the first time any registry is looked up (`load_plugins`), and each entry remembers
where it came from (`Registry.origin`: module and distribution), which `genlab registry` shows.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import inspect
import types
from typing import Any, Callable, Generic, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
PLUGIN_GROUP = "genlab.plugins"
REGISTRIES: dict[str, "Registry"] = {}  # kind → its registry, for `genlab registry` and tests

# kind → the module that defines its registry and genlab's own entries. `lookup(kind)` imports it by name, so a
# stage that only reads names (the spec checks model, measure, figure and finding names) needs no import of
# the code behind them: the import graph keeps its one direction (tests/test_imports.py).
HOMES: dict[str, str] = {
    "dataset": "genlab.data", "model": "genlab.models", "init": "genlab.models.init", "rule": "genlab.models.rules",
    "loss": "genlab.losses", "measure": "genlab.measures", "pair_measure": "genlab.measures.pairs",
    "finding": "genlab.findings", "figure": "genlab.figures", "statistic": "genlab.analysis",
    "optimizer": "genlab.train.optim", "schedule": "genlab.train.schedules", "constraint": "genlab.train.constraints",
}


def lookup(kind: str) -> "Registry":
    """The registry of `kind` ("model", "measure", …), its home module imported on first use."""
    import importlib

    if kind not in HOMES:
        raise KeyError(f"unknown kind of registry {kind!r}; known: {', '.join(sorted(HOMES))}")
    if kind not in REGISTRIES:
        importlib.import_module(HOMES[kind])
    return REGISTRIES[kind]


class PluginError(ImportError):
    """A `genlab.plugins` entry point that failed to load; the message names it and its distribution."""


class _Plugins:
    """Process-wide state of the plugin group: loaded once; `loading` = the distribution being imported."""

    loaded = False
    loading: str | None = None
    errors: list[str] = []  # one message per plugin that failed to load (each also warned on stderr)


def short(value: Any, limit: int = 100) -> str:
    """repr(value), cut to `limit` characters (a message stays one readable line)."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit - 1] + "…"


def load_plugins() -> None:
    """Import every `genlab.plugins` entry point once (later calls return at once). A plugin that fails —
    raises anything at import, SystemExit included — is named in one warning on stderr ("plugin X (package
    Y) failed to load: …"), whatever it registered before failing is taken out again (never half-used), and
    genlab goes on without it; `_Plugins.errors` keeps the messages."""
    if _Plugins.loaded or _Plugins.loading is not None:
        return
    import sys
    from importlib.metadata import entry_points

    try:
        for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "?"
            _Plugins.loading = dist
            before = {k: set(r._entries) for k, r in REGISTRIES.items()}
            try:
                obj = ep.load()
                if callable(obj):
                    obj()
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # SystemExit too: a plugin never ends genlab
                for k, r in REGISTRIES.items():
                    for name in set(r._entries) - before.get(k, set()):
                        del r._entries[name]
                        r._origins.pop(name, None)
                cause = f"exit({e.code!r})" if isinstance(e, SystemExit) else f"{type(e).__name__}: {e}"
                msg = (f"plugin {ep.name!r} = {ep.value!r} (package {dist!r}) failed to load: {cause}; genlab goes "
                       f"on without it (fix it, or `pip uninstall {dist}`)")
                _Plugins.errors.append(msg)
                print(f"warning: {' '.join(msg.split())}", file=sys.stderr)
    finally:
        _Plugins.loading = None
    _Plugins.loaded = True


def reset_plugins() -> None:
    """Forget that plugins were loaded (tests that install one; registered entries are not removed)."""
    _Plugins.loaded, _Plugins.loading, _Plugins.errors = False, None, []


class Registry(Generic[F]):
    """A name → callable map for one kind of thing."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, F] = {}
        self._origins: dict[str, str] = {}  # name → "module (distribution)"
        REGISTRIES[kind] = self

    def register(self, name: str | None = None) -> Callable[[F], F]:
        def add(fn: F) -> F:
            key = name or fn.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is already registered (by {self.origin(key)})")
            self._entries[key] = fn
            top = fn.__module__.split(".")[0]  # genlab's own modules may be first imported by a plugin
            package = top if top == "genlab" else _Plugins.loading or top
            self._origins[key] = f"{fn.__module__} ({package})"
            return fn

        return add

    def get(self, name: str) -> F:
        load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            plural = self.kind + ("es" if self.kind.endswith("s") else "s")
            from genlab.suggest import close

            hint = close(name, self._entries) if isinstance(name, str) else []
            mean = f" (did you mean {' or '.join(map(repr, hint))}?)" if hint else ""
            raise KeyError(f"unknown {self.kind} {short(name)}; known {plural}: {known}{mean}") from None

    def origin(self, name: str) -> str:
        """Where entry `name` was defined: "module (distribution)", e.g. "genlab.models.mlp (genlab)"."""
        self.get(name)
        return self._origins[name]

    def names(self, pattern: str = "*", exclude: str | None = None) -> list[str]:
        load_plugins()
        out = [n for n in sorted(self._entries) if fnmatch.fnmatch(n, pattern)]
        return [n for n in out if not (exclude and fnmatch.fnmatch(n, exclude))]

    def __contains__(self, name: str) -> bool:
        load_plugins()
        return name in self._entries

    def __len__(self) -> int:
        load_plugins()
        return len(self._entries)


def options_of(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The keyword-only parameters of `fn`: the options a spec may set for it."""
    sig = inspect.signature(fn)
    return {n: p for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


class OptionsError(ValueError):
    """Options a registered entry refuses. `problems` holds (dotted option, message) pairs, first first;
    str() is one line naming the entry, the option and the value."""

    def __init__(self, kind: str, name: str, problems: list[tuple[str, str]]):
        self.kind, self.name, self.problems = kind, name, problems
        loc, msg = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{kind} {name!r}: option {loc}: {msg}{more}")


def _strict(ann: Any) -> Any:
    """`ann` with its int/float scalars strict: a spec's `true` is not the number 1, nor "3" the number 3.

    Applied through Optional/Union/list/tuple/dict/Annotated; floats still take ints (strict float does).
    """
    import typing

    from pydantic import Strict

    if ann in (int, float, bool):
        return typing.Annotated[ann, Strict()]
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return typing.Annotated[(_strict(args[0]), *ann.__metadata__)]
    if not args or origin is typing.Literal:
        return ann
    new = tuple(_strict(a) if a is not Ellipsis else a for a in args)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[new]
    if origin in (list, tuple, dict, set, frozenset):
        return origin[new if len(new) > 1 else new[0]]
    return ann


@functools.lru_cache(maxsize=None)  # one model per entry: building it is the slow part of expanding a sweep
def options_model(fn: Callable[..., Any], name: str):
    """A frozen pydantic model of `fn`'s keyword-only options (unknown keys rejected).

    Annotations keep their metadata (`get_type_hints(include_extras=True)`), so an option declares its range
    where it is defined: `std: Annotated[float, Field(ge=0)] = 0.01`. Numbers are strict (no bools, no
    strings) and must be finite.
    """

    import pydantic

    opts = options_of(fn)
    hints = option_hints(fn, opts)
    fields: dict[str, Any] = {}
    for pname, p in opts.items():
        ann = _strict(hints.get(pname, Any))
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[pname] = (ann, default)
    cfg = pydantic.ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, allow_inf_nan=False)
    return pydantic.create_model(f"{name}_options", __config__=cfg, **fields)


def option_hints(fn: Callable[..., Any], opts: dict[str, inspect.Parameter]) -> dict[str, Any]:
    """The evaluated annotations of `fn`'s options only: its data arguments' (a DataFrame, a Figure returned)
    stay strings, so checking a spec's options imports no pandas or matplotlib (genlab.lazy)."""
    import typing

    target = inspect.unwrap(fn)
    if not hasattr(target, "__globals__"):  # a class or callable object: its hints as typing resolves them
        return typing.get_type_hints(fn, include_extras=True)
    own = {k: v for k, v in getattr(target, "__annotations__", {}).items() if k in opts}
    holder = types.SimpleNamespace(__annotations__=own)
    return typing.get_type_hints(holder, globalns=target.__globals__, include_extras=True)


NO_VALUE = ("bad_option", "unknown_name", "bad_epoch")  # genlab's own error types: the message says it all


def format_errors(err: Any, known: list[str] | None = None) -> list[tuple[str, str]]:
    """A pydantic ValidationError as (dotted location, message with the bad value) pairs: the one place
    pydantic's errors become genlab's words. A genlab error type may carry `sub_loc` (the field below the
    model that raised it); `known` lists the options an unknown one could have been."""
    out = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"] if not str(p).startswith("function-")]
        sub = (e.get("ctx") or {}).get("sub_loc")
        path = ".".join(loc + ([sub] if sub else [])) or "(top)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown option (known: {', '.join(known) or 'none'})" if known is not None else "unknown field"
        elif e["type"] not in NO_VALUE and not isinstance(e.get("input"), dict):
            msg += f" (got {short(e.get('input'))})"
        out.append((path, msg))
    return out


def validate_options(fn: Callable[..., Any], name: str, options: dict[str, Any], kind: str = "entry", *,
                     as_json: bool = False) -> dict[str, Any]:
    """`options` checked against `fn`'s keyword-only signature, every default filled in, typed (e.g. a dict
    becomes the config dataclass the option is annotated with), or as JSON values with `as_json` (what a
    resolved config stores and hashes). Raises OptionsError naming each bad option.

    The one options validator: spec loading, measures, figures, findings and data all call it.
    """
    import pydantic

    if not isinstance(options, dict):
        raise OptionsError(kind, name, [("(all)", f"options must be a table, got {options!r}")])
    try:
        checked = options_model(fn, name).model_validate(options)
    except pydantic.ValidationError as e:
        raise OptionsError(kind, name, format_errors(e, sorted(options_of(fn)))) from None
    if not as_json:
        return dict(checked)
    out = checked.model_dump(mode="json")
    for key, value in dict(checked).items():  # config dataclasses: fields added later, at their default, left out
        if dataclasses.is_dataclass(value) and isinstance(out.get(key), dict):
            for f in dataclasses.fields(value):
                if f.metadata.get(OMIT_AT_DEFAULT) and getattr(value, f.name) == f.default:
                    out[key].pop(f.name, None)
    return out


OMIT_AT_DEFAULT = "omit_at_default"


def later_field(default: Any) -> Any:
    """A field of an options dataclass (e.g. measures.pacbayes.FlatnessConfig) added after runs were stored with
    it: resolved options (`validate_options(as_json=True)`, what a run's config stores and hashes) leave it out
    while it holds `default`, so those runs keep their ids — spec.OMIT_DEFAULT's rule, for option tables."""
    return dataclasses.field(default=default, metadata={OMIT_AT_DEFAULT: True})


def call_entry(registry: "Registry", entry: dict[str, Any], *args: Any, ignore: tuple[str, ...] = ()) -> Any:
    """Call the entry a spec table names (`{"name": ..., **options}`) with `args` and its checked options.

    Keys in `ignore` (e.g. a figure's output `file`) are not options. A bad option raises OptionsError
    (a ValueError) naming the entry and the option.
    """
    fn, options = entry_options(registry, entry, ignore)
    return fn(*args, **options)


def entry_options(registry: "Registry", entry: Any, ignore: tuple[str, ...] = ()) -> tuple[Callable[..., Any], dict]:
    """(the function, its checked options) for a spec table `{"name": ..., **options}`; what load-time checks
    and `call_entry` share. KeyError for an unknown name (listing the known ones), OptionsError for options."""
    if not isinstance(entry, dict):
        raise OptionsError(registry.kind, "?", [("(all)", f"must be a table with a `name`, got {entry!r}")])
    name = entry.get("name")
    if not isinstance(name, str):
        raise OptionsError(registry.kind, "?", [("name", f"needs a `name` (one of {', '.join(registry.names())})")])
    fn = registry.get(name)
    options = {k: v for k, v in entry.items() if k != "name" and k not in ignore}
    return fn, validate_options(fn, name, options, registry.kind)
