"""Over-optimization plots: one line per reward model with its interval band, saved as PNG."""

from __future__ import annotations

import base64
import io
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rmguard.fileio import atomic_write_bytes  # noqa: E402

Band = tuple[Sequence[float], Sequence[float], Sequence[float], Sequence[float]]  # x, mean, low, high


def line_plot(
    lines: dict[str, Band],
    xlabel: str,
    ylabel: str,
    title: str,
    styles: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """A figure with a mean line and a shaded interval per entry (missing bounds are simply not shaded).

    Lines without a style of their own get :func:`distinct_styles`, so no two of them look alike."""
    styles = styles or {}
    figure, axis = plt.subplots(figsize=(8.4, 4.2), dpi=110)
    free = distinct_styles(sum(name not in styles for name in lines))
    for name, (x, mean, low, high) in lines.items():
        style = styles[name] if name in styles else free.pop(0)
        (line,) = axis.plot(x, mean, markersize=3, label=name, **{"marker": "o", **style})
        ok = [i for i in range(len(x)) if not (math.isnan(low[i]) or math.isnan(high[i]))]
        if ok:
            axis.fill_between(
                [x[i] for i in ok],
                [low[i] for i in ok],
                [high[i] for i in ok],
                color=line.get_color(),
                alpha=0.15,
            )
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title("\n".join(textwrap.fill(line, 70) for line in title.splitlines()), fontsize=9)
    axis.grid(alpha=0.3)
    # outside the axes, so that no curve (the oracle's first of all) hides behind it
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    figure.tight_layout()
    return figure


def distinct_styles(count: int) -> list[dict[str, Any]]:
    """``count`` line styles that differ pairwise: matplotlib's ten-colour cycle repeats from the eleventh
    line, so beyond ten the lines take tab20's dark hues, then its light ones, each light one also with
    another marker and a dash-dot line; beyond twenty, a sampled colormap."""
    if count <= 10:
        return [{"color": colour} for colour in plt.get_cmap("tab10").colors[:count]]
    if count <= 20:
        tab20 = plt.get_cmap("tab20").colors
        dark, light = tab20[0::2], tab20[1::2]
        return [{"color": c} for c in dark] + [
            {"color": c, "marker": "s", "linestyle": "-."} for c in light[: count - 10]
        ]
    turbo = plt.get_cmap("turbo")
    return [{"color": turbo(k / (count - 1)), "marker": "os^"[k % 3]} for k in range(count)]


def save_png(figure: Any, path: str | Path) -> bytes:
    """Write the figure atomically and return the PNG bytes (for inlining into a report)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    return data


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _bands(result: Any, metric: str, selectors: Sequence[str], x: Sequence[float]) -> dict[str, Band]:
    """Bootstrap interval over seeds and prompts (over prompts for a single-seed selector)."""
    bands = {}
    for name in selectors:
        rows = result.curves[name][metric]
        bands[name] = (
            x,
            [r["mean"] for r in rows],
            [r["both_low"] for r in rows],
            [r["both_high"] for r in rows],
        )
    return bands


def plot_bon(
    result: Any, out: Path, length_unit: str, selectors: Sequence[str] | None = None
) -> dict[str, bytes]:
    """gold_vs_kl.png, proxy_vs_kl.png, gap_vs_kl.png and length_vs_kl.png for best-of-n curves."""
    selectors = list(selectors or result.curves)
    level = f"{round(result.level * 100)}%"
    note = f"mean over seeds and prompts; bands: {level} bootstrap interval over seeds and prompts"
    specs = {
        "gold_vs_kl": ("gold", "gold reward of the proxy's pick"),
        "proxy_vs_kl": ("proxy_z", "proxy score of the pick (pool z-score)"),
        "gap_vs_kl": ("gap", "proxy z − gold z of the pick"),
        "length_vs_kl": ("length", f"length of the pick ({length_unit})"),
    }
    styles = {
        name: {"color": "black", "linestyle": "--"} for name in selectors if result.kinds[name] == "oracle"
    }
    controls = [name for name in selectors if result.kinds[name] == "control"]  # training-free selectors
    styles.update({name: {"color": f"0.{2 + 2 * k}", "linestyle": ":"} for k, name in enumerate(controls)})
    pngs = {}
    for stem, (metric, ylabel) in specs.items():
        chosen = [s for s in selectors if not (metric in ("proxy_z", "gap") and result.kinds[s] == "oracle")]
        figure = line_plot(
            _bands(result, metric, chosen, result.kl),
            "KL_BoN = log n − (n−1)/n  (nats)",
            ylabel,
            f"Best-of-n, n = 1…{result.ns[-1]}: {ylabel}\n{note}",
            styles,
        )
        pngs[stem] = save_png(figure, out / f"{stem}.png")
    return pngs
