"""Progress without a terminal: timestamped lines in order, never a silence longer than the heartbeat."""

from __future__ import annotations

import io
import re
import time

from rmguard.cli import progress


def test_lines_in_order_when_not_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr(progress, "LINE_INTERVAL_S", 1000.0)
    stream = io.StringIO()
    with progress.stage_progress(stream=stream) as update:
        update("responses", 0, 10)
        update("responses", 5, 10)  # within the interval: not repeated
        update("responses", 10, 10)  # a finished stage is always said
        update("train proxies", 0, 3)
    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "responses: 0/10",
        "responses: 10/10",
        "train proxies: 0/3",
    ]
    assert all(re.match(r"\d\d:\d\d:\d\d \[ *\d+ s\] ", line) for line in lines)


def test_heartbeat_when_a_stage_is_silent(monkeypatch) -> None:
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.05)
    stream = io.StringIO()
    with progress.stage_progress(stream=stream) as update:
        update("score", 1, 4)
        time.sleep(0.3)
    assert "score: 1/4 (still working)" in stream.getvalue()


def test_disabled_progress_says_nothing() -> None:
    stream = io.StringIO()
    with progress.stage_progress(disable=True, stream=stream) as update:
        update("x", 1, 1)
    assert stream.getvalue() == ""


def test_a_note_is_one_timestamped_line_among_the_progress() -> None:
    stream = io.StringIO()
    with progress.stage_progress(stream=stream) as update:
        update("train", 0, 2)
        update.note("the proxies keep the first 2 layers")
    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["train: 0/2", "the proxies keep the first 2 layers"]
    assert re.match(r"\d\d:\d\d:\d\d \[ *\d+ s\] ", lines[1])
