"""A name → entry registry with one lookup rule and one error type, shared by datasets and architectures.

Lookup ignores case and surrounding whitespace, and an entry may carry aliases (an architecture key
without its "2D." prefix); an alias that two entries share is refused as ambiguous. Registering a
different entry under a taken name needs ``replace=True``; registering an equal entry again is harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from medbench.errors import RegistryError

T = TypeVar("T")


def _folded(name: str) -> str:
    return name.strip().casefold()


class Registry(Generic[T]):
    """Entries of one kind ("dataset", "architecture") by name, in registration order.

    Args:
        kind: the noun used in error messages.
        name_of: the canonical name of an entry.
        aliases_of: further names an entry answers to.
        hint: appended to the unknown-name error (how names may be written).
    """

    def __init__(
        self,
        kind: str,
        name_of: Callable[[T], str],
        *,
        aliases_of: Callable[[T], Iterable[str]] = lambda entry: (),
        hint: str = "",
    ) -> None:
        self.kind = kind
        self._name_of = name_of
        self._aliases_of = aliases_of
        self._hint = hint
        self._entries: dict[str, T] = {}

    def register(self, entry: T, *, replace: bool = False) -> T:
        """Add `entry`; a different entry under the same (case-folded) name needs `replace`."""
        name = self._name_of(entry)
        clash = next((known for known in self._entries if _folded(known) == _folded(name)), None)
        if clash is not None:
            if self._entries[clash] == entry:
                return self._entries[clash]
            if not replace:
                raise RegistryError(
                    f"{self.kind} {name!r} is already registered as {clash!r} with a different definition; "
                    "pass replace=True to override it"
                )
            del self._entries[clash]
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        """The entry whose name or alias is `name` (case-insensitive)."""
        wanted = _folded(name) if isinstance(name, str) else None
        for known, entry in self._entries.items():
            if _folded(known) == wanted:
                return entry
        matches = [
            known
            for known, entry in self._entries.items()
            if any(_folded(alias) == wanted for alias in self._aliases_of(entry))
        ]
        if len(matches) == 1:
            return self._entries[matches[0]]
        if matches:
            raise RegistryError(f"{self.kind} {name!r} is ambiguous: it could be {', '.join(matches)}")
        hint = f" ({self._hint})" if self._hint else ""
        known = ", ".join(sorted(self._entries))
        raise RegistryError(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}{hint}")

    def names(self) -> tuple[str, ...]:
        """Canonical names in registration order."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        try:
            self.get(name)  # type: ignore[arg-type]
        except RegistryError:
            return False
        return True

    def items(self) -> tuple[tuple[str, T], ...]:
        """(name, entry) pairs in registration order."""
        return tuple(self._entries.items())

    def copy(self) -> Registry[T]:
        """An independent registry with the same entries (e.g. to register test entries in)."""
        other = Registry(self.kind, self._name_of, aliases_of=self._aliases_of, hint=self._hint)
        other._entries = dict(self._entries)
        return other

    def __iter__(self) -> Iterator[str]:
        """Canonical names in registration order, like a dict's keys."""
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
