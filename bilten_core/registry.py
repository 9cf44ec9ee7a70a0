"""Name-keyed registries of what plugins declare through ``register_*`` hooks.

Each item remembers the plugin that declared it, and a name declared twice (by any two plugins)
stops the app from starting instead of letting one silently win.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from bilten_core.plugins import PluginManager

T = TypeVar("T")


class OwnedRegistry(Generic[T]):
    """Items of one type by name, each with its owning plugin; iterates in name order."""

    def __init__(
        self,
        kind: str,
        item_type: type[T],
        name_of: Callable[[T], str],
        error: type[Exception],
        unknown: Callable[[str], Exception],
    ) -> None:
        self.kind = kind
        self.item_type = item_type
        self.name_of = name_of
        self.error = error
        self.unknown = unknown
        self._items: dict[str, T] = {}
        self._owners: dict[str, str] = {}

    def collect(self, plugins: PluginManager, hook_name: str) -> None:
        """Add everything every loaded plugin returns from ``hook_name``."""
        for owner, item in plugins.collect(hook_name):
            self.add(owner, item)

    def add(self, owner: str, item: T) -> None:
        if not isinstance(item, self.item_type):
            raise self.error(f"plugin {owner!r} registered {item!r}, not a {self.item_type.__name__}")
        name = self.name_of(item)
        if name in self._items:
            raise self.error(f"{self.kind} {name!r} is declared by both {self._owners[name]!r} and {owner!r}")
        self._items[name] = item
        self._owners[name] = owner

    def get(self, name: str) -> T:
        item = self._items.get(name)
        if item is None:
            raise self.unknown(name)
        return item

    def owner(self, name: str) -> str:
        """The plugin that declared ``name``."""
        self.get(name)
        return self._owners[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items[name] for name in sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)
