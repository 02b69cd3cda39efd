"""Part 3, scoring and the largest batch that fits.

Scoring: a random-init Llama-3.2-1B-shaped reward model in bf16 scores 16 responses per prompt
(bench/common's lengths) three ways through ``RewardScorer``: packed (each prompt encoded once, one row per
batch), padded batches, and batch size 1; a warm-up pass, then a timed one. The scores must agree (max
|Δ| against batch size 1 is reported: bf16, so a few units of bf16 roundoff of the scores' scale).

Largest batch: pairs per device in one training step (forward, backward, AdamW step; bf16 autocast,
fp32 weights and optimizer state, packed, UltraFeedback-like pairs), full fine-tuning and LoRA (r 32 on
rmguard's default modules). Peak memory is measured at two batch sizes; memory grows linearly in the
batch, so the line through them gives the largest batch within 90 % of the card's memory, which is then
run once to confirm (the answer depends on the pairs' lengths: these are UltraFeedback-like).
"""

from __future__ import annotations

import time
from typing import Any

from gpu.context import (
    Context,
    max_abs,
    model_folder,
    pair_features,
    peak_memory_gib,
    reset_memory,
    synchronize,
    synthetic_rows,
)

SIZES = {
    "tiny": {
        "profiles": ["uf", "hh"],
        "prompts": 2,
        "responses": 4,
        "batch_size": 16,
        "probe_batches": (1, 2),
    },
    "full": {
        "profiles": ["uf", "hh"],
        "prompts": 8,
        "responses": 16,
        "batch_size": 64,
        "probe_batches": (2, 4),
    },
}
METHODS = {  # name → (packing, batch size or None for the part's)
    "packed": (True, None),
    "padded": (False, None),
    "batch-size-1": (False, 1),
}


def _items(ctx: Context, profile: str, size: dict) -> list[Any]:
    """``prompts`` prompts with ``responses`` responses each (lengths drawn as bench/score_throughput does)."""
    from rmguard.data.records import ScoredResponse

    drawn = synthetic_rows(ctx, profile, size["prompts"] * size["responses"], seed=2)
    return [
        ScoredResponse(
            drawn[p * size["responses"]]["prompt"], drawn[p * size["responses"] + k]["chosen"], "synthetic", p
        )
        for p in range(size["prompts"])
        for k in range(size["responses"])
    ]


def score_methods(ctx: Context, model: Any, tokenizer: Any, items: list[Any], size: dict) -> dict[str, Any]:
    from rmguard.scoring import RewardScorer

    out: dict[str, Any] = {}
    scores = {}
    for name, (packing, batch) in METHODS.items():
        scorer = RewardScorer(
            (model, tokenizer), batch_size=batch or size["batch_size"], device=ctx.device, packing=packing
        )
        features = scorer.features(items)
        scorer.rewards(features)  # warm-up: kernels, allocator
        synchronize(ctx.device)
        start = time.perf_counter()
        scores[name] = scorer.rewards(features)
        synchronize(ctx.device)
        out[name] = {"responses_per_s": len(items) / (time.perf_counter() - start), "packed": scorer.packing}
    for name in METHODS:
        out[name]["x_batch_size_1"] = out[name]["responses_per_s"] / out["batch-size-1"]["responses_per_s"]
        out[name]["max_abs_vs_batch_size_1"] = max_abs(scores[name], scores["batch-size-1"])
    out["score_scale"] = scores["batch-size-1"].abs().max().item()
    return out


def train_step_memory(ctx: Context, folder: Any, features: list[Any], lora: bool, batch: int) -> float | None:
    """Peak GiB of one packed training step on ``batch`` pairs (None on the CPU)."""
    import torch

    from rmguard.training.attention import enable_packed_attention
    from rmguard.training.config import TrainConfig
    from rmguard.training.loss import RewardLoss
    from rmguard.training.modeling import add_lora, build_reward_model
    from rmguard.training.optimizers import make_optimizer
    from rmguard.training.packing import PackedPairCollator

    reset_memory(ctx.device)
    config = TrainConfig(model_name_or_path=str(folder), train_file="unused", use_peft=lora)
    model, _ = build_reward_model(str(folder))
    if lora:
        add_lora(model, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_target_modules)
    enable_packed_attention(model.transformer)
    model.to(ctx.device).train()
    optimizer = make_optimizer(config, [p for p in model.parameters() if p.requires_grad])
    chosen = [features[i % len(features)] for i in range(batch)]
    inputs = {
        k: (v.to(ctx.device) if hasattr(v, "to") else v) for k, v in PackedPairCollator()(chosen).items()
    }
    with torch.autocast(ctx.device.type, dtype=torch.bfloat16):
        loss, _ = RewardLoss(config)(model(**{k: v for k, v in inputs.items() if k != "margin"}), inputs)
    loss.backward()
    optimizer.step()
    synchronize(ctx.device)
    peak = peak_memory_gib(ctx.device)
    del model, optimizer, loss
    reset_memory(ctx.device)
    return peak


def largest_batch(ctx: Context, folder: Any, features: list[Any], lora: bool, size: dict) -> dict[str, Any]:
    import torch

    small, large = size["probe_batches"]
    peaks = {b: train_step_memory(ctx, folder, features, lora, b) for b in (small, large)}
    out: dict[str, Any] = {"peak_gib": peaks}
    if ctx.device.type != "cuda":
        out["largest"] = "not measured: CPU"
        return out
    total = torch.cuda.get_device_properties(ctx.device).total_memory / 2**30
    per_pair = (peaks[large] - peaks[small]) / (large - small)
    fixed = peaks[small] - per_pair * small
    predicted = int((0.9 * total - fixed) / per_pair) if per_pair > 0 else None
    out |= {"per_pair_gib": per_pair, "fixed_gib": fixed, "card_gib": total, "largest": predicted}
    if predicted:
        try:
            out["confirmed_peak_gib"] = train_step_memory(ctx, folder, features, lora, predicted)
        except torch.cuda.OutOfMemoryError:
            out["confirmed_peak_gib"] = "out of memory"
            reset_memory(ctx.device)
    return out


def run(ctx: Context) -> None:
    import torch

    from rmguard.training.modeling import build_reward_model

    size = SIZES[ctx.size]
    folder = model_folder(ctx, "llama-1b", ctx.shape("llama-1b"))
    model, tokenizer = build_reward_model(str(folder))
    model.to(ctx.device, torch.bfloat16 if ctx.device.type == "cuda" else torch.float32).eval()
    ctx.record("settings", {k: size[k] for k in ("prompts", "responses", "batch_size")})
    ctx.record("dtype", "bf16" if ctx.device.type == "cuda" else "fp32")
    scoring: dict[str, Any] = {}
    for profile in size["profiles"]:
        scoring[profile] = score_methods(ctx, model, tokenizer, _items(ctx, profile, size), size)
        ctx.record("scoring", scoring)
    del model
    reset_memory(ctx.device)
    features = pair_features(synthetic_rows(ctx, "uf", 16, seed=5), tokenizer, 2048)
    ctx.record("largest_train_batch", {"full": largest_batch(ctx, folder, features, False, size)})
    ctx.record(
        "largest_train_batch",
        ctx.results["largest_train_batch"] | {"lora": largest_batch(ctx, folder, features, True, size)},
    )
