"""Post-hoc length calibration of a reward model (Huang et al., ICLR 2025, "Post-hoc Reward Calibration:
A Case Study on Length Bias", arXiv 2409.17407; code: ZeroYuHuang/Reward-Calibration).

    r̂(x, y) = r(x, y) − f(ℓ(y))

f is a LOWESS fit (locally weighted linear regression, robustified) of reward on response length over a
reference set of responses the model has scored; subtracting it removes the part of the reward that length
alone predicts. The choices are the reference code's (``src/calibrate_rewardbench.py``,
``calibrate_score_LWR``): ℓ is the response's length in characters (``output_len_char``: the response
text only, no prompt or chat template), f is ``statsmodels.nonparametric.lowess(reward, length, frac)``
with its defaults (3 robustifying iterations, delta 0), frac = 1.0 (its RewardBench run; 0.3 in its
AlpacaEval run), and a new length is given the fitted value of the first reference length at or above
it (``bisect_left`` on the sorted lengths). Beyond the longest reference length, where the reference code
has no value, f keeps the last fitted value.

``rmguard calibrate`` fits f on a reference file and writes a copy of the model with
:data:`CALIBRATION_FILE` beside its weights; :class:`rmguard.scoring.RewardScorer` applies it to every
reward of a model folder that carries one (the raw reward first calibrated, then any normalisation).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rmguard import checks
from rmguard.data.formats import response_text
from rmguard.data.records import Text
from rmguard.errors import ConfigError, DataError
from rmguard.fileio import atomic_directory, atomic_write_json, check_outputs, output_lock, read_json
from rmguard.settings import option, required

CALIBRATION_FILE = "length_calibration.json"
PAPER = "Huang et al. 2025, Post-hoc Reward Calibration: A Case Study on Length Bias (arXiv 2409.17407)"


def response_length(response: Text) -> int:
    """ℓ(y): the response's length in characters (the assistant turns' text for chat responses)."""
    return len(response_text(response))


def lowess(x: Sequence[float], y: Sequence[float], frac: float = 1.0, iterations: int = 3) -> np.ndarray:
    """Cleveland's robust LOWESS as ``statsmodels.nonparametric.lowess(y, x, frac, it, delta=0)`` computes
    it: the fitted values at the points, sorted by x (stably: input order among equal x).

    Each point's fit is a weighted linear regression over its k = ⌊frac·n⌋ (at least 2) nearest points in
    x order, w_j = (1 − (|x_j − x_i| / h_i)³)³ · δ_j with h_i the distance to the farther end of that
    window: ŷ_i = Σ_j w̃_j (1 + (x_i − x̄)(x_j − x̄) / Σ_j w̃_j (x_j − x̄)²) y_j, w̃ = w / Σ w, x̄ = Σ w̃_j x_j.
    Points that tie in x share the first one's fit; a window with fewer than 2 positive weights (all its
    x equal) keeps the point's own y. After each pass the robustness weights are δ_j = B(e_j / 6s), e the
    absolute residuals, s their median, B(u) = (1 − u²)² for u < 1 and 0 beyond; ``iterations`` such
    passes follow the first, stopping early when s ≤ 1e-7.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    k = min(max(int(frac * len(xs) + 1e-10), 2), len(xs))
    robust = np.ones(len(xs))
    for _ in range(iterations + 1):
        fit = _local_fits(xs, ys, robust, k)
        residuals = np.abs(ys - fit)
        scale = float(np.median(residuals))
        if scale <= 1e-7:
            break
        robust = (1 - np.minimum(residuals / (6 * scale), 1.0) ** 2) ** 2
    return fit


def _local_fits(xs: np.ndarray, ys: np.ndarray, robust: np.ndarray, k: int) -> np.ndarray:
    """One LOWESS pass over sorted ``xs``: the window of k neighbours slides right while the point lies
    right of its middle, as statsmodels' ``update_neighborhood`` does."""
    n = len(xs)
    fit = np.empty(n)
    left, right, i = 0, k, 0
    while i < n:
        xval = xs[i]
        while right < n and xval > (xs[left] + xs[right]) / 2:
            left, right = left + 1, right + 1
        window, radius = xs[left:right], max(xval - xs[left], xs[right - 1] - xval)
        weights = (
            (1 - (np.abs(window - xval) / radius) ** 3) ** 3 * robust[left:right] if radius > 0 else None
        )
        if weights is None or np.count_nonzero(weights > 1e-12) < 2:
            fit[i] = ys[i]
        else:
            weights = weights / weights.sum()
            mean = float(weights @ window)
            spread = max(float(weights @ (window - mean) ** 2), 1e-12)
            fit[i] = float((weights * (1 + (xval - mean) * (window - mean) / spread)) @ ys[left:right])
        j = i + 1
        while j < n and xs[j] == xval:
            fit[j] = fit[i]
            j += 1
        i = j
    return fit


@dataclass(frozen=True)
class LengthCalibration:
    """f as fitted: the distinct reference ``lengths`` (increasing) and the LOWESS fit ``bias`` at each."""

    lengths: tuple[float, ...]
    bias: tuple[float, ...]
    frac: float = 1.0
    iterations: int = 3
    responses: int = 0

    def f(self, lengths: Sequence[float]) -> np.ndarray:
        """f(ℓ): the fit at the first reference length ≥ ℓ (the reference code's ``bisect_left``), the last
        fit beyond the longest."""
        index = np.searchsorted(np.asarray(self.lengths), np.asarray(lengths, dtype=np.float64), side="left")
        return np.asarray(self.bias)[np.minimum(index, len(self.lengths) - 1)]

    def apply(self, rewards: Sequence[float], lengths: Sequence[float]) -> np.ndarray:
        """r̂ = r − f(ℓ)."""
        return np.asarray(rewards, dtype=np.float64) - self.f(lengths)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": "lowess",
            "paper": PAPER,
            "length": "characters of the response text",
            "frac": self.frac,
            "iterations": self.iterations,
            "responses": self.responses,
            "lengths": list(self.lengths),
            "bias": list(self.bias),
        }


