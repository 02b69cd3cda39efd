"""The study's RLOO arm end to end at a quick size on tiny random-init models (examples/.../rl_cpu.yaml's
design: one world, BT/BSR/GRM proxies at full depth, RLOO against each), and its pieces."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rmguard.cli import main
from rmguard.errors import ConfigError
from rmguard.overopt.study.rl import RlStudyConfig, analyse_arms

EXAMPLES = Path(__file__).parents[2] / "examples" / "overoptimization"


def _quick(tmp_path: Path, policy: Path) -> Path:
    """rl_cpu.yaml shrunk to seconds: a small world of the shipped pool, two steps of RLOO."""
    config = RlStudyConfig.from_yaml(EXAMPLES / "rl_cpu.yaml", str(tmp_path / "out"))
    assert config.proxies == ["bt", "bsr", "grm"] and config.rloo["use_peft"]
    config.world.update(policy=str(policy), prompts=16, bon_prompts=4, bon_n=2, batch_size=32)
    config.resamples = 200
    config.rloo.update(prompts_per_step=2, max_steps=2, eval_steps=1, eval_max_prompts=4, lora_r=2)
    config.rloo["learning_rate"] = 1e-2
    config.sampling.update(max_new_tokens=4, batch_size=4)
    path = tmp_path / "rl.yaml"
    path.write_text(yaml.safe_dump(asdict(config)))
    return path


@pytest.fixture
def one_thread():
    """One intra-op thread, as the CLI tests' subprocesses have: on shared cores a spinning pool is slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_rl_arm_end_to_end_at_quick_size(tmp_path, tiny_llama, monkeypatch, capsys, one_thread):
    path = _quick(tmp_path, tiny_llama)
    assert main(["study-rl", "--config", str(path), "--no-progress"]) == 0
    assert "BT: gold" in capsys.readouterr().out
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == [0, 1, 2]
    assert list(report["headline"]["proxies"]) == ["bt", "bsr", "grm"]
    assert set(report["headline"]["paired_differences"]) == {"bsr - bt", "grm - bt"}
    for name, curves in report["curves"].items():
        for metric in ("gold", "proxy", "kl", "length"):
            assert len(curves[metric]) == 3  # one row per eval step per proxy
            for entry in curves[metric]:
                low, high = entry["ci"]
                assert low - 1e-9 <= entry["mean"] <= high + 1e-9
        assert curves["kl"][0]["mean"] == 0.0  # step 0: the policy is the reference
        arm = json.loads((out / "arms" / f"{name}-seed0.json").read_text())
        assert [row["step"] for row in arm["tracking"]] == [0, 1, 2]
        assert all(len(ev["gold"]) == 4 for ev in arm["per_prompt"])
    for entry in report["headline"]["proxies"].values():
        assert {"mean", "ci", "p_value", "p_adjusted", "resolved"} <= set(entry["gold_drop"])
    for figure in ("gold_vs_kl.png", "proxy_vs_kl.png", "gold_vs_step.png"):
        assert (out / figure).is_file()

    # a rerun trains nothing and runs no arm: it reads the finished proxies and arms back
    import rmguard.overopt.rloo
    import rmguard.overopt.study.worlds

    def refuse(*_, **__):
        raise AssertionError("a finished proxy or arm ran again")

    monkeypatch.setattr(rmguard.overopt.rloo, "run_rloo", refuse)
    monkeypatch.setattr(rmguard.overopt.study.worlds, "train_proxy", refuse)
    (out / "report.json").unlink()
    args = ["study-rl", "--config", str(path), "--no-progress", "--resume_from_checkpoint", "latest"]
    assert main(args) == 0
    assert json.loads((out / "report.json").read_text())["curves"] == report["curves"]
    _proxy_checkpoint_is_complete(out / "world" / "proxies" / "bsr", tiny_llama)


