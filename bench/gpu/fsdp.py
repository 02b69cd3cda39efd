"""Part 4, FSDP2 through rmguard's own sharding (``training.sharding.shard_model``: each decoder layer, then
the root) on a Llama-3.2-1B-shaped model cut to 4 layers (full vocabulary, so GRM's LM head has its real
size).

* World size 1: a process group of one rank (NCCL on CUDA, gloo on the CPU) and three AdamW steps, sharded
  against the same model unsharded, fp32, the same packed batches: losses and final weights must agree
  (1e-5; AdamW's ε is 1e-4, as in tests/test_fsdp.py, so float noise in a gradient that is 0 analytically
  stays noise).
* Two ranks against one, where there are two GPUs (and in the dry run, on gloo): each rank takes half of
  every batch; the mean loss and the final weights must equal the one-rank run's.
* GRM's LM head: peak memory of one sharded bf16 step with the SFT regularizer (the LM head's log-softmax
  over the whole vocabulary at every chosen response token) against the same GRM model with no regularizer;
  and the same with a chunked cross-entropy, where this build has one.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Any

from gpu.context import (
    FP32_TOL,
    Context,
    max_abs,
    model_folder,
    pair_features,
    peak_memory_gib,
    reset_memory,
    synthetic_rows,
)

SIZES = {"tiny": {"batch_size": 4, "steps": 3}, "full": {"batch_size": 8, "steps": 3}}
SETTINGS = dict(objective="bt", learning_rate=1e-4, adam_epsilon=1e-4, train_file="unused")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_group(rank: int, world: int, port: int, cuda: bool) -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)


def train_steps(
    folder: str, device: Any, batches: list[list[Any]], sharded: bool, settings: dict, mixed: str = "no"
) -> dict:
    """rmguard's model, loss and optimizer over ``batches`` of pair features; (losses, full state on rank 0,
    peak GiB). Sharded: ``shard_model`` with ``mixed`` precision; the loss is the mean over ranks."""
    import contextlib

    import torch
    import torch.distributed as dist

    from rmguard.training.attention import enable_packed_attention
    from rmguard.training.config import TrainConfig
    from rmguard.training.loss import RewardLoss
    from rmguard.training.modeling import build_reward_model
    from rmguard.training.optimizers import make_optimizer
    from rmguard.training.packing import make_pair_collator
    from rmguard.training.run import describe
    from rmguard.training.sharding import ShardingPlan, full_state_dict, shard_model

    config = TrainConfig(model_name_or_path=folder, **settings)
    run = describe(config)
    torch.manual_seed(0)  # the same head initialisation in every run
    model, tokenizer = build_reward_model(folder, run.kind, run.head_type)
    enable_packed_attention(model.transformer)
    model.to(device).train()
    if sharded:
        shard_model(model, model.backbone, ShardingPlan(), mixed)
    optimizer = make_optimizer(config, [p for p in model.parameters() if p.requires_grad])
    collate = make_pair_collator(True, tokenizer.pad_token_id, run.batch)
    loss_fn = RewardLoss(config, spec=run)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if mixed == "bf16" and not sharded
        else contextlib.nullcontext()
    )
    reset_memory(device)
    losses = []
    for features in batches:
        batch = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in collate(features).items()}
        with autocast:
            loss, _ = loss_fn(model(**{k: v for k, v in batch.items() if k != "margin"}), batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        reported = loss.detach().float()
        if dist.is_initialized() and dist.get_world_size() > 1:  # the mean over ranks (gloo has no AVG)
            dist.all_reduce(reported)
            reported = reported / dist.get_world_size()
        losses.append(reported.item())
    peak = peak_memory_gib(device)
    state = (
        full_state_dict(model) if sharded else {k: v.detach().cpu() for k, v in model.state_dict().items()}
    )
    return {"losses": losses, "state": state, "peak_gib": peak}


def _compare(a: dict, b: dict) -> dict[str, Any]:
    loss = max(abs(x - y) for x, y in zip(a["losses"], b["losses"]))
    common = [k for k in b["state"] if k in a["state"]]
    weights = max(max_abs(a["state"][k].float(), b["state"][k].float()) for k in common)
    same_keys = sorted(a["state"]) == sorted(b["state"])
    return {"loss_max_abs": loss, "weights_max_abs": weights, "same_keys": same_keys,
            "pass": same_keys and loss <= FP32_TOL and weights <= FP32_TOL}  # fmt: skip


def _rank_main(rank: int, world: int, port: int, cuda: bool, folder: str, batches: list, out: str) -> None:
    import torch

    init_group(rank, world, port, cuda)
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    half = [b[rank * len(b) // world : (rank + 1) * len(b) // world] for b in batches]
    result = train_steps(folder, device, half, True, SETTINGS)
    if rank == 0:
        torch.save({"losses": result["losses"], "state": result["state"]}, out)
    torch.distributed.destroy_process_group()


def two_ranks(ctx: Context, folder: str, batches: list, one_rank: dict) -> dict[str, Any]:
    import torch
    import torch.multiprocessing as mp

    cuda = ctx.device.type == "cuda"
    if cuda and torch.cuda.device_count() < 2:
        return {"status": f"not run: {torch.cuda.device_count()} GPU"}
    out = str(ctx.work / "fsdp-two-ranks.pt")
    mp.spawn(_rank_main, args=(2, _free_port(), cuda, folder, batches, out), nprocs=2, join=True)
    return {"backend": "nccl" if cuda else "gloo", **_compare(torch.load(out), one_rank)}


def chunked_option() -> str | None:
    """A TrainConfig switch for a chunked cross-entropy of GRM's log-probs, if this build has one."""
    from rmguard.training.config import TrainConfig

    return next((f.name for f in dataclasses.fields(TrainConfig) if "chunk" in f.name.split("_")), None)


