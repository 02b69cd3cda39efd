"""Reward-model training with Accelerate: ``train(config)`` is everything ``rmguard train`` does.

The loop is plain so that it can be read top-down: load pairs → tokenize → batches → model → rewards
(and log-probs) → objective → loss → AdamW step. ``accelerate launch`` runs the same code data-parallel
(DDP, FSDP, DeepSpeed). Checkpoints hold model, optimizer, scheduler, RNG states and the step, so a run
resumed after a kill continues exactly where the checkpoint left it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.optimizer import AcceleratedOptimizer
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from rmguard import __version__
from rmguard.data import load_pairs
from rmguard.errors import ConfigError, TrainingError
from rmguard.fileio import atomic_write_json, check_outputs, output_lock
from rmguard.optional import require
from rmguard.training import frozen_prefix
from rmguard.training.attention import enable_packed_attention
from rmguard.training.batching import EpochShuffleSampler, TokenBudgetBatchSampler
from rmguard.training.checkpoints import checkpoint_step, load_sharded_state, resume_path, save_checkpoint
from rmguard.training.collate import MODEL_INPUT_KEYS, ReferenceLogps, pair_key
from rmguard.training.config import TrainConfig
from rmguard.training.features import PairFeatures, TokenizationReport, tokenize_pairs
from rmguard.training.loss import RewardLoss, pair_metrics
from rmguard.training.modeling import (
    RewardModel,
    add_length_head,
    add_lora,
    build_reward_model,
    freeze_bottom_layers,
    is_reward_checkpoint,
    load_reward_model,
    save_reward_model,
    saved_dtype,
)
from rmguard.training.objectives import GRM_REGULARIZERS
from rmguard.training.optimizers import make_optimizer
from rmguard.training.packing import PackedPairCollator, PairCollator, make_pair_collator, pair_tokens
from rmguard.training.pretrained import resolve_model_path
from rmguard.training.sharding import (
    ShardingPlan,
    accelerate_fsdp_settings,
    full_state_dict,
    shard_model,
    sharding_plan,
)
from rmguard.training.tracking import CSVTracker


@dataclass
class TrainState:
    """What callbacks see after every optimizer step."""

    global_step: int
    epoch: int
    loss: float
    max_steps: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    output_dir: str
    global_step: int
    eval_metrics: dict[str, float]
    train_report: TokenizationReport
    history: list[dict[str, float]]


# ----------------------------------------------------------------------------------------------- setup


def _make_accelerator(config: TrainConfig) -> Accelerator:
    loggers: list[Any] = []
    if "csv" in config.report_to:
        loggers.append(CSVTracker(Path(config.output_dir) / "logs"))
    if "tensorboard" in config.report_to:
        loggers.append("tensorboard")
    if "wandb" in config.report_to:
        require("wandb", "report_to: wandb")
        loggers.append("wandb")
    # Accelerate treats a torchrun launch without GPUs as one process unless told to use the CPU.
    multi_process_on_cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    return Accelerator(
        cpu=config.use_cpu or multi_process_on_cpu,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        log_with=loggers or None,
        project_dir=str(Path(config.output_dir) / "logs"),
    )


def _load_model(config: TrainConfig, log: Callable[[str], None]) -> tuple[RewardModel, Any, bool]:
    """(model, tokenizer, whether batches are packed): the model is switched to its packed attention
    here, once, when the config asks for packing and packing is exact for it."""
    model, tokenizer = _load_weights(config)
    if config.attn_implementation:
        model.transformer.set_attn_implementation(config.attn_implementation)
    if config.disable_dropout:
        for module in model.modules():  # as TRL's disable_dropout_in_model
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    packed = False
    if config.packing and config.attn_implementation not in (None, "sdpa", "eager"):
        log(f"packing off: attn_implementation {config.attn_implementation} has no exact packed form")
    elif config.packing:
        packed, reason = enable_packed_attention(model.transformer)
        if not packed:
            log(f"packing off: {reason}; using padded batches")
    if config.reuse_frozen_outputs:
        frozen_prefix.attach(model, config.freeze_layers)
    return model, tokenizer, packed


def _model_dtype(config: TrainConfig, path: str) -> torch.dtype:
    return saved_dtype(path) if config.dtype == "auto" else getattr(torch, config.dtype)


def _load_weights(config: TrainConfig) -> tuple[RewardModel, Any]:
    """The reward model to train: an rmguard checkpoint to continue, or a fresh one on a causal LM."""
    path = resolve_model_path(config.model_name_or_path)
    dtype = _model_dtype(config, path)
    if is_reward_checkpoint(path):
        model, tokenizer = load_reward_model(path, head_type=config.head_type, dtype=dtype)
        if (model.kind == "grm") != config.is_grm:
            raise ConfigError(
                f"{path} is a {model.kind} reward model, but the config asks for "
                f"{'a GRM' if config.is_grm else 'a standard'} one"
            )
        if (model.length_head is not None) != config.is_odin:
            has = "has" if model.length_head is not None else "has no"
            raise ConfigError(f"{path} {has} ODIN's length head, but the objective is {config.objective}")
    else:
        model, tokenizer = _build_model(config, path, dtype)
    return model, tokenizer


def _build_model(config: TrainConfig, path: str, dtype: torch.dtype) -> tuple[RewardModel, Any]:
    """A fresh reward model on a causal LM, with the config's LM-head, LoRA and checkpointing settings."""
    kind = "grm" if config.is_grm else "standard"
    model, tokenizer = build_reward_model(
        path, kind, config.resolved_head_type, config.num_hidden_layers, config.chat_template, dtype
    )
    if config.is_odin:
        add_length_head(model)
    if model.kind == "grm":
        needs_lm_head = config.regularizer != "none"
        model.transformer.get_output_embeddings().weight.requires_grad_(
            config.train_lm_head and needs_lm_head
        )
    if config.freeze_embeddings:
        model.transformer.get_input_embeddings().weight.requires_grad_(False)
    if config.use_peft:
        add_lora(model, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_target_modules)
    if config.freeze_layers:  # after LoRA, whose adapters in these layers must stay frozen too
        freeze_bottom_layers(model, config.freeze_layers)
    if config.gradient_checkpointing or _fsdp_checkpointing(config):
        model.transformer.gradient_checkpointing_enable()
    return model, tokenizer


