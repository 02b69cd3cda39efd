"""Reward-model training with Accelerate: ``train(config)`` is everything ``rmguard train`` does.

The loop is plain so that it can be read top-down: load pairs → tokenize → batches → model → rewards
(and log-probs) → objective → loss → AdamW step. ``accelerate launch`` runs the same code data-parallel
(DDP, FSDP, DeepSpeed). Checkpoints hold model, optimizer, scheduler, RNG states and the step, so a run
resumed after a kill continues exactly where the checkpoint left it.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.tracking import GeneralTracker
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm
from transformers import get_scheduler

from rmguard import __version__
from rmguard.data import load_pairs
from rmguard.errors import ConfigError, TrainingError
from rmguard.eval.metrics import pair_metrics
from rmguard.fileio import atomic_write_json
from rmguard.training.attention import enable_packed_attention
from rmguard.training.batching import TokenBudgetBatchSampler, epoch_generator
from rmguard.training.collate import MODEL_INPUT_KEYS, PaddedPairCollator
from rmguard.training.config import TrainConfig
from rmguard.training.features import PairFeatures, TokenizationReport, tokenize_pairs
from rmguard.training.loss import RewardLoss
from rmguard.training.modeling import (
    RewardModel,
    add_lora,
    build_reward_model,
    is_reward_checkpoint,
    load_reward_model,
    save_reward_model,
)
from rmguard.training.packing import PackedPairCollator
from rmguard.training.pretrained import resolve_model_path

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"


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


class EpochShuffleSampler(Sampler[int]):
    """A fresh permutation per epoch from (seed, epoch) alone, so a resumed run replays the same order."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        yield from torch.randperm(self.size, generator=epoch_generator(self.seed, self.epoch)).tolist()


class CSVTracker(GeneralTracker):
    """Accelerate tracker writing ``step,metric,value`` rows to ``<output_dir>/logs/metrics.csv``."""

    name = "csv"
    requires_logging_directory = True
    main_process_only = True

    def __init__(self, logging_dir: str | Path):
        super().__init__()
        self.path = Path(logging_dir) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.write_text("step,metric,value\n")

    @property
    def tracker(self) -> Path:
        return self.path

    def store_init_configuration(self, values: dict[str, Any]) -> None:
        atomic_write_json(self.path.parent / "config.json", values)

    def log(self, values: dict[str, Any], step: int | None = None, **kwargs: Any) -> None:
        with self.path.open("a") as handle:
            for name, value in values.items():
                handle.write(f"{step},{name},{value}\n")


# ----------------------------------------------------------------------------------------------- setup


def _make_accelerator(config: TrainConfig) -> Accelerator:
    loggers: list[Any] = []
    if "csv" in config.report_to:
        loggers.append(CSVTracker(Path(config.output_dir) / "logs"))
    if "tensorboard" in config.report_to:
        loggers.append("tensorboard")
    # Accelerate treats a torchrun launch without GPUs as one process unless told to use the CPU.
    multi_process_on_cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    return Accelerator(
        cpu=config.use_cpu or multi_process_on_cpu,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        log_with=loggers or None,
        project_dir=str(Path(config.output_dir) / "logs"),
    )


def _load_model(config: TrainConfig) -> tuple[RewardModel, Any]:
    path = resolve_model_path(config.model_name_or_path)
    if is_reward_checkpoint(path):
        model, tokenizer = load_reward_model(path, head_type=config.head_type)
        if (model.kind == "grm") != config.is_grm:
            raise ConfigError(
                f"{path} is a {model.kind} reward model, but the config asks for "
                f"{'a GRM' if config.is_grm else 'a standard'} one"
            )
        return model, tokenizer
    kind = "grm" if config.is_grm else "standard"
    model, tokenizer = build_reward_model(
        path, kind, config.resolved_head_type, config.num_hidden_layers, config.chat_template
    )
    if model.kind == "grm":
        needs_lm_head = config.regularizer != "none"
        model.transformer.get_output_embeddings().weight.requires_grad_(
            config.train_lm_head and needs_lm_head
        )
    if config.use_peft:
        add_lora(model, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_target_modules)
    if config.gradient_checkpointing:
        model.transformer.gradient_checkpointing_enable()
    return model, tokenizer


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