def lm_head_memory(ctx: Context, folder: str, batches: list) -> dict[str, Any]:
    """Peak GiB of one sharded bf16 GRM step with the SFT regularizer and without any."""
    from transformers import AutoConfig

    grm = {**SETTINGS, "objective": "grm"}
    # No regularizer: still a GRM model (LM head kept, tied to the embeddings), through an MLP reward head
    # (2M weights), since a linear head without a regularizer is a standard model.
    runs = {"sft": grm, "no_regularizer": {**grm, "grm_regularizer": "none", "head_type": "mlp"}}
    option = chunked_option()
    if option is not None:
        runs["sft_chunked"] = {**grm, option: True}
    out: dict[str, Any] = {
        name: train_steps(folder, ctx.device, batches[:1], True, s, "bf16")["peak_gib"]
        for name, s in runs.items()
    }
    tokens = sum(len(f.chosen_ids) for f in batches[0])
    out |= {"chosen_tokens": tokens, "vocab_size": AutoConfig.from_pretrained(folder).vocab_size}
    out["chunked"] = option or "not in this build"
    if ctx.device.type == "cuda":
        out["lm_head_gib"] = out["sft"] - out["no_regularizer"]
        # fp32 logits of every predicting token, their log-softmax and its gradient: 12 bytes a logit
        out["logits_fp32_gib"] = tokens * out["vocab_size"] * 4 / 2**30
    return out


def run(ctx: Context) -> None:
    import torch.distributed as dist
    from transformers import AutoTokenizer

    size = SIZES[ctx.size]
    folder = str(
        model_folder(ctx, "llama-1b-4-layers", ctx.shape("llama-1b"), layers=None if ctx.dry_run else 4)
    )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    features = pair_features(
        synthetic_rows(ctx, "uf", size["batch_size"] * size["steps"], seed=4), tokenizer, 2048
    )
    batches = [features[i : i + size["batch_size"]] for i in range(0, len(features), size["batch_size"])]
    cuda = ctx.device.type == "cuda"
    init_group(0, 1, _free_port(), cuda)
    plain = train_steps(folder, ctx.device, batches, False, SETTINGS)
    sharded = train_steps(folder, ctx.device, batches, True, SETTINGS)
    ctx.record("world_size_1", {"backend": "nccl" if cuda else "gloo", **_compare(sharded, plain),
                                "peak_gib": {"plain": plain["peak_gib"], "sharded": sharded["peak_gib"]}})  # fmt: skip
    dist.destroy_process_group()
    ctx.record("two_ranks", two_ranks(ctx, folder, batches, plain))
    init_group(0, 1, _free_port(), cuda)
    ctx.record("grm_lm_head", lm_head_memory(ctx, folder, batches))
    dist.destroy_process_group()