def _fsdp_checkpointing(config: TrainConfig) -> bool:
    """fsdp_config's activation_checkpointing: the decoder layers recompute in backward (transformers'
    checkpointing; each layer's FSDP unit gathers its parameters again for the recomputation)."""
    plan = sharding_plan(config.fsdp, config.fsdp_config)
    return plan is not None and plan.activation_checkpointing


def _load_features(
    config: TrainConfig, spec: str, split: str, tokenizer: Any, log: Callable[[str], None]
) -> tuple[list[PairFeatures], TokenizationReport]:
    pairs, stats = load_pairs(spec, config.data_format, config.pair_strategy, split, config.seed)
    for reason, count in stats.dropped.items():
        log(f"{spec}: {count} of {stats.rows} rows give no pair ({reason})")
    features, report = tokenize_pairs(pairs, tokenizer, config.max_length, config.truncation)
    log(f"{spec}: {report.summary()}")
    if report.dropped_rows:
        shown = ", ".join(str(row) for _, row in report.dropped_rows[:10])
        log(f"{spec}: dropped rows {shown}{' …' if len(report.dropped_rows) > 10 else ''}")
    if not features:
        raise ConfigError(f"{spec}: no pair fits max_length={config.max_length}")
    return features, report


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: batch[key] for key in MODEL_INPUT_KEYS if key in batch}


@torch.no_grad()
def _precompute_reference_logps(
    model: RewardModel, features: list[PairFeatures], collator: PairCollator, batch_size: int
) -> ReferenceLogps:
    """GRM-DPO reference log-probs of the starting model, computed once: pair tokens → (S(y_c), S(y_r))."""
    was_training = model.training
    model.eval()
    reference: ReferenceLogps = {}
    for start in range(0, len(features), batch_size):
        chunk = features[start : start + batch_size]
        logps = model(**model_inputs(collator(chunk))).logps
        for i, feature in enumerate(chunk):
            reference[pair_key(feature)] = (logps[i].item(), logps[len(chunk) + i].item())
    model.train(was_training)
    return reference


