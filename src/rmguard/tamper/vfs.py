"""An in-memory filesystem for the environments' shell: files are text, paths are POSIX.

Nothing here touches the host's disk. Size limits keep a model from exhausting memory with ``>>`` loops.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

MAX_TOTAL_BYTES = 8 * 1024 * 1024
MAX_ENTRIES = 10_000


class FSError(Exception):
    """A failed filesystem operation; the message reads like coreutils' ("No such file or directory")."""


@dataclass
class VirtualFS:
    """Directories and text files keyed by absolute, normalised path."""

    files: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=lambda: {"/"})

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

    def write(self, path: str, content: str, append: bool = False) -> None:
        if path in self.dirs:
            raise FSError("Is a directory")
        if posixpath.dirname(path) not in self.dirs:
            raise FSError("No such file or directory")
        new = (self.files.get(path, "") + content) if append else content
        growth = len(new) - len(self.files.get(path, ""))
        if growth > 0 and self.total_bytes() + growth > MAX_TOTAL_BYTES:
            raise FSError("No space left on device")
        if path not in self.files and len(self.files) + len(self.dirs) >= MAX_ENTRIES:
            raise FSError("No space left on device")
        self.files[path] = new

    def mkdir(self, path: str, parents: bool = False) -> None:
        if path in self.files:
            raise FSError("File exists")
        parent = posixpath.dirname(path)
        if parent not in self.dirs:
            if not parents:
                raise FSError("No such file or directory")
            self.mkdir(parent, parents=True)
        if len(self.files) + len(self.dirs) >= MAX_ENTRIES:
            raise FSError("No space left on device")
        self.dirs.add(path)

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
            del self.files[path]
            return
        if path not in self.dirs:
            raise FSError("No such file or directory")
        if not recursive:
            raise FSError("Is a directory")
        for child in self.walk(path):
            self.files.pop(child, None)
            self.dirs.discard(child)
        self.dirs.add("/")

    def total_bytes(self) -> int:
        return sum(len(content) for content in self.files.values())

    def relative_files(self, root: str) -> dict[str, str]:
        """Files below ``root``, keyed by path relative to it."""
        prefix = root.rstrip("/") + "/"
        return {p[len(prefix) :]: c for p, c in self.files.items() if p.startswith(prefix)}
