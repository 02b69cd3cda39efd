"""Part 1, exactness on the device: packed against padded batches (rewards, final hidden states, GRM
log-probs, the loss and every parameter's gradient) for each attention implementation, fp32 and bf16
autocast (what ``mixed_precision: bf16`` runs); the last layer on the read rows only against the full last
layer; flex_attention's fallback; the probe ``enable_packed_attention`` runs; and the reuse of frozen
layers' outputs where this build has it. Tolerances: see ``context``'s docstring."""

from __future__ import annotations

import contextlib
import random
from typing import Any

from gpu.context import (
    BF16_TOL,
    FP32_TOL,
    Context,
    max_abs,
    model_folder,
    pair_features,
    relative,
    synthetic_rows,
)

# A model small enough to be quick and shaped like real ones where kernels care (head_dim 64, GQA 4:1).
EXACT_SHAPE = dict(
    hidden_size=512, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=8,
    num_key_value_heads=2, head_dim=64, vocab_size=None, tie_word_embeddings=False, rms_norm_eps=1e-5,
    rope_theta=10000.0, max_position_embeddings=4096,
)  # fmt: skip
QUANTITIES = ("rewards", "hidden", "logps", "loss")


def _edge_features(vocab: int, seed: int) -> list[Any]:
    """Empty prompts, one-token responses and very different lengths, as the CPU tests use."""
    from rmguard.training.tokenization import PairFeatures

    rng = random.Random(seed)
    ids = lambda n: [rng.randrange(10, vocab) for _ in range(n)]  # noqa: E731 (clear of special tokens)
    return [PairFeatures(ids(p), ids(c), ids(r)) for p, c, r in [(0, 1, 1), (0, 5, 2), (1, 1, 9), (12, 1, 1)]]


def _run(model: Any, batch: dict[str, Any], config: Any, device: Any, bf16: bool) -> dict[str, Any]:
    """One forward and backward: the outputs and every parameter's gradient, in fp32 on the CPU."""
    import torch

    from rmguard.training.loss import RewardLoss

    model.zero_grad(set_to_none=True)
    inputs = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items() if k != "margin"}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with autocast:
        output = model(**inputs)
        loss, _ = RewardLoss(config)(output, {k: v for k, v in inputs.items()})
    loss.backward()
    got = {"rewards": output.rewards, "hidden": output.hidden, "loss": loss.reshape(1)}
    if output.logps is not None:
        got["logps"] = output.logps
    got = {k: v.detach().float().cpu() for k, v in got.items()}
    got["grads"] = {n: p.grad.float().cpu() for n, p in model.named_parameters() if p.grad is not None}
    return got


def _grad_relative(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, str]:
    """The largest per-parameter ‖Δg‖ / max(‖g‖, 1e-3·max‖g‖) (the floor keeps a gradient that is 0 in exact
    arithmetic, such as a head bias under a loss of r_c − r_r, from dividing noise by noise)."""
    floor = 1e-3 * max(g.norm().item() for g in b.values())
    worst = max(((a[n] - b[n]).norm().item() / max(b[n].norm().item(), floor), n) for n in b)
    return worst


def _compare(a: dict[str, Any], b: dict[str, Any], bf16: bool) -> dict[str, Any]:
    """fp32: max |a − b| of each quantity and gradient; bf16: norm-wise relative differences."""
    out: dict[str, Any] = {}
    for name in QUANTITIES:
        if name in b:
            out[name] = relative(a[name], b[name]) if bf16 else max_abs(a[name], b[name])
    if bf16:
        out["grads"], out["worst_param"] = _grad_relative(a["grads"], b["grads"])
    else:
        out["grads"], out["worst_param"] = max((max_abs(a["grads"][n], g), n) for n, g in b["grads"].items())
    out["same_params"] = sorted(a["grads"]) == sorted(b["grads"])
    tolerance = BF16_TOL if bf16 else FP32_TOL
    numbers = [out[k] for k in (*QUANTITIES, "grads") if k in out]
    out["pass"] = out["same_params"] and all(x <= tolerance for x in numbers)  # NaN fails
    out["tolerance"] = tolerance
    return out


def _setup(ctx: Context, folder: Any, kind: str, attention: str) -> tuple[Any, Any, Any]:
    from rmguard.training.config import TrainConfig
    from rmguard.training.modeling import build_reward_model

    model, tokenizer = build_reward_model(str(folder), kind=kind, head_type="linear")
    model.transformer.set_attn_implementation(attention)
    model.to(ctx.device).eval()  # no dropout: both paths compute one function
    config = TrainConfig(objective="grm" if kind == "grm" else "bsr", train_file="unused", head_type="linear")
    return model, tokenizer, config


def packed_vs_padded(ctx: Context, folder: Any, features: list[Any], attention: str, kind: str) -> dict:
    """fp32 and bf16, padded first (the model's own attention), then packed where rmguard packs."""
    from rmguard.training.attention import enable_packed_attention
    from rmguard.training.collate import PaddedPairCollator
    from rmguard.training.packing import PackedPairCollator

    model, tokenizer, config = _setup(ctx, folder, kind, attention)
    grm = kind == "grm"
    padded_batch = PaddedPairCollator(tokenizer.pad_token_id, with_logps=grm)(features)
    padded = {bf16: _run(model, padded_batch, config, ctx.device, bf16) for bf16 in (False, True)}
    exact, reason = enable_packed_attention(model.transformer)
    case: dict[str, Any] = {"packed": exact, "reason": reason}
    if not exact:
        return case
    packed_batch = PackedPairCollator(with_logps=grm)(features)
    case["tokens"] = {
        "padded": padded_batch["input_ids"].numel(),
        "packed": packed_batch["input_ids"].numel(),
    }
    for bf16 in (False, True):
        packed = _run(model, packed_batch, config, ctx.device, bf16)
        result = _compare(packed, padded[bf16], bf16)
        if bf16:  # bf16's own error: each path against fp32 on the same weights
            result["padded_vs_fp32"] = relative(padded[True]["rewards"], padded[False]["rewards"])
            result["packed_vs_fp32"] = relative(packed["rewards"], padded[False]["rewards"])
        case["bf16" if bf16 else "fp32"] = result
    return case