PairCollator = PackedPairCollator | PaddedPairCollator


def make_pair_collator(
    config: TrainConfig,
    model: RewardModel,
    pad_token_id: int,
    with_logps: bool,
    log: Callable[[str], None] = print,
) -> PairCollator:
    """The packed collator (with the model switched to its packed attention) where the config asks for
    packing and it is exact for this model, else padded."""
    if config.packing:
        exact, reason = enable_packed_attention(model.transformer)
        if exact:
            return PackedPairCollator(with_logps=with_logps)
        log(f"packing off: {reason}; using padded batches")
    return PaddedPairCollator(pad_token_id, with_logps=with_logps)


def pair_tokens(feature: PairFeatures, packed: bool) -> int:
    """Tokens a pair costs the model: [prompt|chosen|rejected] packed, or two padded prompt+response rows."""
    if packed:
        return len(feature.prompt_ids) + len(feature.chosen_ids) + len(feature.rejected_ids)
    return 2 * (len(feature.prompt_ids) + max(len(feature.chosen_ids), len(feature.rejected_ids)))


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: batch[key] for key in MODEL_INPUT_KEYS if key in batch}


@torch.no_grad()
def _precompute_reference_logps(
    model: RewardModel, features: list[PairFeatures], collator: PairCollator, batch_size: int
) -> None:
    """GRM-DPO reference log-probs of the starting model, computed once and stored on the features."""
    was_training = model.training
    model.eval()
    for start in range(0, len(features), batch_size):
        chunk = features[start : start + batch_size]
        batch = collator(chunk)
        logps = model(**model_inputs(batch)).logps
        for i, feature in enumerate(chunk):
            feature.ref_chosen_logp = logps[i].item()
            feature.ref_rejected_logp = logps[len(chunk) + i].item()
    model.train(was_training)