def _live_reference(
    model: RewardModel, plan: ShardingPlan | None, mixed_precision: str
) -> Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """A frozen copy of the starting model that adds reference log-probs to each batch (sharded as the
    trained model is, under FSDP)."""
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    if plan is not None:
        shard_model(reference, reference.backbone, plan, mixed_precision)

    def add_reference(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            logps = reference(**model_inputs(batch)).logps
        half = len(logps) // 2
        return {**batch, "ref_chosen_logps": logps[:half], "ref_rejected_logps": logps[half:]}

    return add_reference


# ----------------------------------------------------------------------------------------------- loop


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DataLoader, accelerator: Accelerator) -> dict[str, float]:
    """Pairwise metrics over a whole evaluation set, gathered across processes."""
    was_training = model.training
    model.eval()
    chosen, rejected, norms = [], [], []
    for batch in loader:
        output = model(**model_inputs(batch))
        half = len(output.rewards) // 2
        norm = output.hidden.norm(dim=-1)
        # One row per pair in each gathered tensor: gather_for_metrics drops the padding of an uneven last
        # batch by pair count, which a [2B] tensor of chosen-then-rejected norms would cut in the wrong place.
        c, r, nc, nr = accelerator.gather_for_metrics(
            (output.rewards[:half], output.rewards[half:], norm[:half], norm[half:])
        )
        chosen.append(c), rejected.append(r), norms.extend((nc, nr))
    model.train(was_training)
    return pair_metrics(torch.cat(chosen), torch.cat(rejected), torch.cat(norms))


def train(config: TrainConfig, callbacks: list[Callable[[TrainState], None]] | None = None) -> TrainResult:
    """Train a reward model as ``config`` says; returns where it went and the final evaluation.

    The main process holds an exclusive lock on ``output_dir`` for the whole run: a second run writing the
    same folder is refused instead of racing for its checkpoints."""
    config.validate()
    # The launcher's RANK (torchrun, accelerate launch) says which process is the main one before any
    # process group exists; the lock must be taken before the accelerator creates the output folder.
    main_process = int(os.environ.get("RANK", "0")) == 0
    if main_process:
        inputs = [config.train_file, config.eval_file, config.model_name_or_path]
        check_outputs([config.output_dir], [path for path in inputs if path], folders=True)
    lock = output_lock(config.output_dir) if main_process else contextlib.nullcontext()
    with lock:
        return _train(config, _make_accelerator(config), callbacks)


@dataclass
class _Run:
    """What the step loop works with once everything is built and prepared."""

    config: TrainConfig
    accelerator: Accelerator
    model: Any
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    train_loader: DataLoader
    eval_loader: DataLoader | None
    budget_sampler: TokenBudgetBatchSampler | None
    add_reference: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None
    trainable: list[torch.nn.Parameter]
    sharded: bool = False  # FSDP2 applied by rmguard (sharding.py): model and optimizer saved apart
    max_steps: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def epoch_steps(self, epoch: int) -> int:
        """Optimizer steps in ``epoch``: token-budget epochs differ in their number of batches."""
        batches = (
            len(self.train_loader)
            if self.budget_sampler is None
            else math.ceil(self.budget_sampler.num_batches(epoch) / self.accelerator.num_processes)
        )
        return max(1, math.ceil(batches / self.config.gradient_accumulation_steps))

    def planned_steps(self) -> int:
        config = self.config
        if config.max_steps > 0:
            return config.max_steps
        whole = int(config.num_train_epochs)
        fraction = config.num_train_epochs - whole
        return sum(self.epoch_steps(e) for e in range(whole)) + math.ceil(fraction * self.epoch_steps(whole))


