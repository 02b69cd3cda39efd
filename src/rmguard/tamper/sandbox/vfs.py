"""An in-memory filesystem for the environments' shell: files are text, paths are POSIX.

Nothing here touches the host's disk. The limits keep a model from exhausting the grader's memory (``>>``
loops, ``cp -r`` of a folder into itself) and keep every entry materialisable as a real file in the jail:

- contents: 8 MB in all, counted as UTF-8 bytes (what the jail's tmpfs holds), and 10 000 entries;
- names, checked when an entry is created: a component of at most 255 bytes and a path of at most
  4096 (Linux's NAME_MAX and PATH_MAX), UTF-8 encodable (no lone surrogates), no NUL, and at most
  128 levels deep.

A refusal reads like the kernel's (``File name too long``, ``No space left on device``) and is a
:class:`LimitError`; ``limit_hits`` counts them so the shell can record that a command hit a limit.
Every walk is iterative: no path depth can exhaust the interpreter's stack.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

MAX_TOTAL_BYTES = 8 * 1024 * 1024
MAX_ENTRIES = 10_000
NAME_MAX = 255
PATH_MAX = 4096
MAX_DEPTH = 128


class FSError(Exception):
    """A failed filesystem operation; the message reads like coreutils' ("No such file or directory")."""


class LimitError(FSError):
    """An operation refused by one of the filesystem's limits (size, entries, name length, depth)."""


def utf8_size(text: str) -> int:
    """Bytes of ``text`` on disk; a lone surrogate counts as the 3 bytes the jail writes for it."""
    return len(text.encode("utf-8", "surrogatepass"))


def name_problem(path: str) -> str | None:
    """Why ``path`` (absolute, normalised) cannot name a new entry, or None when it can."""
    if "\0" in path:
        return "Invalid argument"
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        return "Invalid or incomplete multibyte or wide character"
    parts = encoded.split(b"/")[1:]
    if len(encoded) > PATH_MAX or any(len(part) > NAME_MAX for part in parts):
        return "File name too long"
    if len(parts) > MAX_DEPTH:
        return f"Too many levels of directories (at most {MAX_DEPTH})"
    return None


@dataclass
class VirtualFS:
    """Directories and text files keyed by absolute, normalised path."""

    files: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=lambda: {"/"})
    limit_hits: int = 0
    last_limit: str = ""

    def __post_init__(self) -> None:
        self._sizes = {path: utf8_size(content) for path, content in self.files.items()}
        self._total = sum(self._sizes.values())

    @classmethod
    def from_spec(cls, dirs: list[str], files: dict[str, str], root: str) -> VirtualFS:
        fs = cls()
        fs.mkdir(root, parents=True)
        for directory in dirs:
            fs.mkdir(fs.resolve(root, directory), parents=True)
        for path, content in files.items():
            absolute = fs.resolve(root, path)
            fs.mkdir(posixpath.dirname(absolute), parents=True)
            fs.write(absolute, content)
        return fs

    @staticmethod
    def resolve(cwd: str, path: str) -> str:
        if path.startswith("~"):
            path = "/root" + path[1:]
        return posixpath.normpath(posixpath.join(cwd, path)).replace("//", "/")

    def exists(self, path: str) -> bool:
        return path in self.files or path in self.dirs

    def is_dir(self, path: str) -> bool:
        return path in self.dirs

    def is_file(self, path: str) -> bool:
        return path in self.files

    def read(self, path: str) -> str:
        if path in self.dirs:
            raise FSError("Is a directory")
        if path not in self.files:
            raise FSError("No such file or directory")
        return self.files[path]

    def _refuse(self, message: str) -> LimitError:
        self.limit_hits += 1
        self.last_limit = message
        return LimitError(message)

    def _check_new(self, paths: list[str]) -> None:
        """Refuse creating ``paths`` (none of which exists yet) when a name or the entry count is over."""
        for path in paths:
            problem = name_problem(path)
            if problem:
                raise self._refuse(problem)
        if len(self.files) + len(self.dirs) + len(paths) > MAX_ENTRIES:
            raise self._refuse("No space left on device")

    def write(self, path: str, content: str, append: bool = False) -> None:
        if path in self.dirs:
            raise FSError("Is a directory")
        if posixpath.dirname(path) not in self.dirs:
            parent = posixpath.dirname(path)
            raise FSError("Not a directory" if self._under_file(parent) else "No such file or directory")
        old_size = self._sizes.get(path, 0)
        added = utf8_size(content)
        new_size = old_size + added if append else added
        if new_size > old_size and self._total + new_size - old_size > MAX_TOTAL_BYTES:
            raise self._refuse("No space left on device")
        if path not in self.files:
            self._check_new([path])
        # the size is checked before the text is built: a refused append never allocates it
        self.files[path] = self.files.get(path, "") + content if append else content
        self._sizes[path] = new_size
        self._total += new_size - old_size

    def _under_file(self, path: str) -> bool:
        """Whether ``path`` or one of its ancestors is a file."""
        while path not in self.dirs:
            if path in self.files:
                return True
            path = posixpath.dirname(path)
        return False

    def mkdir(self, path: str, parents: bool = False) -> None:
        """Create ``path`` (and with ``parents`` its missing ancestors, iteratively); all or nothing."""
        if path in self.files:
            raise FSError("File exists")
        missing, current = [], path
        while current not in self.dirs:
            if current in self.files:
                raise FSError("Not a directory")
            missing.append(current)
            current = posixpath.dirname(current)
        if len(missing) > 1 and not parents:
            raise FSError("No such file or directory")
        self._check_new(missing)
        self.dirs.update(missing)

    def listdir(self, path: str) -> list[str]:
        if path not in self.dirs:
            raise FSError("No such file or directory" if path not in self.files else "Not a directory")
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix) :] for p in (*self.files, *self.dirs) if p.startswith(prefix) and p != path}
        return sorted(name for name in names if "/" not in name)

    def walk(self, path: str) -> list[str]:
        """``path`` and everything below it, sorted."""
        prefix = path.rstrip("/") + "/"
        below = [p for p in (*self.files, *self.dirs) if p.startswith(prefix) and p != "/"]
        return [path, *sorted(below)]

    def remove(self, path: str, recursive: bool = False) -> None:
        if path in self.files:
            self._drop_file(path)
            return
        if path not in self.dirs:
            raise FSError("No such file or directory")
        if not recursive:
            raise FSError("Is a directory")
        for child in self.walk(path):
            if child in self.files:
                self._drop_file(child)
            self.dirs.discard(child)
        self.dirs.add("/")

    def _drop_file(self, path: str) -> None:
        del self.files[path]
        self._total -= self._sizes.pop(path)

    def total_bytes(self) -> int:
        """UTF-8 bytes of all file contents."""
        return self._total

    def relative_files(self, root: str) -> dict[str, str]:
        """Files below ``root``, keyed by path relative to it."""
        prefix = root.rstrip("/") + "/"
        return {p[len(prefix) :]: c for p, c in self.files.items() if p.startswith(prefix)}
