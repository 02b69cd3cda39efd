"""Test helpers: tiny random-init Hugging Face models saved with save_pretrained, synthetic data, the CLI.

Everything is built locally so the real loading code (from_pretrained, AutoTokenizer) runs offline.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
GOOD_WORDS = [f"g{i}" for i in range(40)]
BAD_WORDS = [f"b{i}" for i in range(40)]
PROMPT_WORDS = [f"p{i}" for i in range(60)]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def build_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = SPECIALS + ["[UNK]", "user", "assistant", "system"] + GOOD_WORDS + BAD_WORDS + PROMPT_WORDS
    vocab = {word: index for index, word in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        pad_token="<|im_end|>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIALS})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def save_tiny_model(path: Path, family: str = "llama", seed: int = 0, tokenizer=None, **overrides) -> Path:
    """A 2-layer, hidden-32 causal LM of the given family with ``tokenizer`` (default: the tiny word-level
    one), saved as a HF folder; ``overrides`` change its config."""
    from transformers import AutoModelForCausalLM, Gemma2Config, LlamaConfig, Qwen2Config

    tokenizer = tokenizer or build_tokenizer()
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    common.update(overrides)
    config = {"llama": LlamaConfig, "qwen2": Qwen2Config, "gemma2": Gemma2Config}[family](**common)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def synthetic_pair(rng: random.Random) -> dict:
    """Chosen responses use 'good' words, rejected ones 'bad' words: learnable, different lengths."""
    prompt = " ".join(rng.choice(PROMPT_WORDS) for _ in range(rng.randint(1, 6)))
    chosen = " ".join(rng.choice(GOOD_WORDS) for _ in range(rng.randint(1, 7)))
    rejected = " ".join(rng.choice(BAD_WORDS) for _ in range(rng.randint(1, 7)))
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def run_cli(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``python -m rmguard`` on this checkout's sources, as a user would.

    One intra-op thread: on shared cores, torch's thread pool spinning against other jobs is far slower.
    """
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "rmguard", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


def run_tamper(
    environments: str | list[str], policy: str, output: Path, *options: str, **run_kwargs
) -> subprocess.CompletedProcess:
    """``rmguard tamper run --env E ... --policy POLICY [options] --output OUTPUT`` through :func:`run_cli`
    (``run_kwargs``: its cwd, env, timeout)."""
    names = [environments] if isinstance(environments, str) else environments
    env_options = [word for name in names for word in ("--env", name)]
    return run_cli(
        "tamper", "run", *env_options, "--policy", policy, *options, "--output", str(output), **run_kwargs
    )


def start_server(model: Path, *args: str) -> tuple[str, subprocess.Popen]:
    """(base URL, process) of a real ``rmguard serve`` of ``model`` on a free 127.0.0.1 port, once it
    answers /health; the caller kills the process."""
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "rmguard", "serve", "--model", str(model), "--port", str(port), *args]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return url, process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not start: {process.communicate()[1][-2000:]}")