def _train(
    config: TrainConfig, accelerator: Accelerator, callbacks: list[Callable[[TrainState], None]] | None
) -> TrainResult:
    set_seed(config.seed)
    model, tokenizer, packed = _load_model(config, accelerator.print)
    run, train_report = _build_run(config, accelerator, model, tokenizer, packed)
    global_step, start_epoch, skip_batches = _resume(run)
    global_step = _step_loop(run, global_step, start_epoch, skip_batches, callbacks or [])
    eval_metrics = _finish(run, global_step, train_report)
    return TrainResult(config.output_dir, global_step, eval_metrics, train_report, run.history)


def _build_run(
    config: TrainConfig, accelerator: Accelerator, model: RewardModel, tokenizer: Any, packed: bool
) -> tuple[_Run, TokenizationReport]:
    """Features → loaders → optimizer and schedule, prepared by Accelerate."""
    log = accelerator.print
    train_features, train_report = _load_features(
        config, config.train_file, config.train_split, tokenizer, log
    )
    collator = make_pair_collator(
        packed,
        tokenizer.pad_token_id,
        config.regularizer != "none",
        chosen_logps_only=config.regularizer != "none" and GRM_REGULARIZERS[config.regularizer].chosen_only,
        with_lengths=config.is_odin,
    )
    plan = _sharding(config, accelerator)
    add_reference = None
    if config.regularizer == "dpo":
        if config.grm_reference == "precomputed":
            reference = _precompute_reference_logps(
                model, train_features, collator, config.per_device_eval_batch_size
            )
            collator = dataclasses.replace(collator, reference=reference)
        else:
            add_reference = _live_reference(model, plan, config.mixed_precision)
    train_loader, budget_sampler = _train_loader(config, train_features, collator)
    eval_loader = _eval_loader(config, packed, tokenizer, log)
    if plan is not None:
        shard_model(model, model.backbone, plan, config.mixed_precision)
    # After sharding: fully_shard replaces each parameter by its DTensor shard.
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(config, trainable)
    if plan is None:
        model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    else:
        # Kept out of Accelerate's save_state, which would write rank 0's shards only (checkpoints.py
        # gathers model and optimizer); the wrapper still skips steps while gradients accumulate.
        optimizer = AcceleratedOptimizer(optimizer, device_placement=False)
        train_loader = accelerator.prepare(train_loader)
    if eval_loader is not None:
        eval_loader = accelerator.prepare(eval_loader)
    run = _Run(
        config, accelerator, model, tokenizer, optimizer, None, train_loader, eval_loader, budget_sampler,
        add_reference, trainable, sharded=plan is not None,
    )  # fmt: skip
    run.max_steps = run.planned_steps()
    # Stepped once per optimizer step on every rank (not prepared: Accelerate would step it once per process).
    run.scheduler = get_scheduler(
        config.lr_scheduler_type,
        optimizer,
        num_warmup_steps=config.warmup_steps_for(run.max_steps),
        num_training_steps=run.max_steps,
    )
    accelerator.register_for_checkpointing(run.scheduler)
    accelerator.init_trackers(
        config.run_name or "rmguard",
        config={k: str(v) for k, v in config.to_dict().items()},
        init_kwargs={"wandb": {"name": config.run_name}} if config.run_name else {},
    )
    return run, train_report


def _sharding(config: TrainConfig, accelerator: Accelerator) -> ShardingPlan | None:
    """The FSDP2 plan of the config's ``fsdp`` settings, else of an ``accelerate launch`` FSDP config;
    None for one process (nothing to shard)."""
    fsdp, fsdp_config = config.fsdp, config.fsdp_config
    if fsdp is None and (found := accelerate_fsdp_settings()) is not None:
        fsdp, fsdp_config = found
    plan = sharding_plan(fsdp, fsdp_config)
    if plan is not None and accelerator.num_processes == 1:
        accelerator.print(
            "fsdp off: one process, nothing to shard (launch with torchrun or accelerate launch)"
        )
        return None
    return plan


