"""What every part of the GPU suite shares: the run context, model shapes and random-init model folders,
synthetic data, timing and memory on CUDA, the card's bf16 peak, the FLOP formula and the tolerances.

Exactness tolerances. fp32: 1e-5 absolute, the CPU tests' tolerance. bf16 has an 8-bit significand, so one
rounding is off by at most u = 2^-8 ≈ 0.0039 of the value (unit roundoff). Two paths that compute the same
function in a different order (per-block against masked attention, one row against a padded batch) each
round every stored activation once per layer and sum in their own order, so they differ by a few u per
layer, growing with depth and then averaged by the norms. The suite takes 8u = 2^-5 ≈ 0.031 on the
norm-wise relative difference ‖a − b‖ / ‖b‖ of every compared tensor: above what rounding alone gives to
two correct paths, and far below what a wrong mask or a lost token gives (an O(1) change of the rows it
touches). Each bf16 comparison also reports both paths' distance to the fp32 result on the same weights,
so bf16's own error is in view next to the difference.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(BENCH), str(BENCH.parent / "src")]

FP32_TOL = 1e-5
BF16_U = 2.0**-8  # unit roundoff of bf16: 8-bit significand (7 stored bits + the implicit one)
BF16_TOL = 8 * BF16_U

# Random-init Llama shapes. vocab None: the tokenizer's (SmolLM2's 49152).
LLAMA_1B = dict(  # meta-llama/Llama-3.2-1B's config.json (rope scaling left out: it changes no cost)
    hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
    num_key_value_heads=8, head_dim=64, vocab_size=128256, tie_word_embeddings=True, rms_norm_eps=1e-5,
    rope_theta=500000.0, max_position_embeddings=8192,
)  # fmt: skip
SMOLLM2 = dict(  # HuggingFaceTB/SmolLM2-135M-Instruct's config.json
    hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
    num_key_value_heads=3, head_dim=64, vocab_size=None, tie_word_embeddings=True, rms_norm_eps=1e-5,
    rope_theta=100000.0, max_position_embeddings=8192,
)  # fmt: skip
TINY = dict(  # the dry run's stand-in for both
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, head_dim=16, vocab_size=None, tie_word_embeddings=True, rms_norm_eps=1e-5,
    rope_theta=10000.0, max_position_embeddings=4096,
)  # fmt: skip

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from the vendors' datasheets, by a substring of
# torch.cuda.get_device_name(); the first match wins, so the more specific names come first.
BF16_DENSE_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),  # SXM5 ("NVIDIA H100 80GB HBM3")
    ("GH200", 989.4),
    ("H200", 989.4),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
)


def bf16_dense_peak(device_name: str) -> float | None:
    """The card's bf16 dense peak in FLOP/s, or None for a card not in the table."""
    for key, tflops in BF16_DENSE_PEAK_TFLOPS:
        if key in device_name:
            return tflops * 1e12
    return None


@dataclass
class Context:
    """What a part runs with; ``record`` writes the part's result file after every number, atomically."""

    dry_run: bool
    work: Path
    tokenizer: Path
    result_file: Path
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> str:
        return "tiny" if self.dry_run else "full"

    @property
    def device(self) -> Any:
        import torch

        return torch.device("cuda" if torch.cuda.is_available() and not self.dry_run else "cpu")

    def record(self, key: str, value: Any) -> None:
        self.results[key] = value
        temporary = self.result_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.results, indent=1, default=_plain))
        os.replace(temporary, self.result_file)

    def shape(self, name: str) -> dict[str, Any]:
        """A model shape by name ('llama-1b', 'smollm2'); the dry run shrinks every shape to TINY."""
        return dict(TINY) if self.dry_run else dict({"llama-1b": LLAMA_1B, "smollm2": SMOLLM2}[name])


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


# ----------------------------------------------------------------------------------------------- models


