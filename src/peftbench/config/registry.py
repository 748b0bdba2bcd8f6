from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from peftbench.errors import PeftbenchError, closest

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry map that rejects duplicates and suggests the closest name on a miss."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise PeftbenchError(
                f"unknown {self.kind} '{name}'{closest(name, self._entries)}; "
                f"choose one of: {', '.join(sorted(self._entries))}"
            )
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))
