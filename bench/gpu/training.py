"""Part 2, training throughput against TRL's RewardTrainer: the same random-init Llama-3.2-1B-shaped model,
the same pairs (bench/common's UltraFeedback-like and HH-like lengths), batch and steps, bf16 autocast on
both, gradient checkpointing off on both; TRL, rmguard with padded batches, rmguard packed.

Each trainer runs ``steps`` optimizer steps; the clock runs from the end of step ``warmup`` to the end of
the last step (start-up, compilation of kernels and the first allocations excluded), with the CUDA queue
drained at both ends. pairs/s and tokens/s count the measured steps' pairs at the data's mean real tokens
per pair (prompt + chosen and prompt + rejected: the same count for every trainer). Model FLOP utilisation
is ``context.training_flops`` (6·N·tokens plus causal attention, over the pairs' sequences as if each ran
alone: the work any trainer must do, so rmguard's shared prompts and last-layer saving count as speed)
over the card's bf16 dense peak (looked up by device name) and over a bf16 matmul measured in this call.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from gpu.context import (
    Context,
    bf16_dense_peak,
    fresh_accelerate_state,
    matmul_rate,
    model_folder,
    pair_features,
    pair_lengths,
    peak_memory_gib,
    reset_memory,
    shape_facts,
    synchronize,
    synthetic_rows,
    training_flops,
)

SIZES = {
    "tiny": {"profiles": ["uf", "hh"], "batch_size": 2, "steps": 3, "warmup": 1, "matmul": 256},
    "full": {"profiles": ["uf", "hh"], "batch_size": 8, "steps": 12, "warmup": 2, "matmul": 8192},
}
TRAINERS = ("trl", "rmguard-padded", "rmguard-packed")
MAX_LENGTH = 2048


def _step_clock(ctx: Context) -> tuple[list[float], Any, Any]:
    """(step end times, a TRL callback, an rmguard callback) that both append to the times."""
    from transformers import TrainerCallback

    times: list[float] = []

    def tick(*_: Any) -> None:
        synchronize(ctx.device)
        times.append(time.perf_counter())

    class Clock(TrainerCallback):
        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            tick()

    return times, Clock(), tick


def one_trainer(
    ctx: Context, trainer: str, folder: Any, data: Any, size: dict, profile: str
) -> dict[str, Any]:
    from train_throughput import run_rmguard, run_trl

    times, trl_clock, rmguard_clock = _step_clock(ctx)
    out = ctx.work / f"train-{profile}-{trainer}"  # a new folder per run: rmguard writes one run per folder
    gpu = ctx.device.type == "cuda"
    common = (str(folder), data, out, size["batch_size"], size["steps"], MAX_LENGTH)
    reset_memory(ctx.device)
    fresh_accelerate_state()
    if trainer == "trl":
        run_trl(*common, gpu=gpu, callbacks=[trl_clock], save=False)  # outside the clock: time saved
    else:
        run_rmguard(*common, packing=trainer == "rmguard-packed", gpu=gpu, callbacks=[rmguard_clock])
    shutil.rmtree(out, ignore_errors=True)  # a 1B model's final save: 5 GB of disk per run
    measured = len(times) - size["warmup"]  # times[i]: the end of step i + 1
    seconds = times[-1] - times[size["warmup"] - 1]
    return {"steps_timed": measured, "seconds": seconds, "peak_gib": peak_memory_gib(ctx.device)}


def run(ctx: Context) -> None:
    import json

    import torch
    from transformers import AutoTokenizer

    size = SIZES[ctx.size]
    name = torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else "cpu"
    peak = bf16_dense_peak(name)
    matmul = matmul_rate(ctx.device, size["matmul"])
    ctx.record("bf16_dense_peak_tflops", peak and peak / 1e12)
    ctx.record("bf16_matmul_tflops", matmul / 1e12)
    ctx.record("matmul_n", size["matmul"])
    folder = model_folder(ctx, "llama-1b", ctx.shape("llama-1b"))
    facts = shape_facts(folder)
    ctx.record("model", {"shape": "Llama-3.2-1B" if not ctx.dry_run else "tiny", **facts})
    ctx.record(
        "settings", {k: size[k] for k in ("batch_size", "steps", "warmup")} | {"max_length": MAX_LENGTH}
    )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    runs: dict[str, Any] = {}
    for profile in size["profiles"]:
        rows = synthetic_rows(ctx, profile, size["batch_size"] * size["steps"], seed=1)
        data = ctx.work / f"train-{profile}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        features = pair_features(rows, tokenizer, MAX_LENGTH)
        lengths = pair_lengths(features)
        tokens_per_pair = sum(lengths) / len(features)
        flops_per_pair = training_flops(facts, lengths) / len(features)
        runs[profile] = {"tokens_per_pair": tokens_per_pair, "model_flops_per_pair": flops_per_pair}
        for trainer in TRAINERS:
            result = one_trainer(ctx, trainer, folder, data, size, profile)
            pairs_s = result["steps_timed"] * size["batch_size"] / result["seconds"]
            achieved = pairs_s * flops_per_pair
            result |= {
                "pairs_per_s": pairs_s,
                "tokens_per_s": pairs_s * tokens_per_pair,
                "model_tflops": achieved / 1e12,
                "mfu_vs_peak": achieved / peak if peak else None,
                "mfu_vs_matmul": achieved / matmul,
            }
            runs[profile][trainer] = result
            ctx.record("runs", runs)
        trl_rate = runs[profile]["trl"]["pairs_per_s"]
        for trainer in TRAINERS:
            runs[profile][trainer]["x_trl"] = runs[profile][trainer]["pairs_per_s"] / trl_rate
        ctx.record("runs", runs)
