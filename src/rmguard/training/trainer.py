"""Reward-model training with Accelerate: ``train(config)`` is everything ``rmguard train`` does.

The loop is plain so that it can be read top-down: load pairs → tokenize → batches → model → rewards
(and log-probs) → objective → loss → AdamW step. ``accelerate launch`` runs the same code data-parallel
(DDP, FSDP, DeepSpeed). Checkpoints hold model, optimizer, scheduler, RNG states and the step, so a run
resumed after a kill continues exactly where the checkpoint left it.
"""

from __future__ import annotations

import contextlib
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
from rmguard.errors import TrainingError
from rmguard.fileio import atomic_write_json, check_outputs, output_lock
from rmguard.normalization import record_statistics
from rmguard.optional import require
from rmguard.text_rule import TEXT_RULE_KEY, trained_rule
from rmguard.training import loaders
from rmguard.training.batching import TokenBudgetBatchSampler
from rmguard.training.checkpoints import checkpoint_step, load_sharded_state, resume_path, save_checkpoint
from rmguard.training.collate import model_inputs
from rmguard.training.config import TrainConfig
from rmguard.training.loss import RewardLoss, pair_metrics
from rmguard.training.model_setup import load_model
from rmguard.training.modeling import RewardModel, save_reward_model
from rmguard.training.optimizers import make_optimizer
from rmguard.training.packing import PairCollator, make_pair_collator
from rmguard.training.reference import live_reference, precompute_reference_logps
from rmguard.training.run import RunSpec
from rmguard.training.sharding import (
    ShardingPlan,
    accelerate_fsdp_settings,
    full_state_dict,
    shard_model,
    sharding_plan,
)
from rmguard.training.tokenization import PairFeatures, TokenizationReport
from rmguard.training.tracking import CSVTracker, print_metrics


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
    chosen, rejected = torch.cat(chosen), torch.cat(rejected)
    record_statistics(accelerator.unwrap_model(model).config, chosen, rejected)  # saved with the model
    return pair_metrics(chosen, rejected, torch.cat(norms))


def train(config: TrainConfig, callbacks: list[Callable[[TrainState], None]] | None = None) -> TrainResult:
    """Train a reward model as ``config`` says; returns where it went and the final evaluation.

    The main process holds an exclusive lock on ``output_dir`` for the whole run: a second run writing the
    same folder is refused instead of racing for its checkpoints."""
    spec = config.validate()
    # The launcher's RANK (torchrun, accelerate launch) says which process is the main one before any
    # process group exists; the lock must be taken before the accelerator creates the output folder.
    main_process = int(os.environ.get("RANK", "0")) == 0
    if main_process:
        inputs = [config.train_file, config.eval_file, config.model_name_or_path]
        check_outputs([config.output_dir], [path for path in inputs if path], folders=True)
    lock = output_lock(config.output_dir) if main_process else contextlib.nullcontext()
    with lock:
        return _train(config, spec, _make_accelerator(config), callbacks)


@dataclass(frozen=True, kw_only=True)
class _Run:
    """What the step loop works with once everything is built and prepared."""

    config: TrainConfig
    spec: RunSpec  # what is trained (the config's description)
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
    sharded: bool  # FSDP2 applied by rmguard (sharding.py): model and optimizer saved apart
    max_steps: int
    history: list[dict[str, float]] = field(default_factory=list)

    def epoch_steps(self, epoch: int) -> int:
        return _epoch_steps(self.config, self.train_loader, self.budget_sampler, self.accelerator, epoch)


def _epoch_steps(
    config: TrainConfig,
    loader: DataLoader,
    budget_sampler: TokenBudgetBatchSampler | None,
    accelerator: Accelerator,
    epoch: int,
) -> int:
    """Optimizer steps in ``epoch``: token-budget epochs differ in their number of batches."""
    batches = (
        len(loader)
        if budget_sampler is None
        else math.ceil(budget_sampler.num_batches(epoch) / accelerator.num_processes)
    )
    return max(1, math.ceil(batches / config.gradient_accumulation_steps))


def _planned_steps(
    config: TrainConfig,
    loader: DataLoader,
    budget_sampler: TokenBudgetBatchSampler | None,
    accelerator: Accelerator,
) -> int:
    if config.max_steps > 0:
        return config.max_steps
    whole = int(config.num_train_epochs)
    fraction = config.num_train_epochs - whole

    def steps(epoch: int) -> int:
        return _epoch_steps(config, loader, budget_sampler, accelerator, epoch)

    return sum(steps(e) for e in range(whole)) + math.ceil(fraction * steps(whole))


