"""The study's proxies' measurements against plain transformers, and the study configs."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rmguard.data.formats import chat_pair
from rmguard.data.records import ScoredResponse
from rmguard.errors import ConfigError
from rmguard.overopt.study.pipeline import StudyConfig, run_study
from rmguard.overopt.study.proxies import frozen_pass, lm_head_weight, lm_logprobs, untrained_model
from rmguard.training import frozen_prefix
from rmguard.training.modeling import build_reward_model
from rmguard.training.tokenization import tokenize_responses

from helpers import save_tiny_model, synthetic_pair

EXAMPLES = Path(__file__).parents[2] / "examples" / "overoptimization"


@pytest.fixture(scope="module")
def texts():
    rng = random.Random(3)
    rows = [synthetic_pair(rng) for _ in range(12)]
    chats = [chat_pair(r["prompt"], r[k]) for r in rows for k in ("chosen", "rejected")]
    return [p for p, _ in chats], [r for _, r in chats]


@pytest.mark.parametrize("tied", [True, False])
def test_lm_logprobs_are_the_language_models_exact_log_probs(tmp_path, texts, tied):
    """The study's log-prob per token: the whole vocabulary's log-softmax through the model's own LM head,
    equal to plain transformers' causal LM on the same tokens (a standard model reads the tied embeddings)."""
    from transformers import AutoModelForCausalLM

    path = save_tiny_model(tmp_path, num_hidden_layers=3, tie_word_embeddings=tied)
    prompts, responses = texts
    frozen_prefix.forget()
    model, tokenizer = untrained_model(str(path), trainable_layers=1)
    sums, counts = lm_logprobs(model, tokenizer, prompts, responses, batch_size=5)
    reference = AutoModelForCausalLM.from_pretrained(path).eval()
    items = [ScoredResponse(p, r) for p, r in zip(prompts, responses)]
    for k, feature in enumerate(tokenize_responses(items, tokenizer)):
        ids = torch.tensor([feature.prompt_ids + feature.response_ids])
        with torch.no_grad():
            logps = torch.log_softmax(reference(ids).logits[0].double(), -1)
        first = len(feature.prompt_ids)
        want = sum(logps[t - 1, ids[0, t]].item() for t in range(first, ids.shape[1]))
        assert counts[k] == len(feature.response_ids)
        assert sums[k] == pytest.approx(want, abs=1e-4)
    standard, tokenizer = build_reward_model(str(path), "standard", "linear")
    if tied:
        assert torch.equal(lm_head_weight(standard), reference.get_output_embeddings().weight)
    else:
        with pytest.raises(ConfigError, match="no LM head"):
            lm_head_weight(standard)


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_cpu_power_config_at_quick_size(tmp_path, tiny_llama):
    """examples/overoptimization/cpu_power.yaml's design (Best-of-N to n = 256 on the 512-sample pool, the
    uniform and the length-biased label conditions, controls, WARM and the ensembles) at a --quick size:
    every row, under both conditions, has its drop, interval, power and adjusted label."""
    config = StudyConfig.from_yaml(EXAMPLES / "cpu_power.yaml", str(tmp_path / "power"))
    assert (config.pool, config.bon_n, config.bon_max_n) == ("bon512", 512, 256)
    assert config.label_noise == config.length_bias == 0.25
    quick = StudyConfig.quick(str(tmp_path / "power"))
    config.policy, config.seeds, config.prompts, config.bon_prompts = str(tiny_llama), [0, 1], 36, 6
    config.bon_n, config.bon_max_n = quick.bon_n, quick.bon_max_n
    config.pool = "demo"  # the quick size reads the smaller demo pool
    run_study(config)
    headline = _report(tmp_path / "power")["headline"]
    assert list(headline["conditions"]) == ["uniform noise 0.25", "length-biased p=0.25"]
    for table in headline["conditions"].values():
        for name in [*config.objectives, "gold (oracle)", "length only", "finished, then short"]:
            entry = table[name]
            assert entry["gold_drop_ci"][0] <= entry["gold_drop"] <= entry["gold_drop_ci"][1], name
            assert isinstance(entry["gold_drop_resolved"], bool)
            power = entry["gold_drop_power"]
            assert 0 <= power["power_holm_strictest"] <= power["power"] <= 1


def test_the_remedies_config_is_the_demos_world_with_rrm(tmp_path):
    """examples/overoptimization/remedies_cpu.yaml: the demo's world and sizes, RRM among its rows."""
    config = StudyConfig.from_yaml(EXAMPLES / "remedies_cpu.yaml", str(tmp_path / "remedies"))
    demo = StudyConfig.demo(str(tmp_path / "demo"))
    for name in ("pool", "prompts", "bon_n", "bon_max_n", "label_noise", "length_bias", "seeds"):
        assert getattr(config, name) == getattr(demo, name), name
    assert config.objectives == ["bt", "inform", "rrm", "bt_length_calibrated"]


