"""What a run trains, decided once: the config's objective, regularizer and head → one frozen description.

:func:`describe` is the one place that reads the objective settings together (``TrainConfig.validate``
returns its answer); the model builder, the collator and the loss read the :class:`RunSpec` and decide
nothing again. An objective's registry entry says what it reads (``Objective.reads``); from that the
description derives the model kind, the extra head and what each batch carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Literal

from rmguard.data.augmentation import PAIR_AUGMENTATIONS
from rmguard.errors import ConfigError
from rmguard.training import objectives
from rmguard.training.objectives import (
    CHOSEN_LOGPS,
    GRM_REGULARIZERS,
    LATENT,
    LENGTH_HEAD,
    OBJECTIVE_PRESETS,
    PAIR_FIELDS,
    REFERENCE_LOGPS,
    REJECTED_LOGPS,
    REWARD_OBJECTIVES,
)

if TYPE_CHECKING:
    from rmguard.training.config import TrainConfig

# The model outputs an objective may read that need a head of their own beside the reward head.
EXTRA_HEADS = {LENGTH_HEAD: "length", LATENT: "latent"}


@dataclass(frozen=True)
class BatchNeeds:
    """What the collator puts in a batch beyond tokens, reward positions and margins."""

    logps: Literal["none", "chosen", "both"] = "none"  # summed response log-probs S(y), of which responses
    reference_logps: bool = False  # GRM-DPO's S_ref(y_c), S_ref(y_r)
    fields: tuple[str, ...] = ()  # registered per-pair fields (objectives.PAIR_FIELDS), by name


REWARDS_ONLY = BatchNeeds()  # an evaluation batch: tokens, reward positions and margins


@dataclass(frozen=True)
class RunSpec:
    """One run's training decisions.

    ``objective`` is a REWARD_OBJECTIVES name (a preset resolved), ``regularizer`` a GRM_REGULARIZERS name
    or None; ``kind`` 'standard' (a ``*ForSequenceClassification``) or 'grm' (a causal LM that keeps its
    LM head); ``extra_head`` 'length' (ODIN), 'latent' (InfoRM) or None; ``settings`` every setting by name
    (TrainConfig's fields and the registered objectives' own hyperparameters), as the losses read them.
    """

    objective: str
    regularizer: str | None
    kind: Literal["standard", "grm"]
    head_type: str
    extra_head: str | None
    batch: BatchNeeds
    settings: SimpleNamespace

    @property
    def reward_objective(self) -> objectives.Objective:
        return REWARD_OBJECTIVES[self.objective]

    @property
    def regularizer_objective(self) -> objectives.Objective | None:
        return None if self.regularizer is None else GRM_REGULARIZERS[self.regularizer]

    @property
    def trains_lm_head(self) -> bool:
        """Whether the kept LM head is in the loss's graph (a regularizer reads log-probs)."""
        return self.batch.logps != "none"


def describe(config: TrainConfig) -> RunSpec:
    """The run ``config`` asks for; one line naming the setting when the combination cannot be trained."""
    preset = OBJECTIVE_PRESETS.get(config.objective)
    name = preset.objective if preset else config.objective
    objective = REWARD_OBJECTIVES.lookup(name, OBJECTIVE_PRESETS)
    regularizer = config.grm_regularizer or (preset.regularizer if preset else "none")
    regularizer = None if regularizer == "none" else regularizer
    reads = set(objective.reads)
    if regularizer is not None:
        entry = GRM_REGULARIZERS.lookup(regularizer, ("none",))
        reads |= entry.reads or {CHOSEN_LOGPS, REJECTED_LOGPS}
    if config.margin is not None and not objective.takes_margin:
        raise ConfigError(f"objective '{config.objective}' takes no margin")
    if PAIR_AUGMENTATIONS[config.pair_augmentation].ties and not objective.takes_ties:
        takers = ", ".join(name for name, entry in REWARD_OBJECTIVES.items() if entry.takes_ties)
        raise ConfigError(
            f"pair_augmentation '{config.pair_augmentation}' makes tie pairs, which objective "
            f"'{config.objective}' does not take; use {takers}"
        )
    if config.pair_augmentation != "none" and regularizer is not None:
        raise ConfigError(
            f"pair_augmentation '{config.pair_augmentation}' puts responses under other prompts, which a GRM "
            "regularizer would train the language-model head on; use it without grm_regularizer"
        )
    heads = [EXTRA_HEADS[read] for read in sorted(reads) if read in EXTRA_HEADS]
    head_type = config.head_type or ("mlp" if regularizer else "linear")
    kind = "grm" if regularizer is not None or head_type == "mlp" else "standard"
    if heads and kind == "grm":
        raise ConfigError(
            f"objective {config.objective} trains a standard reward model (linear score head): no "
            "grm_regularizer, no mlp head_type"
        )
    if heads == ["latent"] and config.use_peft:
        raise ConfigError(
            "objective inform: use_peft is not supported (the saved score holds the latent head's product)"
        )
    unknown = sorted(reads - {CHOSEN_LOGPS, REJECTED_LOGPS, REFERENCE_LOGPS, *EXTRA_HEADS, *PAIR_FIELDS})
    if unknown or len(heads) > 1:  # a registered entry's bug, not the user's
        raise ValueError(f"objective {config.objective} reads {unknown or heads}: unknown or not combinable")
    logps = "none"
    if REJECTED_LOGPS in reads:
        logps = "both"
    elif CHOSEN_LOGPS in reads:
        logps = "chosen"
    batch = BatchNeeds(logps, REFERENCE_LOGPS in reads, tuple(sorted(reads & set(PAIR_FIELDS))))
    settings = SimpleNamespace(**config.to_dict())
    return RunSpec(name, regularizer, kind, head_type, heads[0] if heads else None, batch, settings)
