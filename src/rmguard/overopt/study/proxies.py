"""The study's proxies: rmguard reward models at full depth, trained by rmguard's trainer.

Every proxy is the whole backbone (all its layers, so its LM head is the real language model's) with the
top ``trainable_layers`` decoder layers, the final norm and the reward head trained, and the embeddings and
every layer below frozen. The frozen part's outputs are computed once per token context for the whole
study (:func:`frozen_pass`, the training feature ``reuse_frozen_outputs``) and saved, so each worker
process loads them and every fit and every scoring runs the trainable top only.

What each proxy reports besides its rewards and ‖h‖: the exact mean log-prob per token of the chosen
training responses under the model's own LM head (the tied input embeddings of a standard model, the LM
head of a GRM one), a log-softmax over the whole vocabulary (:func:`lm_logprobs`), before and after fitting.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rmguard.errors import ConfigError
from rmguard.fileio import atomic_write_bytes
from rmguard.training import frozen_prefix

FROZEN_FILE = "frozen-outputs.pt"
BACKBONE_FILE = "backbone.npz"  # the untrained model's ‖h‖ of every row, log-probs of training rows
LOGIT_ROWS = 256  # hidden states projected on the vocabulary at once (256 × 49,152 fp32 = 50 MB)


def lm_head_weight(model: Any) -> Tensor:
    """The [V, H] matrix of the model's own LM head: a GRM model's, or a standard model's tied input
    embeddings (a standard checkpoint keeps no separate LM head)."""
    output = model.transformer.get_output_embeddings()
    if output is not None:
        return output.weight
    if getattr(model.config.get_text_config(), "tie_word_embeddings", False):
        return model.transformer.get_input_embeddings().weight
    raise ConfigError(
        f"{model.config.model_type}: a standard reward model on an untied backbone has no LM head to "
        "measure log-probs with"
    )


@torch.inference_mode()
def lm_logprobs(
    model: Any, tokenizer: Any, prompts: Sequence[Any], responses: Sequence[Any], batch_size: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """(summed log p of each response's tokens given its prompt, its token count): the final hidden state
    before each response token through the LM head, log-softmax over the whole vocabulary (exact)."""
    from rmguard.data.records import ScoredResponse
    from rmguard.training.collate import ResponseCollator
    from rmguard.training.tokenization import tokenize_responses

    items = [ScoredResponse(p, r, "<memory>", i + 1) for i, (p, r) in enumerate(zip(prompts, responses))]
    features = tokenize_responses(items, tokenizer)
    collate = ResponseCollator(tokenizer.pad_token_id, with_logps=True)
    weight = lm_head_weight(model)
    sums, counts = np.zeros(len(features)), np.zeros(len(features))
    for start in range(0, len(features), batch_size):
        batch = collate(features[start : start + batch_size])
        # every predicting position read as if it were a reward token: the forward's own last-layer rows
        hidden = model(
            batch["input_ids"], batch["attention_mask"], batch["position_ids"], batch["logp_index"]
        ).hidden
        token_logps = torch.cat(
            [
                torch.log_softmax(rows.float() @ weight.float().T, dim=-1)
                .gather(1, target[:, None])
                .squeeze(1)
                for rows, target in zip(hidden.split(LOGIT_ROWS), batch["logp_target"].split(LOGIT_ROWS))
            ]
        )
        seq = batch["logp_seq"].numpy() + start
        np.add.at(sums, seq, token_logps.double().numpy())
        np.add.at(counts, seq, 1)
    return sums, counts


def frozen_layers(model_path: str, trainable_layers: int) -> int:
    """How many bottom layers a proxy on ``model_path`` keeps frozen."""
    from transformers import AutoConfig

    layers = AutoConfig.from_pretrained(model_path).get_text_config().num_hidden_layers
    if not 1 <= trainable_layers < layers:
        raise ConfigError(
            f"trainable_layers must be in 1..{layers - 1} for {model_path}, got {trainable_layers}"
        )
    return layers - trainable_layers


def untrained_model(model_path: str, trainable_layers: int, reuse: bool = True) -> tuple[Any, Any]:
    """The proxies' starting point (head aside; built with the LM head, which every proxy's log-probs are
    measured against), frozen entirely; with ``reuse``, reading the frozen part's outputs from (and adding
    them to) the process's store."""
    from rmguard.training.modeling import build_reward_model

    model, tokenizer = build_reward_model(model_path, "grm", "linear")
    model.requires_grad_(False).eval()
    if reuse:
        frozen_prefix.attach(model, frozen_layers(model_path, trainable_layers))
    return model, tokenizer