def test_demo_help_says_25_percent_once():
    from rmguard.cli import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    text = action.choices["demo"].format_help()
    assert "25% of training labels" in text and "%%" not in text


def test_the_frozen_pass_reports_responses_done_of_the_total(tmp_path, texts):
    """The first stage's progress counts responses (not 0/1 for its whole length), ending at the total."""
    path = save_tiny_model(tmp_path / "model", num_hidden_layers=3, tie_word_embeddings=True)
    prompts, responses = texts
    table = SimpleNamespace(prompts=prompts, responses=responses, token_rows=list(range(0, len(prompts), 2)))
    calls = []
    arrays = frozen_pass(
        str(path), 1, table, tmp_path / "frozen", batch_size=2, progress=lambda *a: calls.append(a)
    )
    assert calls[-1] == (len(prompts), len(prompts)) and len(calls) > 1
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert np.isfinite(arrays["norms"]).all() and np.isnan(arrays["logp_sum"][1::2]).all()
    assert (tmp_path / "frozen" / "frozen-outputs.pt").is_file()


def test_bt_members_redraw_their_labels_under_their_worlds_condition():
    """A BT member's pairs: the world's gold order restored, then the world's condition drawn again under
    the member's seed: with a length bias of 1 every pair that differs in length has its longer response
    chosen; with uniform noise 0.5 exactly half of the pairs disagree with the gold."""
    from rmguard.eval.labeling import corrupt_labels
    from rmguard.overopt.study.worlds import _member_rows

    def pair(chosen: str, rejected: str) -> dict:
        return {
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
            "chosen_model": "a",
            "rejected_model": "b",
            "chosen_gold": 1.0,
            "rejected_gold": 0.0,
            "label_flipped": False,
        }

    texts = [("short", "much longer"), ("a longer one", "brief"), ("x", "yy"), ("same", "size")]
    world = [pair(a, b) for a, b in texts]
    corrupt_labels(world, 0.25, 0.0, seed=1)  # the world's own draw, undone by the member
    member = _member_rows(world, 0.0, 1.0, seed=5)
    assert len(member) == 4 and all(r["chosen_gold"] == 0.0 for r in member if r["label_flipped"])
    for row in member:
        chosen, rejected = (len(row[k][0]["content"]) for k in ("chosen", "rejected"))
        assert chosen >= rejected
    assert sum(r["label_flipped"] for r in member) == 2  # the two pairs whose gold prefers the shorter
    uniform = _member_rows(world, 0.5, 0.0, seed=5)
    assert sum(r["chosen_gold"] < r["rejected_gold"] for r in uniform) == 2


def _chat_rows(seed: int, count: int) -> list[dict]:
    """Training pairs as a world's train.jsonl holds them: chat prompts and replies, distinct prompts."""
    from rmguard.data.formats import as_reply, as_user_turn

    rng = random.Random(seed)
    rows = [synthetic_pair(rng) for _ in range(count)]
    return [
        {"prompt": as_user_turn(r["prompt"]), **{k: as_reply(r[k]) for k in ("chosen", "rejected")}}
        for r in rows
    ]


def test_the_studys_length_calibration_is_what_a_calibrated_model_scores(tmp_path, tiny_llama):
    """bt_length_calibrated: the study's r − f(ℓ) of every table row, f fitted on both sides of the world's
    training pairs, equals RewardScorer on BT's model after ``rmguard calibrate --data train.jsonl``."""
    from rmguard.calibration import CalibrateConfig, calibrate_model
    from rmguard.data.formats import as_reply, as_user_turn
    from rmguard.overopt.study.worlds import _pair_sides, length_calibrated, text_key
    from rmguard.scoring import RewardScorer
    from rmguard.training.modeling import save_reward_model

    model = tmp_path / "bt"
    save_reward_model(*build_reward_model(str(tiny_llama)), model)
    train = _chat_rows(5, 10)
    # a response in two pairs counts twice, as calibrate reads a pair file
    train[3].update(prompt=train[1]["prompt"], rejected=train[1]["chosen"])
    prompts, responses, keys = [], [], {}
    for row in train:
        for side in ("chosen", "rejected"):
            if keys.setdefault(text_key(row["prompt"], row[side]), len(prompts)) == len(prompts):
                prompts.append(row["prompt"])
                responses.append(row[side])
    for words in (2, 40):  # rows outside the reference set, shorter and longer than all of it
        prompts.append(as_user_turn("a held-out prompt"))
        responses.append(as_reply(" ".join(["word"] * words)))
    raw = np.array(RewardScorer(str(model), calibrated=False).score(prompts, responses), dtype=np.float32)
    study = length_calibrated(raw, responses, _pair_sides(SimpleNamespace(keys=keys), train))
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    calibrate_model(CalibrateConfig(str(model), str(tmp_path / "train.jsonl"), str(tmp_path / "calibrated")))
    want = RewardScorer(str(tmp_path / "calibrated")).score(prompts, responses)
    assert study == pytest.approx(want, abs=1e-5)
    assert np.abs(study - raw).max() > 1e-3  # the calibration moved the rewards


