"""Part 5, Best-of-N sampling and RLOO steps with the study's settings, so the GPU study configs can state
their cost. Policies are random-init from a config (the device reaches no network): SmolLM2-135M-shaped and
Llama-3.2-1B-shaped, loaded by ``overopt.generation.load_policy`` as the study loads them (fp32, on the GPU).

A random-init policy almost never writes EOS (1 chance in the vocabulary per token), so every sample runs to
``max_new_tokens``: the times are an upper bound for a trained policy that stops earlier.

* Best-of-N: ``generation.sample`` (what the pool and ``rmguard bon`` run): temperature 1, top-p 1,
  ``max_new_tokens`` 512, batches of 64 (examples/overoptimization/run.sh and ultrafeedback.yaml);
  one warm-up call, then one timed batch: samples/s and generated tokens/s.
* RLOO: ``overopt.rloo.run_rloo`` (TRL's RLOOTrainer with the proxy scorer and the gold tracked) with
  run.sh's settings: k 2, β 0.05, temperature 0.7, 512 new tokens, learning rate 1e-6, 16 prompts a step;
  3 steps with the held-out tracking at steps 0 and 3 (2 prompts). A step's time is the span between the
  ends of steps 1 and 2; step 3's span includes the tracking (sampling and scoring the held-out prompts).
"""

from __future__ import annotations

import json
import time
from typing import Any

from gpu.context import (
    Context,
    fresh_accelerate_state,
    model_folder,
    peak_memory_gib,
    reset_memory,
    synchronize,
    synthetic_rows,
)

SIZES = {
    "tiny": {"max_new_tokens": 8, "batch_size": 4, "prompts_per_step": 2},
    "full": {"max_new_tokens": 512, "batch_size": 64, "prompts_per_step": 16},
}
POLICIES = ("smollm2", "llama-1b")
RLOO = {"k": 2, "beta": 0.05, "learning_rate": 1e-6, "max_steps": 3, "eval_steps": 3, "eval_max_prompts": 2}


def best_of_n(ctx: Context, folder: Any, prompts: list[str], size: dict) -> dict[str, Any]:
    from rmguard.overopt.generation import SamplingConfig, encode_prompts, load_policy, sample

    model, tokenizer = load_policy(str(folder))
    encoded = encode_prompts(tokenizer, prompts[: size["batch_size"]])
    sample(model, tokenizer, encoded[:2], SamplingConfig(max_new_tokens=4), seed=0)  # warm-up
    config = SamplingConfig(1.0, 1.0, size["max_new_tokens"], size["batch_size"], 0)
    reset_memory(ctx.device)
    synchronize(ctx.device)
    start = time.perf_counter()
    results = sample(model, tokenizer, encoded, config, seed=1)
    synchronize(ctx.device)
    seconds = time.perf_counter() - start
    tokens = sum(length for _, length in results)
    return {
        "samples_per_s": len(results) / seconds,
        "new_tokens_per_s": tokens / seconds,
        "mean_new_tokens": tokens / len(results),
        "mean_prompt_tokens": sum(len(e) for e in encoded) / len(encoded),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "peak_gib": peak_memory_gib(ctx.device),
    }


def proxy_folder(ctx: Context, policy: Any) -> str:
    """A 4-layer reward model on the policy's first layers (proxy and gold both: only their cost matters)."""
    from rmguard.training.modeling import build_reward_model, save_reward_model

    folder = ctx.work / "models" / "proxy-rm"
    if not (folder / "config.json").is_file():
        model, tokenizer = build_reward_model(str(policy), num_hidden_layers=2 if ctx.dry_run else 4)
        save_reward_model(model, tokenizer, folder)
    return str(folder)


def rloo_steps(ctx: Context, name: str, folder: Any, prompts: list[str], size: dict) -> dict[str, Any]:
    from rmguard.overopt.generation import SamplingConfig
    from rmguard.overopt.rloo import RlooConfig, run_rloo

    prompt_file = ctx.work / "rloo-prompts.jsonl"
    prompt_file.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    proxy = proxy_folder(ctx, folder)
    ends: dict[int, float] = {}

    def progress(_stage: str, step: int, _total: int) -> None:
        synchronize(ctx.device)
        ends[step] = time.perf_counter()

    config = RlooConfig(
        policy=str(folder), prompts=str(prompt_file), proxies=[proxy], gold=proxy,
        output_dir=str(ctx.work / f"rloo-{name}"), prompts_per_step=size["prompts_per_step"], **RLOO,
    )  # fmt: skip
    sampling = SamplingConfig(
        temperature=0.7, max_new_tokens=size["max_new_tokens"], batch_size=size["batch_size"]
    )
    reset_memory(ctx.device)
    fresh_accelerate_state()
    start = time.perf_counter()
    run_rloo(config, sampling, progress)
    return {
        "step_s": ends[2] - ends[1],
        "step_with_tracking_s": ends[3] - ends[2],
        "whole_s": time.perf_counter() - start,
        "sequences_per_step": size["prompts_per_step"] * RLOO["k"],
        "peak_gib": peak_memory_gib(ctx.device),
    }


def run(ctx: Context) -> None:
    size = SIZES[ctx.size]
    ctx.record("settings", {**size, "rloo": RLOO, "bon_temperature": 1.0, "rloo_temperature": 0.7})
    rows = synthetic_rows(ctx, "uf", 64, seed=6)
    prompts = [r["prompt"] for r in rows]
    results: dict[str, Any] = {"best_of_n": {}, "rloo": {}}
    for name in POLICIES:
        folder = model_folder(ctx, name if name != "smollm2" else "policy-smollm2", ctx.shape(name))
        results["best_of_n"][name] = best_of_n(ctx, folder, prompts, size)
        ctx.record("best_of_n", results["best_of_n"])
    for name in POLICIES:
        folder = model_folder(ctx, name if name != "smollm2" else "policy-smollm2", ctx.shape(name))
        results["rloo"][name] = rloo_steps(ctx, name, folder, prompts, size)
        ctx.record("rloo", results["rloo"])
