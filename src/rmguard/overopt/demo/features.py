"""Backbone features computed once per response, for the study's cached-feature proxies (``cached.py``).

A frozen backbone (the study's proxy model cut to ``rm_layers``) is run once over every response; what a
proxy needs from it is kept:

* the **reward-token state** f(x, y): the final hidden state (after the final norm) at the last real
  token, read by rmguard's own scorer (:class:`rmguard.scoring.RewardScorer`), so a proxy whose adapter is
  the identity is exactly rmguard's reward model on the frozen backbone with the same head;
* for GRM's regularizer, on the responses that can be training responses: the state f_t at every position
  that predicts a response token y_t, and the logits' **top-K support** there. GRM's SFT regularizer reads
  S(y) = Σ_t log softmax(E h_t)[y_t] through the backbone's frozen LM head E; over the full 49k-token
  vocabulary at every token and every step it would cost a CPU minute per proxy, so the cached proxy
  computes

      log p̃(y_t) = e_{y_t}·h_t − log( Σ_{v ∈ V_t} exp(e_v·h_t) + T_t ),   V_t = {y_t} ∪ top-K_{v≠y_t}(e_v·f_t),
      T_t = Σ_{v ∉ V_t} exp(e_v·f_t)

  i.e. the exact log-softmax over the target and the K tokens most likely under the untrained backbone,
  with the rest of the vocabulary's mass frozen at its untrained value. At h_t = f_t (adapter at its
  identity start) it equals the exact log-prob; away from it the tail is an approximation.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from rmguard.data.records import ScoredResponse, Text
from rmguard.fileio import atomic_write_bytes

TOP_K = 32  # vocabulary rows besides the target in GRM's cached log-softmax


def _fingerprint(
    settings: dict[str, Any], prompts: list[Text], responses: list[Text], token_rows: list[int]
) -> str:
    digest = hashlib.sha256(json.dumps([settings, prompts, responses, token_rows], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def reward_token_states(
    model: Any, prompts: list[Text], responses: list[Text], batch_size: int
) -> np.ndarray:
    """[R, H] final hidden states at the reward token, by rmguard's scorer (the reward-model path)."""
    from rmguard.scoring import RewardScorer

    scorer = RewardScorer(model, batch_size=batch_size)
    return scorer.score_with_hidden(prompts, responses)[1].numpy()


def response_token_counts(tokenizer: Any, prompts: list[Text], responses: list[Text]) -> np.ndarray:
    """[R] each response's length in tokens, by the reward model's own tokenization (ODIN's ℓ)."""
    from rmguard.training.tokenization import tokenize_responses

    items = [ScoredResponse(p, r, "<memory>", i + 1) for i, (p, r) in enumerate(zip(prompts, responses))]
    return np.array(
        [len(f.response_ids) for f in tokenize_responses(items, tokenizer, None)], dtype=np.float32
    )


def token_states(
    model: Any, prompts: list[Text], responses: list[Text], batch_size: int, top_k: int = TOP_K
) -> dict[str, np.ndarray]:
    """Per response-token arrays for GRM's cached regularizer (module docstring), in response order.

    ``offsets`` [R + 1] (response r's tokens are rows offsets[r]:offsets[r+1]), ``states`` [T, H] f_t,
    ``support`` [T, K + 1] vocabulary ids (column 0 the target), ``tail`` [T] log T_t, ``logp`` [T] the
    exact log-prob at f_t.
    """
    import torch

    from rmguard.training.collate import pad_sequences
    from rmguard.training.tokenization import tokenize_responses

    reward_model, tokenizer = model
    items = [ScoredResponse(p, r, "<memory>", i + 1) for i, (p, r) in enumerate(zip(prompts, responses))]
    features = tokenize_responses(items, tokenizer, None)
    embed = reward_model.transformer.get_output_embeddings()
    parts: dict[str, list[np.ndarray]] = {"states": [], "support": [], "tail": [], "logp": []}
    counts = []
    with torch.inference_mode():
        for start in range(0, len(features), batch_size):
            chunk = features[start : start + batch_size]
            batch = pad_sequences(
                [f.prompt_ids + f.response_ids for f in chunk],
                [len(f.prompt_ids) for f in chunk],
                tokenizer.pad_token_id,
                with_logps=True,
            )
            hidden = reward_model.backbone(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"],
                use_cache=False,
            ).last_hidden_state
            states = hidden[batch["logp_index"][:, 0], batch["logp_index"][:, 1]].float()
            logits = embed(states).float()
            target = batch["logp_target"]
            full = torch.logsumexp(logits, dim=1)
            own = logits.gather(1, target[:, None])
            others = logits.scatter(1, target[:, None], -torch.inf)
            top = others.topk(top_k, dim=1).indices
            support = torch.cat([target[:, None], top], dim=1)
            tail = torch.logsumexp(logits.scatter(1, support, -torch.inf), dim=1)
            parts["states"].append(states.numpy())
            parts["support"].append(support.numpy())
            parts["tail"].append(tail.numpy())
            parts["logp"].append((own[:, 0] - full).numpy())
            counts += np.bincount(batch["logp_seq"].numpy(), minlength=len(chunk)).tolist()
    out = {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in parts.items()}
    out["offsets"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    out["lm_head"] = embed.weight.detach().float().numpy()
    return out


def backbone_features(
    model_path: str,
    layers: int | None,
    prompts: list[Text],
    responses: list[Text],
    token_rows: list[int],
    cache: Path,
    batch_size: int = 64,
) -> dict[str, np.ndarray]:
    """Every response's reward-token state, and GRM's token arrays for ``token_rows``; cached in ``cache``
    (an .npz, recomputed when the backbone, the texts or the rows differ)."""
    settings = {"model": model_path, "layers": layers, "top_k": TOP_K, "fields": 2}
    key = _fingerprint(settings, prompts, responses, token_rows)
    if cache.is_file():
        saved = np.load(cache)
        if str(saved["key"]) == key:
            return {k: saved[k] for k in saved.files if k != "key"}
    import torch

    from rmguard.training.modeling import build_reward_model

    torch.manual_seed(0)  # the reward head built here is never read; the backbone is the pretrained one
    model = build_reward_model(model_path, kind="grm", num_hidden_layers=layers)
    model[0].eval()
    out = {
        "reward_states": reward_token_states(model, prompts, responses, batch_size),
        "response_tokens": response_token_counts(model[1], prompts, responses),
    }
    tokens = token_states(model, [prompts[i] for i in token_rows], [responses[i] for i in token_rows], 16)
    out.update({f"token_{k}": v for k, v in tokens.items() if k != "lm_head"})
    out["token_rows"] = np.asarray(token_rows, dtype=np.int64)
    used = np.unique(tokens["support"]) if len(tokens["support"]) else np.zeros(0, dtype=np.int64)
    out["vocab_ids"], out["vocab_rows"] = used, tokens["lm_head"][used]  # only the LM-head rows a proxy reads
    buffer = io.BytesIO()
    np.savez(buffer, key=np.array(key), **out)
    atomic_write_bytes(cache, buffer.getvalue())
    return out