def test_the_length_calibrated_row_needs_bt_and_is_not_swept(tmp_path):
    with pytest.raises(ConfigError, match="bt_length_calibrated calibrates bt's rewards"):
        StudyConfig(output_dir=str(tmp_path), objectives=["bsr", "bt_length_calibrated"])
    with pytest.raises(ConfigError, match="sweep_objectives must be trained objectives"):
        StudyConfig(output_dir=str(tmp_path), sweep_objectives=["bt_length_calibrated"])


def test_a_world_trains_rrm_and_inform_and_calibrates_bt(tmp_path, tiny_llama, monkeypatch):
    """One world with the remedies' rows, through the study's own path (frozen pass, then fit_world): RRM's
    proxy trains on the world's pairs augmented with the other training prompts' responses (equal with and
    without frozen-output reuse, whose store lacks those off-prompt contexts; unequal to BT of the same
    seed), InfoRM's rewards and latents are equal with and without reuse, and the calibration row is BT's
    calibrated rewards."""
    from rmguard.data.formats import as_reply, as_user_turn
    from rmguard.overopt.study.worlds import WorldJob, _pair_sides, fit_world, length_calibrated, text_key
    from rmguard.training import trainer

    rows = _chat_rows(7, 8)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs = [(r["prompt"], r[side]) for r in rows for side in ("chosen", "rejected")]
    pairs.append((as_user_turn("a held-out prompt"), as_reply("a held-out answer")))
    table = SimpleNamespace(prompts=[p for p, _ in pairs], responses=[r for _, r in pairs], token_rows=[])
    keys = {text_key(p, r): k for k, (p, r) in enumerate(pairs)}
    frozen_pass(str(tiny_llama), 1, table, tmp_path / "frozen", batch_size=8)
    training = {
        "model_name_or_path": str(tiny_llama),
        "freeze_embeddings": True,
        "max_length": 128,
        "learning_rate": 1e-3,
        "per_device_train_batch_size": 8,
        "report_to": ["none"],
        "disable_tqdm": True,
    }

    def world(name: str, objectives: list[str], reuse: bool) -> dict[str, np.ndarray]:
        job = WorldJob(0, 0.0, str(tmp_path / "splits"), str(tmp_path / f"{name}.npz"), str(tmp_path / "frozen"),
                       table.prompts, table.responses, keys, objectives, [], [1.0], 1,
                       {**training, "reuse_frozen_outputs": reuse})  # fmt: skip
        frozen_prefix.forget()
        return dict(np.load(fit_world(job)))

    misses = {}

    def counted(config):  # the store's full-model forwards during each fit
        store = next(iter(frozen_prefix._KEPT.values()))
        before = store.misses
        fit(config)
        misses[Path(config.output_dir).name] = store.misses - before

    fit = trainer.train
    monkeypatch.setattr(trainer, "train", counted)
    arrays = world("reuse", ["bt", "rrm", "inform", "bt_length_calibrated"], True)
    # RRM's off-prompt contexts were covered before its fit, as training tokenizes them
    assert misses == {"bt": 0, "rrm": 0, "inform": 0}
    monkeypatch.undo()
    plain = world("plain", ["rrm", "inform"], False)
    for key in ("rewards/rrm", "rewards/inform", "latents/inform"):
        assert plain[key] == pytest.approx(arrays[key], abs=1e-5), key
    assert arrays["latents/inform"].shape == (len(pairs), 128) and "latents/bt" not in arrays
    assert np.abs(arrays["rewards/rrm"] - arrays["rewards/bt"]).max() > 1e-3
    assert "norms/bt_length_calibrated" not in arrays and "norms/rrm" in arrays
    sides = _pair_sides(SimpleNamespace(keys=keys), rows)
    assert sides == list(range(16))
    want = length_calibrated(arrays["rewards/bt"], table.responses, sides)
    assert arrays["rewards/bt_length_calibrated"] == pytest.approx(want)


def test_a_saved_world_lacking_a_requested_row_is_fitted_again(tmp_path):
    from rmguard.overopt.study.worlds import WorldJob, finished

    job = WorldJob(
        0, 0.25, "", str(tmp_path / "seed0.npz"), "", [], [], {}, ["bt", "inform"], ["bt"], [0.5, 1], 1
    )
    assert not finished(job)
    np.savez(job.output, **{"rewards/bt": np.zeros(2), "rewards/bt@0.5": np.zeros(2)})
    assert not finished(job)  # an earlier run without inform
    np.savez(
        job.output,
        **{"rewards/bt": np.zeros(2), "rewards/bt@0.5": np.zeros(2), "rewards/inform": np.zeros(2)},
    )
    assert finished(job)
