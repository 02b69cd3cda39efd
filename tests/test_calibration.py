"""Post-hoc length calibration (Huang et al. 2025): LOWESS by hand and against statsmodels, the
out-of-sample rule, and ``rmguard calibrate`` → score / the scorer's paths on a tiny model."""

from __future__ import annotations

import bisect
import json
import random
import re

import numpy as np
import pytest

from rmguard.calibration import (
    CALIBRATION_FILE,
    LengthCalibration,
    fit_length_calibration,
    load_calibration,
    lowess,
)
from rmguard.data.records import ScoredResponse
from rmguard.errors import DataError

from helpers import GOOD_WORDS, PROMPT_WORDS, REPO, run_cli, write_jsonl

DOC = REPO / "docs" / "checkpoints.md"

X = [120, 45, 300, 45, 80, 210, 150, 600, 95, 410, 260, 35]
Y = [0.4, -0.3, 1.1, -0.1, 0.2, 0.9, 9.0, 2.2, 0.1, 1.6, 1.0, -0.5]
# statsmodels 0.15.0: sm.nonparametric.lowess(Y, X, frac=frac, it=it)[:, 1], printed to 12 decimals
STATSMODELS = {
    (0.6, 3): [-0.371114683591, -0.272851615057, -0.272851615057, 0.060894221191, 0.200603860646,
               0.37232500651, 0.541906382853, 0.826341155548, 1.004880072364, 1.158319244905,
               1.551416366526, 2.214526144784],
    (1.0, 3): [-0.198548580538, -0.145337877872, -0.145337877872, 0.039663286108, 0.118423406721,
               0.249059623819, 0.404832009036, 0.712560010869, 0.962270032142, 1.149892621032,
               1.545924037511, 2.222789070492],
    (0.5, 0): [-0.379384818346, -0.265408568557, -0.265408568557, 0.098117797353, 0.207205753147,
               3.243237545693, 3.38030569502, 2.829814826169, 1.29611112265, 1.233843932739,
               1.556500008135, 2.214525005948],
}  # fmt: skip


@pytest.mark.parametrize("frac, iterations", list(STATSMODELS))
def test_lowess_equals_statsmodels(frac, iterations):
    assert lowess(X, Y, frac, iterations) == pytest.approx(STATSMODELS[frac, iterations], abs=1e-11)


def weighted_line_at(x, y, weights, at):
    """The textbook weighted least-squares line through (x, y), evaluated at ``at``."""
    design = np.stack([np.ones_like(x), x], axis=1)
    root = np.sqrt(weights)[:, None]
    intercept, slope = np.linalg.lstsq(design * root, y * root[:, 0], rcond=None)[0]
    return intercept + slope * at


def test_lowess_by_hand_one_robustifying_pass():
    x, y = np.array([1.0, 2.0, 4.0, 5.0, 7.0]), np.array([1.0, 3.0, 2.0, 6.0, 5.0])
    # frac 0.8: k = 4 neighbours; for x = 1 they are 1, 2, 4, 5 (h = 4), for x = 7 they are 2, 4, 5, 7 ...
    windows = [(0, 4), (0, 4), (0, 4), (1, 5), (1, 5)]

    def one_pass(robust):
        fits = []
        for i, (lo, hi) in enumerate(windows):
            h = max(x[i] - x[lo], x[hi - 1] - x[i])
            tricube = (1 - (np.abs(x[lo:hi] - x[i]) / h) ** 3) ** 3
            fits.append(weighted_line_at(x[lo:hi], y[lo:hi], tricube * robust[lo:hi], x[i]))
        return np.array(fits)

    first = one_pass(np.ones(5))
    assert lowess(x, y, 0.8, 0) == pytest.approx(first, abs=1e-12)
    residuals = np.abs(y - first)
    u = np.minimum(residuals / (6 * np.median(residuals)), 1)
    assert lowess(x, y, 0.8, 1) == pytest.approx(one_pass((1 - u**2) ** 2), abs=1e-12)


def test_new_lengths_take_the_fit_at_the_first_reference_length_at_or_above():
    calibration = LengthCalibration((10.0, 20.0, 30.0), (1.0, 2.0, 3.0))
    assert calibration.f([5, 10, 11, 20, 29.5, 30, 31, 1e6]).tolist() == [1, 1, 2, 2, 3, 3, 3, 3]
    assert calibration.apply([5.0, 5.0], [10, 25]).tolist() == [4.0, 2.0]


