"""One progress display for long sub-commands, fed by ``update(stage, done, total)``.

On a terminal every stage gets a live rich bar. Redirected to a file or in CI (no terminal on stderr),
bars would only appear at the end, out of order; there each update is one timestamped line instead, in
order, at most one per stage every few seconds, and a heartbeat line when nothing was said for 30 s.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Update = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Stages:
    """What ``stage_progress`` yields: call it as ``update(stage, done, total)``; ``note(text)`` says one
    sentence among the progress (a timestamped line off a terminal, a line above the bars on one)."""

    update: Update
    note: Callable[[str], None]

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.update(stage, done, total)


LINE_INTERVAL_S = 5.0  # a stage's progress lines, at most this often (first and last always)
HEARTBEAT_S = 30.0  # the longest silence in line mode


@contextmanager
def stage_progress(disable: bool = False, stream=None) -> Iterator[Stages]:
    """Yields ``update(stage, done, total)``: live bars on a terminal, timestamped lines otherwise."""
    stream = stream or sys.stderr
    if disable:
        yield Stages(lambda stage, done, total: None, lambda text: None)
    elif stream.isatty():
        with _bars() as update:
            yield update
    else:
        with _lines(stream) as update:
            yield update


@contextmanager
def _bars() -> Iterator[Stages]:
    progress = Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    with progress:
        yield Stages(update, progress.console.print)


@contextmanager
def _lines(stream) -> Iterator[Stages]:
    start = time.monotonic()
    lock = threading.Lock()
    state = {"said": start, "stage": "", "done": 0, "total": 0}
    last_line: dict[str, float] = {}
    stop = threading.Event()

    def say(text: str) -> None:
        elapsed = time.monotonic() - start
        stream.write(f"{time.strftime('%H:%M:%S')} [{elapsed:6.0f} s] {text}\n")
        stream.flush()
        state["said"] = time.monotonic()

    def update(stage: str, done: int, total: int) -> None:
        with lock:
            now = time.monotonic()
            state.update(stage=stage, done=done, total=total)
            due = now - last_line.get(stage, -LINE_INTERVAL_S) >= LINE_INTERVAL_S
            if stage not in last_line or done >= total or due:
                last_line[stage] = now
                say(f"{stage}: {done}/{total}")

    def heartbeat() -> None:
        while not stop.wait(min(1.0, HEARTBEAT_S)):
            with lock:
                if time.monotonic() - state["said"] >= HEARTBEAT_S and state["stage"]:
                    say(f"{state['stage']}: {state['done']}/{state['total']} (still working)")

    beat = threading.Thread(target=heartbeat, daemon=True)
    beat.start()

    def note(text: str) -> None:
        with lock:
            say(text)

    try:
        yield Stages(update, note)
    finally:
        stop.set()
        beat.join()
