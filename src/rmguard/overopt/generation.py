"""Sampling responses from a policy (any Hugging Face causal LM) into a resumable response pool.

The sampler (:func:`sample`, :func:`decode`) is a batched KV-cached loop: a prompt that several rows share
is run once, rows that drew EOS leave the batch, and each row draws from softmax(logits / T) (top-p as
configured, no top-k) with a random generator of its own, so a row's tokens do not depend on the rows
beside it. It draws from the same distribution as ``model.generate(do_sample=True, top_k=0, ...)``
(tests/overopt/test_generation.py), about 2× faster on CPU for Best-of-N (bench/sampling.py).

A pool is a JSONL file of ``{"prompt_id", "sample", "prompt", "response", "tokens"}`` rows. It is
rewritten atomically after every generation batch, so an interrupted run keeps what it finished and a
rerun with the same settings only samples what is missing. Sample ``s`` of prompt ``p`` is seeded from
(seed, p, s), so the same settings give the same pool whether or not the run was interrupted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmguard import checks
from rmguard.data.formats import as_user_turn, response_text
from rmguard.data.records import Text
from rmguard.data.sources import read_rows
from rmguard.errors import ConfigError, DataError
from rmguard.fileio import atomic_write_jsonl
from rmguard.optional import LazyModule
from rmguard.settings import option
from rmguard.training.pretrained import local_model_folder, require_causal_lm

# Recorded in a pool's settings: rows drawn by another sampler are not mixed into a resumed pool.
SAMPLER = "kv-cached, one generator per row"

if TYPE_CHECKING:
    import torch
else:  # imported at first use: the command line reads SamplingConfig before any sampling
    torch = LazyModule("torch")


@dataclass
class SamplingConfig:
    """How responses are sampled from the policy."""

    temperature: float = option(
        1.0, "Softmax temperature; 1.0 samples the policy as it is (the KL_BoN formula assumes this)."
    )
    top_p: float = option(1.0, "Nucleus sampling mass, in (0, 1].")
    max_new_tokens: int = option(64, "Longest response, in tokens.")
    batch_size: int = option(16, "Sequences per generate() call.", aliases=["--generation-batch-size"])
    seed: int = option(0, "Sampling seed (each batch is seeded from it).")

    def __post_init__(self) -> None:
        checks.positive("temperature", self.temperature)
        checks.fraction("top_p", self.top_p, exclude_zero=True)
        checks.at_least("max_new_tokens", self.max_new_tokens)
        checks.at_least("batch_size", self.batch_size)


def load_policy(name_or_path: str) -> tuple[Any, Any]:
    """(model in fp32 on the GPU when there is one, tokenizer): RLOO trains it, so its weights stay fp32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rmguard.scoring import default_device

    path = local_model_folder(name_or_path)
    require_causal_lm(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(default_device()).eval()
    return model, tokenizer


def encode_prompts(tokenizer: Any, prompts: Sequence[Text]) -> list[list[int]]:
    """Prompt token ids ready for generation: through the chat template when the tokenizer has one."""
    if tokenizer.chat_template:
        texts = [
            tokenizer.apply_chat_template(as_user_turn(p), tokenize=False, add_generation_prompt=True)
            for p in prompts
        ]
        return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    return [tokenizer(response_text(p) if isinstance(p, list) else p)["input_ids"] for p in prompts]


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
        mask[row, width - len(seq) :] = 1
    return ids, mask


def row_seed(seed: int, *key: int) -> int:
    """The seed of one sampled row, e.g. ``row_seed(seed, prompt, sample)``: a 63-bit hash of the key, so
    rows get unrelated random streams whatever their numbers."""
    digest = hashlib.blake2b(repr((seed, *key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def next_token_probs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The sampling distribution over the next token, per row: softmax(logits / T) restricted to the
    nucleus, the most likely tokens whose mass reaches ``top_p`` (Holtzman et al. 2020; as Hugging Face's
    ``TopPLogitsWarper``: a token goes when the mass of the tokens less likely than it and itself is at most
    1 − top_p, and the most likely token always stays), renormalised. No top-k cut (top_k = 0)."""
    logits = logits.float() / temperature
    if top_p < 1.0:
        ordered, order = logits.sort(dim=-1)
        below = ordered.softmax(dim=-1).cumsum(dim=-1) <= 1 - top_p
        below[..., -1] = False
        logits = logits.masked_fill(below.scatter(-1, order, below), float("-inf"))
    return logits.softmax(dim=-1)


def draw(probs: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """One token per row by inversion: the first token whose cumulative probability exceeds the row's
    uniform u ~ U[0, 1) from its own generator, so a row's draw depends on its distribution and its
    generator only (not on the rows beside it). A token of probability 0 is never drawn."""
    uniform = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in generators])
    cumulative = probs.double().cumsum(dim=-1)
    cumulative = cumulative / cumulative[:, -1:]
    picked = torch.searchsorted(cumulative, uniform.to(probs.device)[:, None], right=True)
    return picked[:, 0].clamp(max=probs.shape[-1] - 1)


def decode(
    model: Any,
    prompt_ids: Sequence[Sequence[int]],
    seeds: Sequence[int],
    config: SamplingConfig,
    stop: set[int],
    pad_id: int,
) -> list[list[int]]:
    """Sampled continuations (token ids, ending with the stop token when one was drawn), one per prompt.

    A KV-cached loop: each distinct prompt is run once (left-padded, positions counted from its first
    real token) and its cache copied to every row that shares it (Best-of-N draws many samples of one
    prompt); rows that drew a stop token leave the batch, so no step is spent on them. Row ``i`` draws from
    :func:`next_token_probs` with a generator seeded ``seeds[i]``, so its tokens do not depend on the batch
    it is in (up to floating-point rounding of the batched forward)."""
    if not prompt_ids:
        return []
    distinct = list(dict.fromkeys(tuple(p) for p in prompt_ids))
    index = {p: i for i, p in enumerate(distinct)}
    which = torch.tensor([index[tuple(p)] for p in prompt_ids], device=model.device)
    ids, mask = (t.to(model.device) for t in left_pad(distinct, pad_id))
    positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache, logits = out.past_key_values, out.logits[which, -1]
    cache.batch_select_indices(which)
    mask, position = mask[which], positions[which, -1:] + 1
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    live = torch.arange(len(prompt_ids), device=model.device)  # the rows still sampling
    stops = torch.tensor(sorted(stop), dtype=torch.long, device=model.device)
    tokens: list[list[int]] = [[] for _ in prompt_ids]
    for step in range(config.max_new_tokens):
        chosen = draw(
            next_token_probs(logits, config.temperature, config.top_p), [generators[r] for r in live.tolist()]
        )
        for row, token in zip(live.tolist(), chosen.tolist()):
            tokens[row].append(token)
        going = ~torch.isin(chosen, stops)
        if step + 1 == config.max_new_tokens or not going.any():
            break
        if not going.all():  # compaction: finished rows leave the batch and its cache
            keep = going.nonzero()[:, 0]
            cache.batch_select_indices(keep)
            live, chosen, mask, position = live[keep], chosen[keep], mask[keep], position[keep]
        mask = torch.cat([mask, mask.new_ones((len(live), 1))], dim=-1)
        out = model(
            input_ids=chosen[:, None],
            attention_mask=mask,
            position_ids=position,
            past_key_values=cache,
            use_cache=True,
        )
        logits, position = out.logits[:, -1], position + 1
    return tokens


def stop_tokens(model: Any, tokenizer: Any) -> set[int]:
    """The tokens that end a response: the tokenizer's EOS and the model's generation-config EOS ids."""
    configured = model.generation_config.eos_token_id
    configured = configured if isinstance(configured, list) else [configured]
    return {t for t in (tokenizer.eos_token_id, *configured) if t is not None}


def sample(
    model: Any,
    tokenizer: Any,
    prompt_ids: Sequence[Sequence[int]],
    config: SamplingConfig,
    seed: int | Sequence[int],
) -> list[tuple[str, int]]:
    """One sampled continuation per prompt: (decoded text, number of generated tokens up to and with EOS).

    ``seed`` is one seed per row, or one int from which row ``i``'s is ``row_seed(seed, i)``."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    seeds = [row_seed(seed, i) for i in range(len(prompt_ids))] if isinstance(seed, int) else list(seed)
    stop = stop_tokens(model, tokenizer)
    with torch.inference_mode():
        continuations = decode(model, prompt_ids, seeds, config, stop, pad_id)
    results = []
    for row in continuations:
        length = next((i + 1 for i, token in enumerate(row) if token in stop), len(row))
        results.append((tokenizer.decode(row[:length], skip_special_tokens=True).strip(), length))
    return results


def read_pool(path: str | Path) -> list[dict[str, Any]]:
    """Pre-generated responses: rows with at least ``prompt`` and ``response``."""
    rows = []
    for number, row in read_rows(str(path)):
        for name in ("prompt", "response"):
            if name not in row:
                raise DataError(str(path), "missing field", row=number, field=name)
        rows.append(row)
    return rows


def generate_pool(
    policy: str | tuple[Any, Any],
    prompts: Sequence[Text],
    n: int | Sequence[int],
    config: SamplingConfig,
    path: str | Path,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """``n`` samples for every prompt (or ``n[i]`` for prompt ``i``), kept in (and resumed from) the pool
    file at ``path``.

    Rows are ordered by prompt then sample. Sample ``s`` of prompt ``p`` is drawn by :func:`sample` with
    the seed ``row_seed(config.seed, p, s)``; batches are fixed slices of that order, so a resumed run
    re-forms the batches it had not finished. ``progress(done, total)`` is called after each batch.
    """
    path = Path(path)
    counts = [n] * len(prompts) if isinstance(n, int) else list(n)
    settings_path = path.with_suffix(".settings.json")
    settings = {"n_prompts": len(prompts), **asdict(config), "batch_size": None, "sampler": SAMPLER}
    done: dict[tuple[int, int], dict[str, Any]] = {}
    if path.is_file() and settings_path.is_file():
        if json.loads(settings_path.read_text()) != settings:
            raise ConfigError(
                f"{path} was sampled with other settings ({settings_path}); use a new output folder"
            )
        done = {(row["prompt_id"], row["sample"]): row for row in read_pool(path)}
    grid = [(p, s) for p, count in enumerate(counts) for s in range(count)]
    batches = [grid[i : i + config.batch_size] for i in range(0, len(grid), config.batch_size)]
    batches = [[key for key in batch if key not in done] for batch in batches]
    batches = [batch for batch in batches if batch]
    if batches and isinstance(policy, str):
        policy = load_policy(policy)  # a wrong policy is refused before anything is written
    settings_path.parent.mkdir(parents=True, exist_ok=True)
    settings_path.write_text(json.dumps(settings))
    if progress:
        progress(len(done), len(grid))
    if batches:
        model, tokenizer = policy
        encoded = encode_prompts(tokenizer, prompts)
        for batch in batches:
            seeds = [row_seed(config.seed, p, s) for p, s in batch]
            results = sample(model, tokenizer, [encoded[p] for p, _ in batch], config, seeds)
            for (p, s), (text, length) in zip(batch, results):
                done[(p, s)] = {
                    "prompt_id": p,
                    "sample": s,
                    "prompt": prompts[p],
                    "response": text,
                    "tokens": length,
                }
            atomic_write_jsonl(path, [done[key] for key in sorted(done)])
            if progress:
                progress(len(done), len(grid))
    return [done[key] for key in sorted(done)]