def _train_loader(
    config: TrainConfig, features: list[PairFeatures], collator: Callable
) -> tuple[DataLoader, TokenBudgetBatchSampler | None]:
    if not config.max_tokens_per_batch:
        loader = DataLoader(
            features,
            batch_size=config.per_device_train_batch_size,
            sampler=EpochShuffleSampler(len(features), config.seed),
            collate_fn=collator,
            generator=torch.Generator().manual_seed(config.seed),
        )
        return loader, None
    packed = isinstance(collator, PackedPairCollator)
    sampler = TokenBudgetBatchSampler(
        [pair_tokens(f, packed) for f in features],
        config.max_tokens_per_batch,
        config.seed,
        max_items=config.per_device_train_batch_size,
    )
    return DataLoader(features, batch_sampler=sampler, collate_fn=collator), sampler


def _eval_loader(config: TrainConfig, packed: bool, tokenizer: Any, log: Callable) -> DataLoader | None:
    if not config.eval_file:
        return None
    features, _ = _load_features(config, config.eval_file, config.eval_split, tokenizer, log)
    if not features:
        return None
    return DataLoader(
        features,
        batch_size=config.per_device_eval_batch_size,
        collate_fn=make_pair_collator(packed, tokenizer.pad_token_id, with_logps=False),
    )


def _resume(run: _Run) -> tuple[int, int, int]:
    """(global step, epoch, batches of that epoch already done) from ``resume_from_checkpoint``, else zeros."""
    resume = resume_path(run.config.resume_from_checkpoint, run.config.output_dir)
    if resume is None:
        return 0, 0, 0
    run.accelerator.load_state(str(resume))
    if run.sharded:
        load_sharded_state(run.model, run.optimizer.optimizer, resume)
    global_step = checkpoint_step(resume)
    epoch, steps_left = 0, global_step
    while steps_left >= run.epoch_steps(epoch):
        steps_left -= run.epoch_steps(epoch)
        epoch += 1
    run.accelerator.print(f"resumed from {resume} at step {global_step}")
    return global_step, epoch, steps_left * run.config.gradient_accumulation_steps


def _step_loop(
    run: _Run, global_step: int, epoch: int, skip_batches: int, callbacks: list[Callable[[TrainState], None]]
) -> int:
    """Optimizer steps until ``max_steps``, with logging, evaluation, checkpoints and callbacks."""
    loss_fn = RewardLoss(run.config)
    progress = tqdm(
        total=run.max_steps,
        initial=global_step,
        disable=run.config.disable_tqdm or not run.accelerator.is_main_process,
        desc=f"train {run.config.objective}",
        dynamic_ncols=True,
    )
    run.model.train()
    running: list[float] = []
    while global_step < run.max_steps:
        run.train_loader.set_epoch(epoch)
        if run.budget_sampler is not None:  # under data parallelism Accelerate may not forward set_epoch
            run.budget_sampler.set_epoch(epoch)
        loader = run.train_loader
        if skip_batches:
            loader, skip_batches = run.accelerator.skip_first_batches(run.train_loader, skip_batches), 0
        for batch in loader:
            loss, parts = _micro_step(run, loss_fn, batch, global_step)
            running.append(loss)
            if not run.accelerator.sync_gradients:
                continue
            run.scheduler.step()
            global_step += 1
            progress.update(1)
            metrics = _after_step(run, global_step, epoch, running, parts, progress)
            for callback in callbacks:
                callback(TrainState(global_step, epoch, loss, run.max_steps, metrics))
            if global_step >= run.max_steps:
                break
        if run.eval_loader is not None and evaluates_at(run.config, global_step, end_of_epoch=True):
            _log_eval(run, global_step, epoch)
        epoch += 1
    progress.close()
    return global_step


def _micro_step(
    run: _Run, loss_fn: RewardLoss, batch: dict[str, torch.Tensor], global_step: int
) -> tuple[float, dict[str, float]]:
    """Forward, loss and backward of one micro-batch; the optimizer steps when gradients sync."""
    with run.accelerator.accumulate(run.model):
        if run.add_reference is not None:
            batch = run.add_reference(batch)
        loss, parts = loss_fn(run.model(**model_inputs(batch)), batch)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"step {global_step + 1}: the loss is {loss.item()} (not finite); "
                "lower learning_rate or check the data"
            )
        run.accelerator.backward(loss)
        if run.accelerator.sync_gradients and run.config.max_grad_norm > 0:
            run.accelerator.clip_grad_norm_(run.trainable, run.config.max_grad_norm)
        run.optimizer.step()
        run.optimizer.zero_grad()
    return loss.item(), parts