def _train(
    config: TrainConfig,
    spec: RunSpec,
    accelerator: Accelerator,
    callbacks: list[Callable[[TrainState], None]] | None,
) -> TrainResult:
    set_seed(config.seed)
    model, tokenizer, packed = load_model(config, accelerator.print, spec)
    run, train_report = _build_run(config, spec, accelerator, model, tokenizer, packed)
    global_step, start_epoch, skip_batches = _resume(run)
    global_step = _step_loop(run, global_step, start_epoch, skip_batches, callbacks or [])
    eval_metrics = _finish(run, global_step, train_report)
    return TrainResult(config.output_dir, global_step, eval_metrics, train_report, run.history)


def _reference(
    config: TrainConfig,
    spec: RunSpec,
    model: RewardModel,
    features: list[PairFeatures],
    collator: PairCollator,
    plan: ShardingPlan | None,
) -> tuple[PairCollator, Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None]:
    """The collator (with precomputed reference log-probs) and the per-batch reference (a live frozen
    copy), where the run reads reference log-probs."""
    if not spec.batch.reference_logps:
        return collator, None
    if config.grm_reference == "model":
        return collator, live_reference(model, plan, config.mixed_precision)
    reference = precompute_reference_logps(model, features, collator, config.per_device_eval_batch_size)
    return dataclasses.replace(collator, reference=reference), None


def _build_run(
    config: TrainConfig,
    spec: RunSpec,
    accelerator: Accelerator,
    model: RewardModel,
    tokenizer: Any,
    packed: bool,
) -> tuple[_Run, TokenizationReport]:
    """Features → loaders → optimizer and schedule, prepared by Accelerate."""
    log = accelerator.print
    train_features, train_report = loaders.load_features(
        config, config.train_file, config.train_split, tokenizer, log, config.pair_augmentation
    )
    plan = _sharding(config, accelerator)
    collator = make_pair_collator(packed, tokenizer.pad_token_id, spec.batch)
    collator, add_reference = _reference(config, spec, model, train_features, collator, plan)
    train_loader, budget_sampler = loaders.train_loader(config, train_features, collator)
    eval_loader = loaders.eval_loader(config, packed, tokenizer, log)
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
    max_steps = _planned_steps(config, train_loader, budget_sampler, accelerator)
    # Stepped once per optimizer step on every rank (not prepared: Accelerate would step it once per process).
    scheduler = get_scheduler(
        config.lr_scheduler_type,
        optimizer,
        num_warmup_steps=config.warmup_steps_for(max_steps),
        num_training_steps=max_steps,
    )
    accelerator.register_for_checkpointing(scheduler)
    accelerator.init_trackers(
        config.run_name or "rmguard",
        config={k: str(v) for k, v in config.to_dict().items()},
        init_kwargs={"wandb": {"name": config.run_name}} if config.run_name else {},
    )
    run = _Run(
        config=config,
        spec=spec,
        accelerator=accelerator,
        model=model,
        tokenizer=tokenizer,
        optimizer=optimizer,
        scheduler=scheduler,
        train_loader=train_loader,
        eval_loader=eval_loader,
        budget_sampler=budget_sampler,
        add_reference=add_reference,
        trainable=trainable,
        sharded=plan is not None,
        max_steps=max_steps,
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
    loss_fn = RewardLoss(run.config, spec=run.spec)
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
    print_metrics(step, run.max_steps, metrics, run.accelerator.is_main_process)


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
        print_metrics(step, run.max_steps, metrics, run.accelerator.is_main_process)
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
                "regularizer": run.spec.regularizer or "none",
                "global_step": global_step,
                "eval_metrics": eval_metrics,
                "train_pairs": train_report.pairs,
                "train_prompts_truncated": train_report.prompt_truncated,
                "train_pairs_dropped": len(train_report.dropped_rows),
                TEXT_RULE_KEY: trained_rule(train_report.conversational),
            },
            state_dict=state,
        )
        atomic_write_json(Path(config.output_dir) / "train_config.json", config.to_dict())
        accelerator.print(f"saved reward model to {config.output_dir}")
    accelerator.wait_for_everyone()  # no rank tears the process group down while the main one still saves
    accelerator.end_training()
    return eval_metrics