def _proxy_checkpoint_is_complete(folder: Path, base: Path) -> None:
    """Trained with the frozen part's outputs reused, the saved proxy still holds every layer (the frozen
    one as pretrained) and scores new text through rmguard's loading code exactly as the full model does."""
    from transformers import AutoModelForCausalLM

    from rmguard.scoring import RewardScorer
    from rmguard.training import frozen_prefix
    from rmguard.training.modeling import load_reward_model

    model, tokenizer = load_reward_model(folder)
    pretrained = AutoModelForCausalLM.from_pretrained(base)
    frozen, trained = model.backbone.layers  # both layers of the tiny backbone
    for (name, weight), (_, original) in zip(
        frozen.state_dict().items(), pretrained.model.layers[0].state_dict().items(), strict=True
    ):
        assert torch.equal(weight, original), name
    assert not torch.equal(trained.mlp.up_proj.weight, pretrained.model.layers[1].mlp.up_proj.weight)
    prompts = [[{"role": "user", "content": "p1 p2"}]] * 2
    responses = [[{"role": "assistant", "content": text}] for text in ("g1 g2 b3", "b1")]
    frozen_prefix.forget()
    plain = RewardScorer(str(folder)).score(prompts, responses)  # what RLOO reads: every layer runs
    model.requires_grad_(False)
    store = frozen_prefix.attach(model, 1)  # the study's scoring path: the frozen layer's outputs reused
    reusing = RewardScorer((model, tokenizer))
    reusing.score(prompts, responses)
    assert reusing.score(prompts, responses) == pytest.approx(plain, abs=1e-5) and store.hits >= 1
    frozen_prefix.forget()


def test_config_errors_name_the_section(tmp_path):
    with pytest.raises(ConfigError, match="rloo: unknown field"):
        RlStudyConfig(rloo={"num_generations": 2})
    with pytest.raises(ConfigError, match="set per arm"):
        RlStudyConfig(rloo={"policy": "x"})
    with pytest.raises(ConfigError, match="world: seeds"):
        RlStudyConfig(world={"seeds": [1]})
    with pytest.raises(ConfigError, match="rloo.learning_rate: expected float"):
        RlStudyConfig(rloo={"learning_rate": "fast"})
    assert (
        RlStudyConfig(rloo={"learning_rate": "1e-4"}).arm_configs("a", "b", "c", "d", 0)[0].learning_rate
        == 1e-4
    )
    with pytest.raises(ConfigError, match="unknown objective"):
        RlStudyConfig(proxies=["bt", "nope"])
    path = tmp_path / "bad.yaml"
    path.write_text("world: [1]\n")
    with pytest.raises(ConfigError, match="bad.yaml: world must be a mapping"):
        RlStudyConfig.from_yaml(path)


def test_analysis_on_curves_with_known_shape():
    """A gold curve that peaks mid-run and falls gives a positive drop; a rising one gives none; the paired
    difference at the last step is the difference of the means."""
    rng = np.random.default_rng(0)
    steps = [0, 5, 10, 15, 20]
    noise = rng.normal(0, 0.01, size=(2, 30, 5))
    falls = np.array([0.5, 0.6, 0.7, 0.6, 0.5]) + noise
    rises = np.array([0.5, 0.55, 0.6, 0.65, 0.7]) + noise
    flat = np.zeros((2, 30, 5))

    def arm(gold: np.ndarray) -> dict[str, np.ndarray]:
        return {"gold": gold, "proxy": gold, "kl": flat, "length": flat + 10}

    result = analyse_arms({"bt": arm(falls), "bsr": arm(rises)}, steps, resamples=500)
    rows = result["headline"]["proxies"]
    assert rows["bt"]["gold_drop"]["mean"] == pytest.approx(0.2, abs=0.01)
    assert rows["bt"]["gold_drop"]["resolved"] and rows["bt"]["gold_peak_step"] == 10
    assert rows["bsr"]["gold_drop"]["mean"] == pytest.approx(0.0, abs=1e-9)
    end = result["headline"]["paired_differences"]["bsr - bt"]["gold_at_end"]
    assert end["mean"] == pytest.approx(rises[:, :, -1].mean() - falls[:, :, -1].mean())
    assert end["resolved"]
    length = result["curves"]["bt"]["length"][0]
    assert length["mean"] == length["ci"][0] == length["ci"][1] == 10  # a constant stays in its range


def test_gpu_config_is_the_cpu_protocol_at_scale():
    cpu, gpu = (RlStudyConfig.from_yaml(EXAMPLES / f"rl_{kind}.yaml") for kind in ("cpu", "gpu"))
    assert gpu.study_config().policy == "Qwen/Qwen2.5-1.5B-Instruct" and gpu.study_config().generate
    assert gpu.proxies == cpu.proxies and gpu.rloo["use_peft"]
    for name in ("k", "beta", "clip_epsilon"):
        assert gpu.rloo[name] == cpu.rloo[name]
    assert gpu.sampling["temperature"] == cpu.sampling["temperature"] == 0.7
