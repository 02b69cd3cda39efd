"""Atomic writes: a reader never sees a half-written output that looks complete; outputs get the modes
the user's umask gives any new file (0644 and 0755 under umask 022), not a temporary file's 0600."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rmguard.errors import ConfigError, DataError


def not_utf8(path: str | Path) -> DataError:
    """The error for a file that does not decode as UTF-8, at the line of its first bad byte."""
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        return DataError(
            str(path),
            f"not UTF-8 text (byte {error.start - line_start + 1} of the line)",
            row=data.count(b"\n", 0, error.start) + 1,
        )
    return DataError(str(path), "not UTF-8 text")


def read_json(path: str | Path) -> Any:
    """A JSON file's content; text that is not UTF-8 JSON is a DataError naming the file and line."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except json.JSONDecodeError as error:
        raise DataError(str(path), f"not valid JSON: {error.msg}", row=error.lineno) from None


def check_outputs(outputs: Iterable[str | Path], inputs: Iterable[str | Path], folders: bool = False) -> None:
    """Raise before any work when an output cannot be written (its parent is a file, it is a folder where a
    file is wanted, the place is read-only) or is one of the inputs: the same path, or the same file or
    folder reached through a link (writing it would destroy the input)."""
    outputs = [Path(output) for output in outputs]
    for output in outputs:
        _check_writable(output, folders)
    existing = [Path(source) for source in inputs if Path(source).exists()]
    for output in outputs:
        for source in existing:
            same = (
                os.path.samefile(output, source) if output.exists() else output.resolve() == source.resolve()
            )
            if same:
                raise ConfigError(f"output {output} is the input {source}; write the output somewhere else")


def _check_writable(output: Path, folder: bool) -> None:
    if output.is_dir() and not folder:
        raise ConfigError(f"cannot write {output}: it is a folder")
    existing = next(parent for parent in output.parents if parent.exists())
    if not existing.is_dir():
        raise ConfigError(f"cannot write {output}: {existing} is a file, not a folder")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise ConfigError(f"cannot write {output}: {error.strerror or error}") from None


@contextlib.contextmanager
def output_lock(target: str | Path) -> Iterator[None]:
    """Hold ``TARGET.lock`` exclusively while writing ``target``; a second writer is refused with one line.

    The lock is a kernel lock (``flock``) on a file that names its owner (pid, host, start time): it ends
    with the owning process however that process ends, so a lock file left by a killed run is stale by
    construction and the next run takes it over. The owner removes the file when it is done (so a refused
    or finished run leaves nothing beside its output), still holding the lock; a newcomer that opened the
    file just before it went checks that it locked the file now at that path, and retries if not.
    """
    import fcntl

    path = Path(f"{Path(target).resolve()}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(
                f"{target} is being written by {owner} (lock {path}); wait for it to finish"
            ) from None
        if _same_file(handle, path):
            break
        handle.close()  # its owner removed it after we opened it: lock the file now at the path
    try:
        _write_owner(handle)
        yield
    finally:
        path.unlink(missing_ok=True)
        handle.close()


def _same_file(handle: Any, path: Path) -> bool:
    try:
        now, held = os.stat(path), os.fstat(handle.fileno())
        return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)
    except FileNotFoundError:
        return False


def _write_owner(handle: Any) -> None:
    import socket
    import time

    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
    handle.flush()


# Written last into a folder, so its presence means every other file is complete.
COMMIT_MARKERS = ("rmguard.json",)


@contextlib.contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a scratch folder beside ``target``; on success its files move into ``target``.

    A new ``target`` appears by one rename. Into an existing one (which may hold checkpoints) each file
    moves by ``os.replace`` and the commit markers move last.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as error:  # a file where a folder must be, a read-only place: the user's to fix
        raise ConfigError(f"cannot write {target}: {error.strerror or error}") from None
    try:
        yield scratch
        umask_modes(scratch)
        if not target.exists():
            os.rename(scratch, target)
            return
        names = sorted(os.listdir(scratch), key=lambda name: name in COMMIT_MARKERS)
        for name in names:
            destination = target / name
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            os.replace(scratch / name, destination)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~umask())  # mkstemp's 0600 would become the output's mode
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def umask() -> int:
    """The process's umask, read without changing it (``os.umask`` sets it: a race with other threads)."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)  # no /proc: the only portable way to read it
    os.umask(mask)
    return mask


def umask_modes(folder: str | Path) -> None:
    """Give ``folder`` and everything in it the modes the umask gives new files and folders: mkdtemp's
    0700, and the 0600 that some writers (safetensors) leave, would become the output's modes."""
    mask = umask()
    for path in [Path(folder), *Path(folder).rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