def last_layer(ctx: Context, folder: Any, features: list[Any]) -> dict:
    """GRM, packed: the last layer on the read rows only against every row."""
    from rmguard.training.attention import enable_packed_attention
    from rmguard.training.packing import PackedPairCollator

    model, _, config = _setup(ctx, folder, "grm", "sdpa")
    enable_packed_attention(model.transformer)
    batch = PackedPairCollator(with_logps=True)(features)
    out = {}
    for bf16 in (False, True):
        model.last_layer_rows_only = False
        full = _run(model, batch, config, ctx.device, bf16)
        model.last_layer_rows_only = True
        out["bf16" if bf16 else "fp32"] = _compare(_run(model, batch, config, ctx.device, bf16), full, bf16)
    return out


def flex_attention(ctx: Context, folder: Any, features: list[Any]) -> dict:
    """flex_attention has no packed form in rmguard: it must fall back with a reason. On CUDA its padded
    rewards are also compared with SDPA's (fp32)."""
    from rmguard.training.attention import enable_packed_attention
    from rmguard.training.collate import PaddedPairCollator

    try:
        from torch.nn.attention.flex_attention import flex_attention as _  # noqa: F401
    except ImportError:
        return {"available": False}
    model, tokenizer, config = _setup(ctx, folder, "standard", "flex_attention")
    exact, reason = enable_packed_attention(model.transformer)
    out: dict[str, Any] = {"available": True, "packed": exact, "reason": reason, "pass": not exact}
    if ctx.device.type != "cuda":
        out["padded_vs_sdpa"] = "not run: flex_attention compiles its kernel, CUDA only"
        return out
    batch = PaddedPairCollator(tokenizer.pad_token_id)(features)
    flex = _run(model, batch, config, ctx.device, False)
    model.transformer.set_attn_implementation("sdpa")
    sdpa = _run(model, batch, config, ctx.device, False)
    out["padded_vs_sdpa"] = max_abs(flex["rewards"], sdpa["rewards"])
    out["pass"] = out["pass"] and out["padded_vs_sdpa"] <= FP32_TOL
    return out


def probes(ctx: Context, folder: Any) -> dict:
    """What the probe of packed attention says on this device (None: exact), per implementation."""
    from rmguard.training.attention import PACKED_EAGER, PACKED_SDPA, probe_packed_attention

    model, _, _ = _setup(ctx, folder, "standard", "sdpa")
    return {name: probe_packed_attention(model.transformer, name) for name in (PACKED_SDPA, PACKED_EAGER)}


def frozen_reuse(ctx: Context, folder: Any, rows: list[dict]) -> dict:
    """Two trainings, the frozen part's outputs reused or recomputed; the saved weights must agree (fp32)."""
    import json

    from safetensors.torch import load_file

    from rmguard.training.config import TrainConfig
    from rmguard.training.trainer import train

    data = ctx.work / "exactness_pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    weights = {}
    for reuse in (False, True):
        out = ctx.work / f"frozen-{reuse}"
        settings = dict(model_name_or_path=str(folder), train_file=str(data), output_dir=str(out),
                        freeze_embeddings=True, freeze_layers=1, num_train_epochs=2, per_device_train_batch_size=2, learning_rate=1e-4,
                        report_to=["none"], disable_tqdm=True, disable_dropout=True, use_cpu=ctx.device.type != "cuda")  # fmt: skip
        train(TrainConfig(**settings, reuse_frozen_outputs=reuse))
        weights[reuse] = load_file(str(out / "model.safetensors"))
    worst = max(max_abs(weights[True][k], v) for k, v in weights[False].items())
    return {"weights_max_abs": worst, "pass": worst <= FP32_TOL}


def run(ctx: Context) -> None:
    import torch
    from transformers import AutoTokenizer

    folder = model_folder(ctx, "exactness", ctx.shape("llama-1b") if ctx.dry_run else EXACT_SHAPE)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rows = synthetic_rows(ctx, "uf", 4 if ctx.dry_run else 8, seed=3)
    features = pair_features(rows, tokenizer, 2048) + _edge_features(len(tokenizer), seed=0)
    ctx.record("tf32_matmul", torch.backends.cuda.matmul.allow_tf32)
    ctx.record("tolerances", {"fp32_max_abs": FP32_TOL, "bf16_relative": BF16_TOL})
    ctx.record("probe", probes(ctx, folder))
    cases = {}
    for attention in ("sdpa", "eager"):
        for kind in ("standard", "grm"):
            cases[f"{attention}/{kind}"] = packed_vs_padded(ctx, folder, features, attention, kind)
            ctx.record("packed_vs_padded", cases)
    ctx.record("last_layer_rows_only", last_layer(ctx, folder, features))
    ctx.record("frozen_reuse", frozen_reuse(ctx, folder, rows))
    results = [c[d]["pass"] for c in cases.values() for d in ("fp32", "bf16") if d in c]
    results += [v["pass"] for v in ctx.results["last_layer_rows_only"].values()]
    results += [ctx.results["frozen_reuse"].get("pass", True)]
    ctx.record("all_pass", all(results) and all(c["packed"] for c in cases.values()))
    # Last: on CUDA its first call compiles a kernel, the slowest step of the part.
    ctx.record("flex_attention", flex_attention(ctx, folder, features))
