"""The over-optimization figures: every line is told apart from every other."""

from __future__ import annotations

import matplotlib.colors as mcolors
import pytest

from rmguard.overopt.plots import distinct_styles, line_plot


def _look(line) -> tuple:
    return (mcolors.to_hex(line.get_color()), line.get_marker(), line.get_linestyle())


@pytest.mark.parametrize("count", [3, 10, 11, 14, 20, 25])
def test_every_unstyled_line_looks_different(count: int) -> None:
    x = [0.0, 1.0]
    lines = {f"row {k}": (x, [k, k + 1.0], [k - 0.1, k + 0.9], [k + 0.1, k + 1.1]) for k in range(count)}
    figure = line_plot(lines, "x", "y", "title")
    looks = [_look(line) for line in figure.axes[0].get_lines()]
    assert len(looks) == count
    assert len(set(looks)) == count  # matplotlib's own cycle repeats the first colour at the eleventh line


def test_given_styles_are_kept_and_not_reused() -> None:
    x = [0.0, 1.0]
    lines = {name: (x, [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]) for name in ["oracle", *map(str, range(10))]}
    figure = line_plot(lines, "x", "y", "t", {"oracle": {"color": "black", "linestyle": "--"}})
    looks = [_look(line) for line in figure.axes[0].get_lines()]
    assert looks[0] == ("#000000", "o", "--")
    assert len(set(looks)) == 11


def test_distinct_styles_beyond_ten_colours() -> None:
    styles = distinct_styles(14)
    assert len({mcolors.to_hex(s["color"]) for s in styles}) == 14
