"""docs/checkpoints.md's loaders run as written: the GRM MLP-head lines and the linear head's export."""

from __future__ import annotations

import json
import random
import re

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rmguard.cli import main
from rmguard.scoring import RewardScorer
from rmguard.training.modeling import build_reward_model, save_reward_model

from helpers import REPO, synthetic_pair

DOC = REPO / "docs" / "checkpoints.md"


def _block(marker: str) -> str:
    """The python code block right after ``<!-- marker ... -->`` in the doc."""
    found = re.search(rf"<!-- {marker}[^>]*-->\s*```python\n(.*?)```", DOC.read_text(), re.S)
    assert found, f"no '{marker}' block in {DOC}"
    return found.group(1)


def _cases(tokenizer) -> list[tuple[str, object, object]]:
    """(text as the doc says to render it, prompt, response) for chats and plain strings."""
    rng = random.Random(5)
    rows = [synthetic_pair(rng) for _ in range(3)]
    chats = [
        (tokenizer.apply_chat_template(r["prompt"] + r["chosen"], tokenize=False), r["prompt"], r["chosen"])
        for r in rows
    ]
    plain = [("p1 p2 ", "g1 g2 g3"), ("p7 ", "b4")]
    return chats + [(p + r + tokenizer.eos_token, p, r) for p, r in plain]


def test_grm_mlp_loader_lines_give_rmguard_scores(tiny_llama, tmp_path):
    torch.manual_seed(0)
    model, tokenizer = build_reward_model(str(tiny_llama), kind="grm", head_type="mlp")
    save_reward_model(model, tokenizer, tmp_path / "grm")
    loader = _block("grm-mlp-loader")
    assert len(loader.strip().splitlines()) == 3
    namespace = {"ckpt": str(tmp_path / "grm")}
    exec("import torch.nn as nn\nfrom safetensors.torch import load_file\n"
         "from transformers import AutoModelForCausalLM, AutoTokenizer", namespace)  # fmt: skip
    exec(loader, namespace)
    scorer = RewardScorer(tmp_path / "grm", device="cpu")
    for text, prompt, response in _cases(tokenizer):
        plain = isinstance(response, str)
        reward_code = _block("grm-mlp-reward")
        if plain:  # the doc's rule: plain text is encoded with the tokenizer's own special tokens
            reward_code = reward_code.replace("add_special_tokens=False", "add_special_tokens=True")
        with torch.no_grad():
            exec(reward_code, {**namespace, "text": text}, local := {})
        assert local["reward"] == pytest.approx(scorer.score([prompt], [response])[0], abs=1e-5)


def test_export_gives_a_standard_checkpoint_for_the_linear_head(tiny_llama, tmp_path):
    torch.manual_seed(0)
    model, tokenizer = build_reward_model(str(tiny_llama), kind="grm", head_type="linear")
    save_reward_model(model, tokenizer, tmp_path / "grm")
    assert main(["export", "--model", str(tmp_path / "grm"), "--output", str(tmp_path / "std")]) == 0
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "std").eval()  # no rmguard code
    plain_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "std")
    assert plain.config.num_labels == 1 and plain.score.bias is None
    dropped = json.loads((tmp_path / "std" / "rmguard.json").read_text()).get("dropped_head_bias", 0.0)
    grm = RewardScorer(tmp_path / "grm", device="cpu")
    for text, prompt, response in _cases(tokenizer)[:3]:  # chats: the template owns the special tokens
        ids = plain_tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            exported = plain(**ids).logits[0, 0].item()
        assert exported == pytest.approx(grm.score([prompt], [response])[0] - dropped, abs=1e-5)