def _live_reference(model: RewardModel) -> Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """A frozen copy of the starting model that adds reference log-probs to each batch."""
    reference = copy.deepcopy(model).eval().requires_grad_(False)

    def add_reference(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            logps = reference(**model_inputs(batch)).logps
        half = len(logps) // 2
        return {**batch, "ref_chosen_logps": logps[:half], "ref_rejected_logps": logps[half:]}

    return add_reference


# ----------------------------------------------------------------------------------------------- checkpoints


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    root = Path(output_dir) / "checkpoints"
    found = (
        [p for p in root.glob(f"{CHECKPOINT_PREFIX}*") if (p / STATE_FILE).is_file()] if root.is_dir() else []
    )
    return sorted(found, key=lambda p: int(re.sub(r"\D", "", p.name) or 0))


def _save_checkpoint(accelerator: Accelerator, config: TrainConfig, step: int, epoch: int) -> None:
    """Every rank writes into one partial folder; the main rank renames it into place when all are done."""
    target = Path(config.output_dir) / "checkpoints" / f"{CHECKPOINT_PREFIX}{step}"
    partial = target.with_name(f".{target.name}.partial")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (partial / STATE_FILE).write_text(json.dumps({"global_step": step, "epoch": epoch}))
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        for old in list_checkpoints(config.output_dir)[: -config.save_total_limit]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _resume_path(config: TrainConfig) -> Path | None:
    spec = config.resume_from_checkpoint
    if not spec:
        return None
    if spec == "latest":
        found = list_checkpoints(config.output_dir)
        return found[-1] if found else None
    path = Path(spec)
    if not (path / STATE_FILE).is_file():
        raise ConfigError(f"{spec}: not an rmguard checkpoint (no {STATE_FILE})")
    return path


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
        c, r, n = accelerator.gather_for_metrics(
            (output.rewards[:half], output.rewards[half:], output.hidden.norm(dim=-1))
        )
        chosen.append(c), rejected.append(r), norms.append(n)
    model.train(was_training)
    return pair_metrics(torch.cat(chosen), torch.cat(rejected), torch.cat(norms))


def train(config: TrainConfig, callbacks: list[Callable[[TrainState], None]] | None = None) -> TrainResult:
    """Train a reward model as ``config`` says; returns where it went and the final evaluation."""
    config.validate()
    accelerator = _make_accelerator(config)
    log = accelerator.print
    set_seed(config.seed)
    model, tokenizer = _load_model(config)
    train_features, train_report = _load_features(
        config, config.train_file, config.train_split, tokenizer, log
    )
    eval_features = None
    if config.eval_file:
        eval_features, _ = _load_features(config, config.eval_file, config.eval_split, tokenizer, log)

    needs_logps = config.regularizer != "none"
    collator = make_pair_collator(config, model, tokenizer.pad_token_id, needs_logps, log)
    packed = isinstance(collator, PackedPairCollator)
    add_reference = None
    if config.regularizer == "dpo":
        if config.grm_reference == "precomputed":
            _precompute_reference_logps(model, train_features, collator, config.per_device_eval_batch_size)
        else:
            add_reference = _live_reference(model)

    budget_sampler = None
    if config.max_tokens_per_batch:
        budget_sampler = TokenBudgetBatchSampler(
            [pair_tokens(f, packed) for f in train_features],
            config.max_tokens_per_batch,
            config.seed,
            max_items=config.per_device_train_batch_size,
        )
        train_loader = DataLoader(train_features, batch_sampler=budget_sampler, collate_fn=collator)
    else:
        train_loader = DataLoader(
            train_features,
            batch_size=config.per_device_train_batch_size,
            sampler=EpochShuffleSampler(len(train_features), config.seed),
            collate_fn=collator,
            generator=torch.Generator().manual_seed(config.seed),
        )
    eval_loader = None
    if eval_features:
        eval_loader = DataLoader(
            eval_features,
            batch_size=config.per_device_eval_batch_size,
            collate_fn=make_pair_collator(config, model, tokenizer.pad_token_id, False, log=lambda _: None),
        )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable,
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_epsilon,
        weight_decay=config.weight_decay,
    )
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    if eval_loader is not None:
        eval_loader = accelerator.prepare(eval_loader)

    def epoch_steps(epoch: int) -> int:
        # Token-budget epochs differ in their number of batches; fixed-size ones do not.
        batches = (
            len(train_loader)
            if budget_sampler is None
            else math.ceil(budget_sampler.num_batches(epoch) / accelerator.num_processes)
        )
        return max(1, math.ceil(batches / config.gradient_accumulation_steps))

    whole_epochs = int(config.num_train_epochs)
    max_steps = (
        config.max_steps
        if config.max_steps > 0
        else (
            sum(epoch_steps(e) for e in range(whole_epochs))
            + math.ceil((config.num_train_epochs - whole_epochs) * epoch_steps(whole_epochs))
        )
    )
    # Stepped once per optimizer step on every rank (not prepared: Accelerate would step it once per process).
    scheduler = get_scheduler(
        config.lr_scheduler_type,
        optimizer,
        num_warmup_steps=math.ceil(config.warmup_ratio * max_steps),
        num_training_steps=max_steps,
    )
    accelerator.register_for_checkpointing(scheduler)
    accelerator.init_trackers("rmguard", config={k: str(v) for k, v in config.to_dict().items()})

    global_step, start_epoch, skip_batches = 0, 0, 0
    resume = _resume_path(config)
    if resume is not None:
        accelerator.load_state(str(resume))
        state = json.loads((resume / STATE_FILE).read_text())
        global_step = state["global_step"]
        steps_left = global_step
        while steps_left >= epoch_steps(start_epoch):
            steps_left -= epoch_steps(start_epoch)
            start_epoch += 1
        skip_batches = steps_left * config.gradient_accumulation_steps
        log(f"resumed from {resume} at step {global_step}")

    loss_fn = RewardLoss(config)
    history: list[dict[str, float]] = []
    progress = tqdm(
        total=max_steps,
        initial=global_step,
        disable=config.disable_tqdm or not accelerator.is_main_process,
        desc=f"train {config.objective}",
        dynamic_ncols=True,
    )
    model.train()
    running: list[float] = []
    epoch = start_epoch
    while global_step < max_steps:
        train_loader.set_epoch(epoch)
        if (
            budget_sampler is not None
        ):  # under data parallelism Accelerate wraps it and may not forward set_epoch
            budget_sampler.set_epoch(epoch)
        loader = train_loader
        if skip_batches:
            loader = accelerator.skip_first_batches(train_loader, skip_batches)
            skip_batches = 0
        for batch in loader:
            with accelerator.accumulate(model):
                if add_reference is not None:
                    batch = add_reference(batch)
                output = model(**model_inputs(batch))
                loss, parts = loss_fn(output, batch)
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"step {global_step + 1}: the loss is {loss.item()} (not finite); "
                        "lower learning_rate or check the data"
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            running.append(loss.item())
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            global_step += 1
            progress.update(1)
            step_metrics: dict[str, float] = {}
            if global_step % config.logging_steps == 0 or global_step == max_steps:
                step_metrics = {
                    "train/loss": sum(running) / len(running),
                    "train/lr": scheduler.get_last_lr()[0],
                    **{f"train/{k}": v for k, v in parts.items()},
                }
                running.clear()
                progress.set_postfix(loss=f"{step_metrics['train/loss']:.4f}")
            if eval_loader is not None and config.eval_steps > 0 and global_step % config.eval_steps == 0:
                step_metrics.update(
                    {f"eval/{k}": v for k, v in evaluate(model, eval_loader, accelerator).items()}
                )
            if step_metrics:
                accelerator.log(step_metrics, step=global_step)
                history.append({"step": global_step, **step_metrics})
            if config.save_steps > 0 and global_step % config.save_steps == 0:
                _save_checkpoint(accelerator, config, global_step, epoch)
            for callback in callbacks or ():
                callback(TrainState(global_step, epoch, loss.item(), max_steps, step_metrics))
            if global_step >= max_steps:
                break
        epoch += 1
    progress.close()

    eval_metrics: dict[str, float] = {}
    if eval_loader is not None:
        eval_metrics = evaluate(model, eval_loader, accelerator)
        accelerator.log({f"eval/{k}": v for k, v in eval_metrics.items()}, step=global_step)
        log(
            "eval: "
            + ", ".join(
                f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in eval_metrics.items()
            )
        )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(model)
        save_reward_model(
            final,
            tokenizer,
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
        )
        atomic_write_json(Path(config.output_dir) / "train_config.json", config.to_dict())
        log(f"saved reward model to {config.output_dir}")
    accelerator.wait_for_everyone()  # no rank tears the process group down while the main one still saves
    accelerator.end_training()
    return TrainResult(config.output_dir, global_step, eval_metrics, train_report, history)


def load_checkpoint_weights(model: RewardModel, checkpoint: str | Path) -> int:
    """Load the model weights of a resumable checkpoint into ``model`` (built from the run's final output
    folder), strictly; returns the checkpoint's step. Reads the ``model.safetensors`` that
    ``Accelerator.save_state`` writes for single-process and DDP runs (FSDP/DeepSpeed shard differently)."""
    from safetensors.torch import load_file

    checkpoint = Path(checkpoint)
    weights = checkpoint / "model.safetensors"
    if not (checkpoint / STATE_FILE).is_file() or not weights.is_file():
        raise ConfigError(f"{checkpoint}: not an rmguard checkpoint with model.safetensors")
    try:
        model.load_state_dict(load_file(str(weights)), strict=True)
    except RuntimeError as error:
        raise ConfigError(
            f"{checkpoint}: weights do not match the final model's architecture: {error}"
        ) from None
    return int(json.loads((checkpoint / STATE_FILE).read_text())["global_step"])
