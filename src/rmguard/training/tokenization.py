"""Preference pairs → token ids: chat template, prompt/response split and the over-length policy.

A pair becomes ``prompt_ids``, ``chosen_ids`` and ``rejected_ids`` such that ``prompt_ids + chosen_ids``
is exactly the tokenization of the whole chosen conversation (and likewise for rejected): the prompt is
the longest token prefix shared by the rendered prompt and both full sequences, so a token that merges
across the prompt/response boundary is counted with the response rather than split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from rmguard.calibration import response_length
from rmguard.data.records import PreferencePair, RenderedText, ScoredResponse, Text
from rmguard.errors import DataError

# End-of-turn tokens of common chat templates: a pad token must be neither one of these (when the chat
# template uses it) nor EOS, or last-non-pad pooling skips the token that closes the response.
_END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")
_PAD_CANDIDATES = ("<|finetune_right_pad_id|>", "<|end_of_text|>", "<|endoftext|>", "<pad>", "[PAD]", "<unk>")
ADDED_PAD_TOKEN = "<|pad|>"


@dataclass
class PairFeatures:
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    margin: float | None = None
    tie: bool = False


@dataclass
class ResponseFeatures:
    prompt_ids: list[int]
    response_ids: list[int]
    response_chars: int | None = None  # ℓ of a length calibration (rmguard.calibration.response_length)


@dataclass
class TokenizationReport:
    """Counts of what the over-length policy did; ``dropped_rows`` lists (source, row) of dropped pairs."""

    pairs: int = 0
    prompt_truncated: int = 0
    conversational: bool = False  # chat messages, rendered by the chat template (rmguard.text_rule)
    dropped_rows: list[tuple[str, int]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.pairs} pairs tokenized, {self.prompt_truncated} prompts truncated from the left, "
            f"{len(self.dropped_rows)} pairs dropped as longer than max_length"
        )


def render(
    tokenizer: PreTrainedTokenizerBase, prompt: Text, response: Text | RenderedText
) -> tuple[str, str, bool]:
    """(prompt text, full text, add_special_tokens) for one prompt/response.

    Chat messages go through the tokenizer's chat template, which owns the special tokens; plain text is
    prompt + response + EOS with the tokenizer's own special tokens; a RenderedText is already final.
    """
    if isinstance(response, RenderedText):
        return str(prompt), str(prompt) + response.text, response.add_special_tokens
    if isinstance(response, list):
        prompt_messages = (
            prompt if isinstance(prompt, list) else ([{"role": "user", "content": prompt}] if prompt else [])
        )
        full = tokenizer.apply_chat_template(prompt_messages + response, tokenize=False)
        prompt_text = (
            tokenizer.apply_chat_template(prompt_messages, tokenize=False, add_generation_prompt=True)
            if prompt_messages
            else ""
        )
        return prompt_text, full, False
    eos = tokenizer.eos_token or ""
    full = prompt + response
    if eos and not full.endswith(eos):
        full += eos
    return prompt, full, True


def _common_prefix_length(*sequences: Sequence[int]) -> int:
    n = 0
    shortest = min(len(s) for s in sequences)
    while n < shortest and all(s[n] == sequences[0][n] for s in sequences[1:]):
        n += 1
    return n


def _encode(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], add_special_tokens: bool
) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]


def require_chat_template(tokenizer: PreTrainedTokenizerBase, source: str) -> None:
    if not tokenizer.chat_template:
        raise DataError(
            source,
            "the data holds chat messages but the tokenizer has no chat template; "
            "set chat_template in the config",
        )


def tokenize_pairs(
    pairs: list[PreferencePair],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    truncation: str = "truncate_prompt",
) -> tuple[list[PairFeatures], TokenizationReport]:
    """Tokenize pairs in batches, applying the over-length policy (``truncate_prompt`` or ``drop``)."""
    if any(pair.is_conversational for pair in pairs):
        require_chat_template(tokenizer, pairs[0].source)
    rendered = [
        (render(tokenizer, p.prompt, p.chosen), render(tokenizer, p.prompt, p.rejected)) for p in pairs
    ]
    features: list[PairFeatures] = []
    report = TokenizationReport(conversational=any(pair.is_conversational for pair in pairs))
    for add_special in (False, True):
        indices = [i for i, (chosen, _) in enumerate(rendered) if chosen[2] is add_special]
        prompts = _encode(tokenizer, [rendered[i][0][0] for i in indices], add_special)
        fulls_c = _encode(tokenizer, [rendered[i][0][1] for i in indices], add_special)
        fulls_r = _encode(tokenizer, [rendered[i][1][1] for i in indices], add_special)
        for k, i in enumerate(indices):
            pair = pairs[i]
            n = _common_prefix_length(prompts[k], fulls_c[k], fulls_r[k]) if prompts[k] else 0
            prompt_ids, chosen_ids, rejected_ids = fulls_c[k][:n], fulls_c[k][n:], fulls_r[k][n:]
            longest = max(len(chosen_ids), len(rejected_ids))
            if len(prompt_ids) + longest > max_length:
                if truncation == "drop" or longest > max_length:
                    report.dropped_rows.append((pair.source, pair.row))
                    continue
                prompt_ids = prompt_ids[len(prompt_ids) - (max_length - longest) :]
                report.prompt_truncated += 1
            features.append(PairFeatures(prompt_ids, chosen_ids, rejected_ids, pair.margin, pair.tie))
    report.pairs = len(features)
    return features, report


def tokenize_responses(
    items: list[ScoredResponse], tokenizer: PreTrainedTokenizerBase, max_length: int | None = None
) -> list[ResponseFeatures]:
    """Tokenize single responses in input order; prompts longer than the budget are cut from the left."""
    if any(item.is_conversational for item in items):
        require_chat_template(tokenizer, items[0].source)
    rendered = [render(tokenizer, item.prompt, item.response) for item in items]
    out: list[ResponseFeatures | None] = [None] * len(items)
    for add_special in (False, True):
        indices = [i for i, r in enumerate(rendered) if r[2] is add_special]
        prompts = _encode(tokenizer, [rendered[i][0] for i in indices], add_special)
        fulls = _encode(tokenizer, [rendered[i][1] for i in indices], add_special)
        for k, i in enumerate(indices):
            n = _common_prefix_length(prompts[k], fulls[k]) if prompts[k] else 0
            prompt_ids, response_ids = fulls[k][:n], fulls[k][n:]
            if max_length is not None and len(prompt_ids) + len(response_ids) > max_length:
                if len(response_ids) > max_length:
                    raise DataError(
                        items[i].source,
                        f"response is {len(response_ids)} tokens, longer than max_length {max_length}",
                        row=items[i].row,
                        field="response",
                    )
                prompt_ids = prompt_ids[len(prompt_ids) - (max_length - len(response_ids)) :]
            # A RenderedText's length is its scorer's to set: the text before its rule.
            response = items[i].response
            chars = None if isinstance(response, RenderedText) else response_length(response)
            out[i] = ResponseFeatures(prompt_ids, response_ids, chars)
    return out  # type: ignore[return-value]


def ensure_distinct_pad_token(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Give the tokenizer a pad token that is not an end-of-turn/EOS token; True if one had to be added."""
    vocab = tokenizer.get_vocab()
    template = tokenizer.chat_template or ""
    stop_ids = {vocab[t] for t in _END_OF_TURN_TOKENS if t in vocab and t in template} | {
        tokenizer.eos_token_id
    }
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id not in stop_ids:
        return False
    for candidate in _PAD_CANDIDATES:
        if candidate in vocab and vocab[candidate] not in stop_ids and candidate not in template:
            tokenizer.pad_token = candidate
            return False
    tokenizer.add_special_tokens({"pad_token": ADDED_PAD_TOKEN})
    return True


def load_tokenizer(path: str, chat_template: str | None = None) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(path)
    if chat_template:
        template_path = Path(chat_template)
        tokenizer.chat_template = template_path.read_text() if template_path.is_file() else chat_template
    return tokenizer