def fit_length_calibration(
    lengths: Sequence[float], rewards: Sequence[float], frac: float = 1.0, iterations: int = 3
) -> LengthCalibration:
    """f fitted by :func:`lowess` on a reference set's response lengths and rewards."""
    if len(lengths) != len(rewards) or len(lengths) < 2:
        raise ValueError(f"need at least 2 (length, reward) points, got {len(lengths)} and {len(rewards)}")
    fit = lowess(lengths, rewards, frac, iterations)
    xs = np.sort(np.asarray(lengths, dtype=np.float64), kind="stable")
    first = np.concatenate([[True], xs[1:] != xs[:-1]])  # equal lengths share one fit
    return LengthCalibration(
        tuple(xs[first].tolist()), tuple(fit[first].tolist()), frac, iterations, len(lengths)
    )


def load_calibration(folder: str | Path) -> LengthCalibration | None:
    """The calibration a model folder carries, or None; a malformed file is one line naming it."""
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(str(path), "expected a JSON object")
    columns = {}
    for name in ("lengths", "bias"):
        values = data.get(name)
        if not isinstance(values, list) or not values or not all(_is_number(v) for v in values):
            raise DataError(str(path), "expected a non-empty list of finite numbers", field=name)
        columns[name] = tuple(float(v) for v in values)
    if len(columns["lengths"]) != len(columns["bias"]):
        raise DataError(str(path), "lengths and bias differ in length", field="bias")
    if any(b <= a for a, b in zip(columns["lengths"], columns["lengths"][1:])):
        raise DataError(str(path), "lengths must increase", field="lengths")
    return LengthCalibration(
        columns["lengths"],
        columns["bias"],
        data.get("frac", 1.0),
        data.get("iterations", 3),
        data.get("responses", 0),
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class CalibrateConfig:
    """``rmguard calibrate``: fit f on a reference file scored by the model, write the model with it."""

    model: str = required("Reward-model folder to calibrate.")
    data: str = required(
        "Reference responses: a prompt/response file (one response per line) or a pair file (both sides)."
    )
    output: str = required("New folder: the model's files and length_calibration.json.")
    frac: float = option(1.0, "LOWESS span: the fraction of reference responses in each local fit.")
    iterations: int = option(3, "LOWESS robustifying iterations after the first fit.")
    batch_size: int = option(16, "Responses per forward pass.")
    max_length: int | None = option(None, "Cut prompts from the left beyond this many tokens.")
    data_format: str = option("auto", "Pair format of a pair file (see rmguard train --help).")

    def __post_init__(self) -> None:
        checks.fraction("frac", self.frac, exclude_zero=True)
        checks.at_least("iterations", self.iterations, 0)
        checks.at_least("batch_size", self.batch_size)
        if self.max_length is not None:
            checks.at_least("max_length", self.max_length)


def calibrate_model(config: CalibrateConfig) -> dict[str, Any]:
    """Score ``config.data`` with the model's raw rewards, fit f, and write ``config.output``: the model
    folder's files (hard links where the file system allows, else copies; its subfolders, such as
    training checkpoints, are left out) and :data:`CALIBRATION_FILE`. Returns a summary with the Spearman
    correlation of reward and length before and after calibration on the reference set."""
    from scipy.stats import spearmanr

    from rmguard.scoring import RewardScorer, load_score_items

    if not Path(config.model).is_dir():
        raise ConfigError(f"--model {config.model} is not a reward-model folder")
    output = Path(config.output)
    check_outputs([output], [config.model, config.data], folders=True)
    if output.exists() and any(output.iterdir()):
        raise ConfigError(
            f"output {output} exists and is not empty; write the calibrated model to a new folder"
        )
    _, items, _, _ = load_score_items(config.data, config.data_format)
    if len(items) < 2:
        raise DataError(config.data, f"a calibration needs at least 2 responses, got {len(items)}")
    with output_lock(output):
        scorer = RewardScorer(config.model, config.batch_size, config.max_length, calibrated=False)
        rewards = scorer.score_items(items).numpy()
        lengths = [response_length(item.response) for item in items]
        calibration = fit_length_calibration(lengths, rewards, config.frac, config.iterations)
        with atomic_directory(output) as scratch:
            _link_model_files(Path(config.model), scratch)
            atomic_write_json(scratch / CALIBRATION_FILE, calibration.to_json())
    after = calibration.apply(rewards, lengths)
    return {
        "responses": len(items),
        "spearman_length_reward": _correlation(spearmanr, lengths, rewards),
        "spearman_length_calibrated_reward": _correlation(spearmanr, lengths, after),
        "output": str(output),
    }


def _link_model_files(model: Path, target: Path) -> None:
    for source in sorted(model.iterdir()):
        if not source.is_file() or source.name == CALIBRATION_FILE:
            continue
        try:
            os.link(source, target / source.name)
        except OSError:
            shutil.copy2(source, target / source.name)


def _correlation(method: Any, x: Sequence[float], y: Sequence[float]) -> float | None:
    value = float(method(x, y).statistic)
    return None if math.isnan(value) else value
