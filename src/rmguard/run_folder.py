"""One run per output: an output that already holds a run is refused unless the user says how to go on.

The rule of transformers' Trainer (``overwrite_output_dir``), for every command that writes a run's folder
(or file): ``--resume_from_checkpoint latest`` continues the run there (for train, from its newest
checkpoint; for the commands that cache their finished work, by reusing it), ``--overwrite_output_dir``
starts over and removes the old run's files first. Commands that cannot continue a run offer the second
only. Without either, the run is refused in one line that names the output and the ways on.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rmguard.errors import ConfigError
from rmguard.settings import option

RESUME, OVERWRITE = "--resume_from_checkpoint latest", "--overwrite_output_dir"


@dataclass
class Overwrite:
    """The option of a command that cannot continue a run."""

    overwrite_output_dir: bool = option(False, "Start over: remove the run already in the output first.")


@dataclass
class ResumeOrOverwrite(Overwrite):
    """The options of a command that continues a run by reusing the finished work in its output."""

    resume_from_checkpoint: str | None = option(
        None, "'latest': continue the run already in the output, reusing its finished work."
    )

    def __post_init__(self) -> None:
        if self.resume_from_checkpoint not in (None, "latest"):
            raise ConfigError(
                f"resume_from_checkpoint {self.resume_from_checkpoint!r}: this command continues the run in "
                "its own output; use 'latest'"
            )


def holds_run(output: str | Path) -> bool:
    """Whether ``output`` already holds something: a folder with any entry, or a non-empty file."""
    path = Path(output)
    if path.is_dir():
        return any(path.iterdir())
    return path.is_file() and path.stat().st_size > 0


def claim_output(
    output: str | Path,
    resume: str | None,
    overwrite: bool,
    inputs: Iterable[str | Path] = (),
    resumable: bool = True,
    companions: Iterable[str | Path] = (),
) -> None:
    """Raise a one-line :class:`ConfigError` when ``output`` holds a run and neither ``resume`` nor
    ``overwrite`` says what to do with it; with ``overwrite``, remove it (and its ``companions``, files a
    run writes beside it) before anything else. An output that is or holds one of ``inputs``, or holds the
    current folder, is never removed."""
    path = Path(output)
    if resume and overwrite:
        raise ConfigError(f"{RESUME.split()[0]} and {OVERWRITE} exclude each other; give one")
    if not holds_run(path) or (resume and resumable):
        return
    if not overwrite:
        ways = f"continue it with {RESUME} or start over" if resumable else "start over"
        raise ConfigError(f"{path} holds a run already; {ways} with {OVERWRITE} (removes its files)")
    _refuse_removing_inputs(path, inputs)
    from rmguard.fileio import output_lock

    with output_lock(path):  # never under a run still writing it
        if path.is_dir():
            for entry in path.iterdir():
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        else:
            path.unlink()
        for companion in companions:
            Path(companion).unlink(missing_ok=True)


def _refuse_removing_inputs(path: Path, inputs: Iterable[str | Path]) -> None:
    resolved = path.resolve()
    for source in [*inputs, os.getcwd()]:
        if source and (resolved == Path(source).resolve() or resolved in Path(source).resolve().parents):
            raise ConfigError(
                f"{OVERWRITE} would remove {path}, which holds {source}; write the run elsewhere"
            )
