"""One registry per extension point: name → entry, read by the config, the CLI choices, validation and docs.

Objectives and GRM regularizers (``training/objectives.py``), data formats and pair strategies
(``data/formats.py``), evaluation-file kinds (``eval/eval_sets.py``) and tamper environments
(``tamper/envs/registry.py``) each keep one :class:`Registry`. Everything else asks it: an option's
``choices`` is the registry's live :meth:`Registry.choices` view (so an entry registered at run time is
accepted on the command line and in YAML alike), and :meth:`Registry.lookup` is the one "unknown NAME"
message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from rmguard.errors import ConfigError, DataError

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """Entries by name, in registration order; ``kind`` names the extension point in messages.

    ``aliases`` are other spellings of a name (``all`` for ``all_pairs``), accepted where the name is.
    """

    def __init__(self, kind: str, entries: dict[str, T] | None = None, aliases: dict[str, str] | None = None):
        super().__init__(entries or {})
        self.kind = kind
        self.aliases: dict[str, str] = dict(aliases or {})

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name`` (a name already taken is refused: two entries, one name)."""
        if name in self or name in self.aliases:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self[name] = entry
        return entry

    def canonical(self, name: str) -> str:
        return self.aliases.get(name, name)

    def lookup(self, name: str, extra: Iterable[str] = (), source: str | None = None) -> T:
        """The entry of ``name`` (or of its alias); one line naming the choices when there is none (a
        :class:`DataError` of ``source`` when a data file asked for it)."""
        try:
            return self[self.canonical(name)]
        except KeyError:
            message = f"unknown {self.kind} '{name}'; choose {self.describe(extra)}"
            raise (ConfigError(message) if source is None else DataError(source, message)) from None

    def describe(self, extra: Iterable[str] = ()) -> str:
        """``one of a, b, c``, the ``extra`` names (``auto``) first."""
        return "one of " + ", ".join(self.choices(*extra))

    def choices(self, *extra: str, aliases: bool = True) -> Choices:
        """A live view for ``argparse``'s ``choices``: ``extra`` names first, then every name (with its
        aliases just before it, unless ``aliases`` is false)."""
        return Choices(self, extra, aliases)


class Choices:
    """The names a registry accepts now: argparse checks membership and lists them in ``--help`` at parse
    time, so an entry registered after the parser was built is a valid choice."""

    def __init__(self, registry: Registry, extra: tuple[str, ...], aliases: bool):
        self.registry, self.extra, self.aliases = registry, extra, aliases

    def __iter__(self) -> Iterator[str]:
        yield from self.extra
        by_target: dict[str, list[str]] = {}
        for alias, target in self.registry.aliases.items() if self.aliases else ():
            by_target.setdefault(target, []).append(alias)
        for name in self.registry:
            yield from by_target.get(name, [])
            yield name

    def __contains__(self, name: object) -> bool:
        return name in self.extra or name in self.registry or (self.aliases and name in self.registry.aliases)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return "{" + ",".join(self) + "}"
