"""Shared fixtures: a tiny random-init Llama with a byte-level tokenizer, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import save_tiny_model

WORKTREE_SRC = Path(__file__).resolve().parents[2] / "src"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def byte_level_tokenizer():
    """Every byte is a token, so any text a policy writes (commands, paths, code) round-trips."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {char: index for index, char in enumerate(sorted(alphabet))}
    for special in ("<pad>", "<eos>"):
        vocab[special] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(folder: Path) -> Path:
    """helpers.save_tiny_model's 2-layer Llama over the byte-level tokenizer, with room for long episodes."""
    tokenizer = byte_level_tokenizer()
    return save_tiny_model(
        folder,
        tokenizer=tokenizer,
        num_attention_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.eos_token_id,
    )


@pytest.fixture(scope="package", autouse=True)
def single_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)  # the tests outside tamper/ run as a user would, on every core


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def jail():
    from rmguard.tamper.sandbox.jail import Jail

    with Jail() as box:
        yield box