def model_folder(ctx: Context, name: str, shape: dict[str, Any], layers: int | None = None) -> Path:
    """A random-init Llama of ``shape`` with SmolLM2's tokenizer, saved in fp32 under the work folder once
    (built on the GPU, where initialising a billion weights takes a second) and reused by later parts."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    folder = ctx.work / "models" / name
    if (folder / "config.json").is_file():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(ctx.tokenizer)
    settings = dict(shape)
    settings["vocab_size"] = settings["vocab_size"] or len(tokenizer)
    if layers is not None:
        settings["num_hidden_layers"] = layers
    config = LlamaConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, dtype="float32", **settings
    )
    torch.manual_seed(0)
    with torch.device(ctx.device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    try:
        os.replace(partial, folder)
    except OSError:  # a part running beside this one (the dry run's) saved it first
        shutil.rmtree(partial)
    return folder


def shape_facts(folder: Path) -> dict[str, int]:
    """Parameter counts and the attention width of a saved model (for the FLOP formula)."""
    from common import non_embedding_params
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return {
        "non_embedding_params": non_embedding_params(folder),
        "layers": config.num_hidden_layers,
        "attention_width": config.num_attention_heads * head_dim,
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
    }


def training_flops(facts: dict[str, int], sequence_lengths: list[int]) -> float:
    """Model FLOPs of one training step over sequences run alone (forward + backward = 3 forwards):
    Σ_s 6·N·n_s + 6·L·d_attn·n_s², with N the non-embedding parameters and the second term causal attention
    (QKᵀ and AV, 2·2·d_attn FLOPs per query-key pair, half the pairs under the causal mask, times 3)."""
    n, layers, width = facts["non_embedding_params"], facts["layers"], facts["attention_width"]
    return sum(6 * n * s + 6 * layers * width * s * s for s in sequence_lengths)


# ----------------------------------------------------------------------------------------------- data


def synthetic_rows(ctx: Context, profile: str, count: int, seed: int) -> list[dict[str, str]]:
    """bench/common's log-normal pairs ('uf' UltraFeedback-like, 'hh' HH-like); the dry run cuts every text
    to its first 12 words."""
    from common import synthetic_pairs

    rows = synthetic_pairs(profile, count, _words(ctx), seed)
    if ctx.dry_run:
        rows = [{k: " ".join(v.split()[:12]) for k, v in row.items()} for row in rows]
    return rows


def _words(ctx: Context) -> list[str]:
    """bench/common's one-token words of the tokenizer, found once per run (a tokenizer call per word)."""
    from common import single_token_words
    from transformers import AutoTokenizer

    cache = ctx.work / "words.json"
    if not cache.is_file():
        partial = cache.with_name(f"words.{os.getpid()}.json")
        partial.write_text(json.dumps(single_token_words(AutoTokenizer.from_pretrained(ctx.tokenizer))))
        os.replace(partial, cache)
    return json.loads(cache.read_text())


def pair_features(rows: list[dict[str, str]], tokenizer: Any, max_length: int) -> list[Any]:
    """rmguard's token ids of plain-text pairs (prompt + response + EOS), as training makes them."""
    from rmguard.data.records import PreferencePair
    from rmguard.training.tokenization import tokenize_pairs

    pairs = [
        PreferencePair(r["prompt"], r["chosen"], r["rejected"], source="synthetic", row=i)
        for i, r in enumerate(rows)
    ]
    return tokenize_pairs(pairs, tokenizer, max_length)[0]


def pair_lengths(features: list[Any]) -> list[int]:
    """The two sequences of every pair as run alone: prompt + chosen, prompt + rejected."""
    return [len(f.prompt_ids) + len(r) for f in features for r in (f.chosen_ids, f.rejected_ids)]


# ----------------------------------------------------------------------------------------------- timing


def fresh_accelerate_state() -> None:
    """Several trainers (TRL's, rmguard's) each make an Accelerator in one process: clear Accelerate's
    singletons between them."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def timed(device: Any, into: list[float]):
    """Wall seconds of the block with the device's queue drained at both ends (CUDA is asynchronous)."""
    synchronize(device)
    start = time.perf_counter()
    yield
    synchronize(device)
    into.append(time.perf_counter() - start)


def reset_memory(device: Any) -> None:
    """Free what the last measurement left and start the peak over (CUDA only: nothing to do on the CPU)."""
    import gc

    import torch

    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: Any) -> float | None:
    """Peak bytes the caching allocator handed out since the last reset (None on the CPU: see RSS)."""
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def matmul_rate(device: Any, n: int, repeats: int = 10) -> float:
    """bf16 FLOP/s of an n×n×n matrix product on random data (zeros run faster), median of ``repeats``
    after 3 warm-ups, timed with the queue drained: the practical ceiling for MFU."""
    import statistics

    import torch

    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times: list[float] = []
    for _ in range(repeats):
        with timed(device, times):
            a @ b
    return 2 * n**3 / statistics.median(times)


# ----------------------------------------------------------------------------------------------- comparison


def relative(a: Any, b: Any) -> float:
    """‖a − b‖ / ‖b‖ in float64 (0 when both are 0; NaN stays NaN so it fails every check)."""
    a, b = a.double(), b.double()
    denominator = b.norm().item()
    difference = (a - b).norm().item()
    return difference / denominator if denominator > 0 else difference


def max_abs(a: Any, b: Any) -> float:
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
