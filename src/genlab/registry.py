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

import fnmatch
import inspect
from typing import Any, Callable, Generic, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
PLUGIN_GROUP = "genlab.plugins"
REGISTRIES: dict[str, "Registry"] = {}  # kind → its registry, for `genlab registry` and tests


class PluginError(ImportError):
    """A `genlab.plugins` entry point that failed to load; the message names it and its distribution."""


class _Plugins:
    """Process-wide state of the plugin group: loaded once; `loading` = the distribution being imported."""

    loaded = False
    loading: str | None = None
    error: PluginError | None = None


def load_plugins() -> None:
    """Import every `genlab.plugins` entry point once (later calls return at once; a failure is raised
    again on every call, so a broken plugin is never half-used silently)."""
    if _Plugins.error is not None:
        raise _Plugins.error
    if _Plugins.loaded or _Plugins.loading is not None:
        return
    from importlib.metadata import entry_points

    try:
        for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "?"
            _Plugins.loading = dist
            try:
                obj = ep.load()
                if callable(obj):
                    obj()
            except Exception as e:
                _Plugins.error = PluginError(
                    f"genlab plugin {ep.name!r} = {ep.value!r} (distribution {dist!r}) failed to load: "
                    f"{type(e).__name__}: {e}; fix or uninstall it (`pip uninstall {dist}`)")
                raise _Plugins.error from e
    finally:
        _Plugins.loading = None
    _Plugins.loaded = True


def reset_plugins() -> None:
    """Forget that plugins were loaded (tests that install one; registered entries are not removed)."""
    _Plugins.loaded, _Plugins.loading, _Plugins.error = False, None, None


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
            raise KeyError(f"unknown {self.kind} {name!r}; known {plural}: {known}") from None

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


def options_model(fn: Callable[..., Any], name: str):
    """A frozen pydantic model of `fn`'s keyword-only options (unknown keys rejected)."""
    import typing

    import pydantic

    hints = typing.get_type_hints(fn)
    fields: dict[str, Any] = {}
    for pname, p in options_of(fn).items():
        ann = hints.get(pname, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[pname] = (ann, default)
    cfg = pydantic.ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    return pydantic.create_model(f"{name}_options", __config__=cfg, **fields)


def call_entry(registry: "Registry", entry: dict[str, Any], *args: Any, ignore: tuple[str, ...] = ()) -> Any:
    """Call the entry a spec table names (`{"name": ..., **options}`) with `args` and its checked options.

    Keys in `ignore` (e.g. a figure's output `file`) are not options. A bad option raises ValueError naming
    the entry and the option.
    """
    import pydantic

    options = {k: v for k, v in entry.items() if k != "name" and k not in ignore}
    name = entry.get("name")
    if name is None:
        raise ValueError(f"{registry.kind} entry {entry} needs a `name` (one of {registry.names()})")
    fn = registry.get(name)
    try:
        checked = options_model(fn, name).model_validate(options)
    except pydantic.ValidationError as e:
        err = e.errors()[0]
        raise ValueError(f"{registry.kind} {name!r}: option {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    return fn(*args, **dict(checked))