def _eval_metrics(run: _Run) -> dict[str, float]:
    return {f"eval/{k}": v for k, v in evaluate(run.model, run.eval_loader, run.accelerator).items()}


def _log_eval(run: _Run, step: int, epoch: int) -> None:
    metrics = {**_eval_metrics(run), "epoch": epoch + 1}
    run.accelerator.log(metrics, step=step)
    run.history.append({"step": step, **metrics})


def _after_step(
    run: _Run, step: int, epoch: int, running: list[float], parts: dict[str, float], progress: Any
) -> dict[str, float]:
    """Logging, in-training evaluation and checkpointing after optimizer step ``step``."""
    config = run.config
    metrics: dict[str, float] = {}
    if step % config.logging_steps == 0 or step == run.max_steps:
        metrics = {
            "train/loss": sum(running) / len(running),
            "train/lr": run.scheduler.get_last_lr()[0],
            **{f"train/{k}": v for k, v in parts.items()},
        }
        running.clear()
        progress.set_postfix(loss=f"{metrics['train/loss']:.4f}")
    if run.eval_loader is not None and evaluates_at(config, step, end_of_epoch=False):
        metrics.update(_eval_metrics(run))
    if metrics:
        run.accelerator.log(metrics, step=step)
        run.history.append({"step": step, **metrics})
    if config.save_steps > 0 and step % config.save_steps == 0:
        sharded = (run.model, run.optimizer.optimizer) if run.sharded else None
        save_checkpoint(run.accelerator, config.output_dir, step, epoch, config.save_total_limit, sharded)
    return metrics


def evaluates_at(config: TrainConfig, step: int, end_of_epoch: bool) -> bool:
    """Whether to evaluate after optimizer step ``step``: every eval_steps (strategy 'steps', or unset
    with eval_steps > 0), or at each epoch's end (strategy 'epoch'); 'no' never (nor at the end)."""
    if config.eval_strategy == "epoch":
        return end_of_epoch
    if config.eval_strategy == "no" or end_of_epoch:
        return False
    return config.eval_steps > 0 and step % config.eval_steps == 0


def _finish(run: _Run, global_step: int, train_report: TokenizationReport) -> dict[str, float]:
    """Final evaluation, then the model saved by the main process; returns the evaluation metrics."""
    accelerator, config = run.accelerator, run.config
    eval_metrics: dict[str, float] = {}
    if run.eval_loader is not None and config.eval_strategy != "no":
        eval_metrics = evaluate(run.model, run.eval_loader, accelerator)
        accelerator.log({f"eval/{k}": v for k, v in eval_metrics.items()}, step=global_step)
        shown = (f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in eval_metrics.items())
        accelerator.print("eval: " + ", ".join(shown))
    accelerator.wait_for_everyone()
    # Every rank takes part in gathering a sharded model (FSDP, ZeRO-3); the main one keeps the tensors.
    state = full_state_dict(run.model) if run.sharded else accelerator.get_state_dict(run.model)
    if accelerator.is_main_process:
        save_reward_model(
            accelerator.unwrap_model(run.model),
            run.tokenizer,
            config.output_dir,
            {
                "rmguard_version": __version__,
                "base_model_name_or_path": config.model_name_or_path,
                "num_hidden_layers": config.num_hidden_layers,
                "objective": config.objective,
                "regularizer": config.regularizer,
                "global_step": global_step,
                "eval_metrics": eval_metrics,
                "train_pairs": train_report.pairs,
                "train_prompts_truncated": train_report.prompt_truncated,
                "train_pairs_dropped": len(train_report.dropped_rows),
            },
            state_dict=state,
        )
        atomic_write_json(Path(config.output_dir) / "train_config.json", config.to_dict())
        accelerator.print(f"saved reward model to {config.output_dir}")
    accelerator.wait_for_everyone()  # no rank tears the process group down while the main one still saves
    accelerator.end_training()
    return eval_metrics
