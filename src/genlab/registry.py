"""One registry per kind of thing (datasets, models, inits, losses, measures, figures).

Each kind keeps a module-level `Registry` and exposes thin `register_*`, `get_*`, `list_*` functions,
as timm does. Entries are declared where they are defined:

    @register_model("mlp")
    def mlp(in_shape, num_outputs, *, widths=(100,), ...): ...

Look-ups fail loudly with the list of known names; registering a name twice is an error.
The typed keyword-only parameters of an entry are its schema: `options_model` turns them into a
frozen pydantic model, so a TOML spec is checked against the function it will call.
"""

from __future__ import annotations

import fnmatch
import inspect
from typing import Any, Callable, Generic, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[F]):
    """A name → callable map for one kind of thing."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, F] = {}

    def register(self, name: str | None = None) -> Callable[[F], F]:
        def add(fn: F) -> F:
            key = name or fn.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is already registered (by {self._entries[key].__module__})")
            self._entries[key] = fn
            return fn

        return add

    def get(self, name: str) -> F:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            plural = self.kind + ("es" if self.kind.endswith("s") else "s")
            raise KeyError(f"unknown {self.kind} {name!r}; known {plural}: {known}") from None

    def names(self, pattern: str = "*", exclude: str | None = None) -> list[str]:
        out = [n for n in sorted(self._entries) if fnmatch.fnmatch(n, pattern)]
        return [n for n in out if not (exclude and fnmatch.fnmatch(n, exclude))]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __len__(self) -> int:
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
