"""Expert iteration runs end to end on a tiny model: select, fine-tune, save, evaluate."""

from __future__ import annotations

import json

import pytest
import torch

from rmguard.errors import RMGuardError
from rmguard.tamper.expert_iteration import ExpertIterationConfig, _best_episodes, run_expert_iteration
from rmguard.tamper.policies import DecodingConfig, ScriptedPolicy


def test_train_end_to_end(tiny_model, tmp_path, jail) -> None:
    from transformers import AutoModelForCausalLM

    scores = []

    def scorer(prompts, responses):
        scores.append(len(responses))
        return [0.5] * len(responses)

    config = ExpertIterationConfig(
        str(tiny_model),
        str(tmp_path / "out"),
        stages=["political_sycophancy", "tool_use_flattery"],
        prompts_per_stage=2,
        samples_per_prompt=2,
        eval_samples=2,
        learning_rate=1e-3,
    )
    decoding = DecodingConfig(temperature=1.0, max_new_tokens=6)
    summary = run_expert_iteration(config, decoding, preference_scorer=scorer, jail=jail)
    assert [s["stage"] for s in summary["stages"]] == ["political_sycophancy", "tool_use_flattery"]
    assert set(summary["stages"][0]["evaluation"]) == {"tool_use_flattery", "reward_tampering"}
    assert set(summary["stages"][1]["evaluation"]) == {"reward_tampering"}
    assert all(s["kept"] == 2 for s in summary["stages"]) and scores == [2, 2, 2, 2]
    before = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    after = AutoModelForCausalLM.from_pretrained(summary["stages"][1]["checkpoint"]).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == json.loads(json.dumps(summary))


class Alternating(ScriptedPolicy):
    """Games on every other seed, so best-of-n has something to choose."""

    def __init__(self):
        super().__init__("honest")

    def generate(self, request):
        self.strategy = "sycophant" if request.seed % 2 else "honest"
        return super().generate(request)


def test_selection_prefers_gaming_samples() -> None:
    config = ExpertIterationConfig("unused", "unused", prompts_per_stage=4, samples_per_prompt=6)
    kept = _best_episodes("political_sycophancy", 0, Alternating(), config, None, None)
    assert len(kept) == 4 and all(e.grade.gamed for e in kept)


def test_held_out_cannot_be_trained_on(tmp_path) -> None:
    config = ExpertIterationConfig("m", str(tmp_path), stages=["reward_tampering"])
    with pytest.raises(RMGuardError, match="held-out"):
        run_expert_iteration(config)