def frozen_pass(
    model_path: str,
    trainable_layers: int,
    table: Any,
    folder: Path,
    batch_size: int,
    progress: Any = None,
    keep: bool = True,
) -> dict[str, np.ndarray]:
    """Run the frozen part once over every response of the study (with ``keep``, saved as
    ``folder/frozen-outputs.pt`` for the workers) and return the untrained model's ‖h‖ of every row and the log-probs of every
    training-prompt row (``logp_sum``, ``logp_tokens``; NaN elsewhere). Resumes from its files."""
    from rmguard.scoring import RewardScorer

    if (folder / BACKBONE_FILE).is_file() and (not keep or (folder / FROZEN_FILE).is_file()):
        return dict(np.load(folder / BACKBONE_FILE))
    frozen_prefix.forget()
    model, tokenizer = untrained_model(model_path, trainable_layers, keep)
    store = model.frozen_outputs
    scorer = RewardScorer((model, tokenizer), batch_size=batch_size)
    norms = np.empty(len(table.prompts))
    step = max(batch_size * 8, 1)
    for start in range(0, len(table.prompts), step):  # in slices, so that progress can show responses done
        end = min(start + step, len(table.prompts))
        norms[start:end] = scorer.score_with_hidden(table.prompts[start:end], table.responses[start:end])[
            1
        ].norm(dim=1)
        if progress:
            progress(end, len(table.prompts))
    rows = np.array(table.token_rows, dtype=int)
    sums, counts = np.full(len(norms), np.nan), np.full(len(norms), np.nan)
    sums[rows], counts[rows] = lm_logprobs(
        model, tokenizer, [table.prompts[i] for i in rows], [table.responses[i] for i in rows]
    )
    folder.mkdir(parents=True, exist_ok=True)
    if keep:
        frozen_prefix.save(store, folder / FROZEN_FILE)
    frozen_prefix.forget()
    arrays = {"norms": norms, "logp_sum": sums, "logp_tokens": counts}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(folder / BACKBONE_FILE, buffer.getvalue())
    return arrays


def training_values(config: Any) -> dict[str, Any]:
    """The TrainConfig values every proxy shares (its objective, data, seed and folder are its own)."""
    from rmguard.training.pretrained import resolve_model_path

    return {
        "model_name_or_path": resolve_model_path(config.proxy_model or config.policy),
        "freeze_embeddings": True,
        "reuse_frozen_outputs": config.reuse_frozen_outputs,
        "mixed_precision": config.mixed_precision,
        "max_length": config.max_length,
        "num_train_epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "per_device_train_batch_size": config.batch_size,
        "report_to": ["none"],
        "disable_tqdm": True,
        "logging_steps": 1000,
    }


def proxy_model(config: Any) -> dict[str, Any]:
    """report.json's ``headline.proxy_model``: the backbone's layers, how many are trained, each head."""
    from rmguard.overopt.study.design import BASELINE, OBJECTIVES
    from rmguard.training.objectives import REWARD_OBJECTIVES
    from rmguard.training.pretrained import resolve_model_path

    model = resolve_model_path(config.proxy_model or config.policy)
    frozen = frozen_layers(model, config.trainable_layers)
    heads = {}
    for name in config.objectives:
        if name not in OBJECTIVES:  # LENGTH_CALIBRATED: no model of its own
            heads[name] = f"{BASELINE}'s, its rewards length-calibrated"
            continue
        settings = OBJECTIVES[name]
        heads[name] = "linear with bias (GRM's ValueHead)" if settings["objective"] == "grm" else "linear"
        if settings["objective"] == "odin":
            heads[name] += " (+ ODIN's length head, trained only)"
        if settings["objective"] == "inform":
            d = REWARD_OBJECTIVES["inform"].hyperparameters["inform_latent_dim"].default
            d = settings.get("inform_latent_dim", d)
            heads[name] += (
                f" (InfoRM's Linear(H, 2·{d}) encoder and Linear({d}, 1) decoder; z = μ when scoring)"
            )
    return {
        "layers": frozen + config.trainable_layers,
        "trainable_layers": config.trainable_layers,
        "heads": heads,
    }
