"""Sampling responses from a policy (any Hugging Face causal LM) into a resumable response pool.

A pool is a JSONL file of ``{"prompt_id", "sample", "prompt", "response", "tokens"}`` rows. It is
rewritten atomically after every generation batch, so an interrupted run keeps what it finished and a
rerun with the same settings only samples what is missing. Each batch is seeded from its first
(round, prompt), and a resumed run re-forms the same batches, so the same settings give the same pool
whether or not the run was interrupted.
"""

from __future__ import annotations

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


def sample(
    model: Any, tokenizer: Any, prompt_ids: Sequence[Sequence[int]], config: SamplingConfig, seed: int
) -> list[tuple[str, int]]:
    """One sampled continuation per prompt: (decoded text, number of generated tokens up to and with EOS)."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids, mask = left_pad(prompt_ids, pad_id)
    torch.manual_seed(seed)
    with torch.inference_mode():
        output = model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            do_sample=True,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=0,
            max_new_tokens=config.max_new_tokens,
            pad_token_id=pad_id,
        )
    completions = output[:, ids.shape[1] :].cpu()
    configured = model.generation_config.eos_token_id
    eos = {tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])}
    results = []
    for row in completions.tolist():
        length = next((i + 1 for i, token in enumerate(row) if token in eos), len(row))
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
    n: int,
    config: SamplingConfig,
    path: str | Path,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """``n`` samples for every prompt, kept in (and resumed from) the pool file at ``path``.

    Rows are ordered by prompt then sample. ``progress(done, total)`` is called after each batch.
    """
    path = Path(path)
    settings_path = path.with_suffix(".settings.json")
    settings = {"n_prompts": len(prompts), **asdict(config), "batch_size": None}
    done: dict[tuple[int, int], dict[str, Any]] = {}
    if path.is_file() and settings_path.is_file():
        if json.loads(settings_path.read_text()) != settings:
            raise ConfigError(
                f"{path} was sampled with other settings ({settings_path}); use a new output folder"
            )
        done = {(row["prompt_id"], row["sample"]): row for row in read_pool(path)}
    total = len(prompts) * n
    todo = [(p, s) for s in range(n) for p in range(len(prompts)) if (p, s) not in done]
    if todo and isinstance(policy, str):
        policy = load_policy(policy)  # a wrong policy is refused before anything is written
    settings_path.parent.mkdir(parents=True, exist_ok=True)
    settings_path.write_text(json.dumps(settings))
    if progress:
        progress(len(done), total)
    if todo:
        model, tokenizer = policy
        encoded = encode_prompts(tokenizer, prompts)
        for start in range(0, len(todo), config.batch_size):
            chunk = todo[start : start + config.batch_size]
            # One seed per batch, derived from its first item: a resumed run re-forms the same batches.
            first_p, first_s = chunk[0]
            results = sample(
                model,
                tokenizer,
                [encoded[p] for p, _ in chunk],
                config,
                seed=config.seed * 1_000_003 + first_s * 10_007 + first_p,
            )
            for (p, s), (text, length) in zip(chunk, results):
                done[(p, s)] = {
                    "prompt_id": p,
                    "sample": s,
                    "prompt": prompts[p],
                    "response": text,
                    "tokens": length,
                }
            atomic_write_jsonl(path, [done[key] for key in sorted(done)])
            if progress:
                progress(len(done), total)
    return [done[key] for key in sorted(done)]