def test_the_fit_keeps_one_value_per_distinct_length():
    calibration = fit_length_calibration(X, Y, 0.6, 3)
    assert calibration.lengths == (35, 45, 80, 95, 120, 150, 210, 260, 300, 410, 600)
    expected = STATSMODELS[0.6, 3]
    assert calibration.bias == pytest.approx([expected[0], *expected[2:]], abs=1e-11)
    assert calibration.responses == 12


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"lengths": [1, 2], "bias": [0.5]}', "field 'bias': lengths and bias differ in length"),
        ('{"lengths": [2, 1], "bias": [0, 0]}', "field 'lengths': lengths must increase"),
        (
            '{"lengths": [1, "x"], "bias": [0, 0]}',
            "field 'lengths': expected a non-empty list of finite numbers",
        ),
        ('{"lengths": [1], "bias": [NaN]}', "field 'bias': expected a non-empty list of finite numbers"),
    ],
)
def test_a_malformed_calibration_file_is_one_line(tmp_path, content, message):
    (tmp_path / CALIBRATION_FILE).write_text(content)
    with pytest.raises(DataError) as error:
        load_calibration(tmp_path)
    separator = ", " if message.startswith("field") else ": "
    assert str(error.value) == f"{tmp_path / CALIBRATION_FILE}{separator}{message}"


@pytest.fixture(scope="module")
def reward_model(tiny_llama, tmp_path_factory):
    from rmguard.training.modeling import build_reward_model, save_reward_model

    folder = tmp_path_factory.mktemp("rm") / "rm"
    save_reward_model(*build_reward_model(str(tiny_llama)), folder)
    return folder


def test_calibrate_then_score_reports_r_minus_f(reward_model, tmp_path):
    from rmguard.scoring import RewardScorer

    rng = random.Random(0)
    rows = [
        {
            "prompt": " ".join(rng.choices(PROMPT_WORDS, k=3)),
            "response": " ".join(rng.choices(GOOD_WORDS, k=rng.randint(1, 12))),
        }
        for _ in range(40)
    ]
    data = write_jsonl(tmp_path / "reference.jsonl", rows)
    calibrated = tmp_path / "calibrated"
    run = run_cli("calibrate", "--model", str(reward_model), "--data", str(data), "--output", str(calibrated))
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["responses"] == 40 and summary["output"] == str(calibrated)
    assert not (reward_model / CALIBRATION_FILE).exists()
    assert {p.name for p in reward_model.iterdir() if p.is_file()} | {CALIBRATION_FILE} == {
        p.name for p in calibrated.iterdir()
    }

    prompts, responses = [r["prompt"] for r in rows], [r["response"] for r in rows]
    raw = np.array(RewardScorer(reward_model).score(prompts, responses))
    lengths = [len(r) for r in responses]
    fit = lowess(lengths, raw, 1.0, 3)
    f = dict(zip(sorted(lengths), fit))  # tied lengths share a fit
    expected = raw - np.array([f[n] for n in lengths])
    saved = json.loads((calibrated / CALIBRATION_FILE).read_text())
    assert saved["bias"] == pytest.approx([f[n] for n in saved["lengths"]], abs=1e-6)

    scored = run_cli(
        "score", "--model", str(calibrated), "--data", str(data), "--output", str(tmp_path / "s.jsonl")
    )
    assert scored.returncode == 0, scored.stderr
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [line["reward"] for line in lines] == pytest.approx(expected.tolist(), abs=1e-5)

    scorer = RewardScorer(calibrated)
    items = [ScoredResponse(p, r) for p, r in zip(prompts, responses)]
    assert scorer.score(prompts, responses) == pytest.approx(expected.tolist(), abs=1e-5)
    assert scorer.rewards(scorer.features(items)).tolist() == pytest.approx(expected.tolist(), abs=1e-5)
    assert RewardScorer(calibrated, calibrated=False).score(prompts, responses) == pytest.approx(
        raw, abs=1e-6
    )

    code = re.search(r"<!-- length-calibration[^>]*-->\s*```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    for response, reward, want in zip(responses, raw, expected):
        scope = {
            "bisect": bisect,
            "json": json,
            "ckpt": str(calibrated),
            "response": response,
            "reward": reward,
        }
        exec(code, scope)  # docs/checkpoints.md's lines, as written
        assert scope["calibrated"] == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--frac", "0"], "--frac must lie in (0, 1]"),
        (["--iterations", "-1"], "--iterations"),
    ],
)
def test_calibrate_refuses_bad_settings_in_one_line(cli, reward_model, tmp_path, args, message):
    data = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "p1", "response": "g1"}] * 3)
    run = cli(
        "calibrate", "--model", str(reward_model), "--data", str(data), "--output", str(tmp_path / "o"), *args
    )
    assert run.returncode != 0 and message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "o").exists()
