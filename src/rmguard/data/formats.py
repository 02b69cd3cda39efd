"""Adapters from the preference formats users have to :class:`PreferencePair`.

Formats (``data_format``, the :data:`FORMATS` registry):
    trl               {"chosen", "rejected"} or {"prompt", "chosen", "rejected"}, text or chat messages,
                      optional "margin"; an implicit prompt is the shared prefix of chosen and rejected.
    hh_rlhf           {"chosen", "rejected"} Anthropic HH transcripts ("\\n\\nHuman: … \\n\\nAssistant: …").
    unified_feedback  {"conv_A", "conv_B", "conv_A_rating", "conv_B_rating"}; ties are dropped and counted;
                      rows whose ``source`` names summarize get GRM's summary instruction.
    ultrafeedback     {"instruction" or "prompt", "completions": [{"response", "model", <score>}]}, turned
                      into pairs by ``pair_strategy``: best_vs_worst, best_vs_random, all_pairs.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rmguard.data.records import Message, PreferencePair, Text
from rmguard.errors import DataError
from rmguard.registry import Registry

COMPLETION_SCORE_KEYS = ("score", "gold_score", "overall_score", "rating")
_HH_TURN = re.compile(r"\n\n(Human|Assistant): ")
SUMMARIZE_INSTRUCTION = "Generate one-sentence summary for the following post: "


@dataclass
class ConversionStats:
    """What happened to the rows: nothing is dropped without being counted here."""

    rows: int = 0
    pairs: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


@dataclass
class Conversion:
    """What an adapter may need beyond its row: the pair strategy of multi-response rows, its random
    draws, and the counts of dropped rows."""

    pair_strategy: str
    rng: random.Random
    stats: ConversionStats


Adapter = Callable[[dict[str, Any], str, int, Conversion], list[PreferencePair]]


@dataclass(frozen=True)
class DataFormat:
    """One entry of :data:`FORMATS`: ``convert(row, source, row_number, conversion)`` gives the row's pairs
    (raising :class:`DataError` on a bad one), ``detect(row)`` says whether a first row is in this format,
    ``expected`` names its fields for the message when no format fits."""

    convert: Adapter
    detect: Callable[[dict[str, Any]], bool]
    expected: str


def detect_format(row: dict[str, Any], source: str) -> str:
    """The format of a first row; formats registered later are tried first, so a new format can claim
    rows a more general one (TRL's chosen/rejected) would also read."""
    for name, entry in reversed(FORMATS.items()):
        if entry.detect(row):
            return name
    expected = [f"{entry.expected} ({name})" for name, entry in FORMATS.items()]
    raise DataError(
        source,
        f"unknown preference format: first row has fields {sorted(row)}; expected "
        f"{', '.join(expected[:-1])} or {expected[-1]}",
    )


def to_pairs(
    rows: Iterable[tuple[int, dict[str, Any]]],
    source: str,
    data_format: str = "auto",
    pair_strategy: str = "best_vs_worst",
    seed: int = 0,
) -> tuple[list[PreferencePair], ConversionStats]:
    """Convert raw rows to validated pairs, raising :class:`DataError` on the first bad row."""
    rows = list(rows)
    if not rows:
        raise DataError(source, "no records")
    if data_format == "auto":
        data_format = detect_format(rows[0][1], source)
    adapter = FORMATS.lookup(data_format, ("auto",), source).convert
    PAIR_STRATEGIES.lookup(pair_strategy, source=source)
    conversion = Conversion(pair_strategy, random.Random(seed), ConversionStats())
    pairs: list[PreferencePair] = []
    for number, row in rows:
        conversion.stats.rows += 1
        new = adapter(row, source, number, conversion)
        for pair in new:
            _validate(pair)
        pairs.extend(new)
    conversion.stats.pairs = len(pairs)
    return pairs, conversion.stats


# ----------------------------------------------------------------------------------------------- helpers


def _require(row: dict[str, Any], name: str, source: str, number: int) -> Any:
    if name not in row or row[name] is None:
        raise DataError(source, "missing field", row=number, field=name)
    return row[name]


def check_text(value: Any, source: str, number: int, name: str) -> Text:
    if isinstance(value, str):
        if not value.strip():
            raise DataError(source, "empty text", row=number, field=name)
        return value
    if isinstance(value, list):
        for message in value:
            if not (
                isinstance(message, dict)
                and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)
            ):
                raise DataError(
                    source,
                    "messages must be objects with string 'role' and 'content'",
                    row=number,
                    field=name,
                )
        return [{"role": m["role"], "content": m["content"]} for m in value]
    raise DataError(
        source, f"expected text or a list of messages, got {type(value).__name__}", row=number, field=name
    )


def _validate(pair: PreferencePair) -> None:
    for name in ("chosen", "rejected"):
        value = getattr(pair, name)
        empty = (
            not value.strip()
            if isinstance(value, str)
            else not value or not any(m["content"].strip() for m in value)
        )
        if empty:
            raise DataError(pair.source, "empty response", row=pair.row, field=name)
    if pair.chosen == pair.rejected:
        raise DataError(pair.source, "chosen and rejected are identical", row=pair.row, field="rejected")
    if isinstance(pair.chosen, list) != isinstance(pair.rejected, list) or (
        pair.prompt and isinstance(pair.prompt, list) != isinstance(pair.chosen, list)
    ):
        raise DataError(
            pair.source, "prompt, chosen and rejected mix plain text and chat messages", row=pair.row
        )
    if pair.margin is not None and not math.isfinite(pair.margin):
        raise DataError(pair.source, "margin must be a finite number", row=pair.row, field="margin")


def split_shared_prefix(chosen: Text, rejected: Text) -> tuple[Text, Text, Text]:
    """Implicit prompt: the longest shared prefix of two conversations (whole messages) or texts.

    For text the split backs off to the last whitespace so a word shared by both responses stays with them.
    """
    if isinstance(chosen, list) and isinstance(rejected, list):
        n = 0
        while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
            n += 1
        return chosen[:n], chosen[n:], rejected[n:]
    if isinstance(chosen, str) and isinstance(rejected, str):
        n = 0
        while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
            n += 1
        while n > 0 and not chosen[n - 1].isspace():
            n -= 1
        return chosen[:n], chosen[n:], rejected[n:]
    return "", chosen, rejected


def _margin(row: dict[str, Any], source: str, number: int) -> float | None:
    value = row.get("margin")
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(
            source, f"margin must be a number, got {value!r}", row=number, field="margin"
        ) from None


def _trl_pairs(row: dict[str, Any], source: str, number: int, conversion: Conversion) -> list[PreferencePair]:
    chosen = check_text(_require(row, "chosen", source, number), source, number, "chosen")
    rejected = check_text(_require(row, "rejected", source, number), source, number, "rejected")
    if row.get("prompt") is not None:
        prompt: Text = row["prompt"]
        if isinstance(prompt, str) and isinstance(chosen, list):
            prompt = [{"role": "user", "content": prompt}]
        elif prompt != "" and prompt != []:
            prompt = check_text(prompt, source, number, "prompt")
    else:
        prompt, chosen, rejected = split_shared_prefix(chosen, rejected)
    return [PreferencePair(prompt, chosen, rejected, _margin(row, source, number), source, number)]


def parse_hh_transcript(text: str, source: str = "", number: int = 0, field: str = "") -> list[Message]:
    """Split an HH-RLHF transcript into chat messages."""
    parts = _HH_TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise DataError(
            source, "not an HH-RLHF transcript ('\\n\\nHuman: … \\n\\nAssistant: …')", row=number, field=field
        )
    roles = {"Human": "user", "Assistant": "assistant"}
    return [
        {"role": roles[speaker], "content": content} for speaker, content in zip(parts[1::2], parts[2::2])
    ]


def _hh_pairs(row: dict[str, Any], source: str, number: int, conversion: Conversion) -> list[PreferencePair]:
    chosen = parse_hh_transcript(_require(row, "chosen", source, number), source, number, "chosen")
    rejected = parse_hh_transcript(_require(row, "rejected", source, number), source, number, "rejected")
    prompt, chosen_tail, rejected_tail = split_shared_prefix(chosen, rejected)
    return [PreferencePair(prompt, chosen_tail, rejected_tail, None, source, number)]


def _number(row: dict[str, Any], name: str, source: str, number: int) -> float:
    value = _require(row, name, source, number)
    if isinstance(value, bool):  # float(True) is 1.0: a flag where a score belongs is a mistake, not a score
        raise DataError(source, f"expected a number, got {value!r}", row=number, field=name)
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise DataError(source, f"expected a number, got {value!r}", row=number, field=name) from None
    if not math.isfinite(result):
        raise DataError(source, "expected a finite number", row=number, field=name)
    return result


def with_summarize_instruction(conversation: Text) -> Text:
    """The first message's text stripped and prefixed with ``SUMMARIZE_INSTRUCTION``.

    GRM's rule for Unified-Feedback rows whose ``source`` contains 'summarize' (YangRui2015/
    Generalizable-Reward-Model, ``build_dataset_UF`` in reward_models/load_datasets.py and
    rm_eval/load_eval_datasets.py): the Reddit post alone does not say what is asked. Plain-text
    conversations, which the reference cannot read, are left as they are.
    """
    if not isinstance(conversation, list) or not conversation:
        return conversation
    first = {**conversation[0], "content": SUMMARIZE_INSTRUCTION + conversation[0]["content"].strip()}
    return [first, *conversation[1:]]


def _unified_feedback_pairs(
    row: dict[str, Any], source: str, number: int, conversion: Conversion
) -> list[PreferencePair]:
    conv_a = check_text(_require(row, "conv_A", source, number), source, number, "conv_A")
    conv_b = check_text(_require(row, "conv_B", source, number), source, number, "conv_B")
    origin = row.get("source")
    if isinstance(origin, str) and "summarize" in origin:
        conv_a, conv_b = with_summarize_instruction(conv_a), with_summarize_instruction(conv_b)
    rating_a = _number(row, "conv_A_rating", source, number)
    rating_b = _number(row, "conv_B_rating", source, number)
    if rating_a == rating_b:
        conversion.stats.drop("tied ratings")
        return []
    chosen, rejected = (conv_a, conv_b) if rating_a > rating_b else (conv_b, conv_a)
    prompt, chosen_tail, rejected_tail = split_shared_prefix(chosen, rejected)
    return [PreferencePair(prompt, chosen_tail, rejected_tail, None, source, number)]


def completion_score(completion: dict[str, Any], source: str, number: int, index: int) -> float:
    """The score of one UltraFeedback completion, from the first of COMPLETION_SCORE_KEYS present."""
    for key in COMPLETION_SCORE_KEYS:
        if completion.get(key) is not None:
            return _number(completion, key, source, number)
    raise DataError(
        source,
        f"completion {index} has none of the score fields {', '.join(COMPLETION_SCORE_KEYS)}",
        row=number,
        field="completions",
    )


def ultrafeedback_prompt(row: dict[str, Any], source: str, number: int) -> Text:
    name = "instruction" if "instruction" in row else "prompt"
    return check_text(_require(row, name, source, number), source, number, name)


def _ultrafeedback_pairs(
    row: dict[str, Any], source: str, number: int, conversion: Conversion
) -> list[PreferencePair]:
    prompt = ultrafeedback_prompt(row, source, number)
    completions = _require(row, "completions", source, number)
    if not isinstance(completions, list):
        raise DataError(source, "expected a list of completions", row=number, field="completions")
    scored = []
    for index, completion in enumerate(completions):
        if not isinstance(completion, dict):
            raise DataError(source, f"completion {index} is not an object", row=number, field="completions")
        response = check_text(completion.get("response"), source, number, f"completions[{index}].response")
        scored.append((completion_score(completion, source, number, index), response))
    chosen_rejected = select_pairs([score for score, _ in scored], conversion.pair_strategy, conversion.rng)
    if not chosen_rejected:
        conversion.stats.drop("fewer than two distinct scores")
        return []
    prompt = as_user_turn(prompt)
    return [
        PreferencePair(prompt, as_reply(scored[c][1]), as_reply(scored[r][1]), None, source, number)
        for c, r in chosen_rejected
    ]


def select_pairs(scores: list[float], strategy: str, rng: random.Random) -> list[tuple[int, int]]:
    """(chosen index, rejected index) pairs among scored responses by ``strategy`` (a name of
    :data:`PAIR_STRATEGIES`); equal scores are never paired and fewer than two distinct scores give no pair.
    A tie at the top goes to the earliest response, one at the bottom to the latest."""
    select = PAIR_STRATEGIES.lookup(strategy).select
    if len(set(scores)) < 2:
        return []
    return select(sorted(range(len(scores)), key=lambda i: -scores[i]), scores, rng)


@dataclass(frozen=True)
class PairStrategy:
    """One entry of :data:`PAIR_STRATEGIES`: ``select(ranked, scores, rng)`` gives (chosen, rejected) index
    pairs from the response indices ranked best first (at least two distinct scores).

    best_vs_worst: the top against the bottom; best_vs_random: the top against one strictly lower response
    drawn from ``rng``; all_pairs: every pair with different scores.
    """

    select: Callable[[list[int], list[float], random.Random], list[tuple[int, int]]]


def _best_vs_random(ranked: list[int], scores: list[float], rng: random.Random) -> list[tuple[int, int]]:
    best = ranked[0]
    return [(best, rng.choice([i for i in ranked if scores[i] < scores[best]]))]


def _all_pairs(ranked: list[int], scores: list[float], rng: random.Random) -> list[tuple[int, int]]:
    return [(a, b) for n, a in enumerate(ranked) for b in ranked[n + 1 :] if scores[a] > scores[b]]


def _is_hh_row(row: dict[str, Any]) -> bool:
    chosen = row.get("chosen")
    return "prompt" not in row and isinstance(chosen, str) and chosen.startswith("\n\nHuman: ")


# How multi-response rows become pairs (``pair_strategy``, ``rmguard label --pairs``): name → entry.
PAIR_STRATEGIES: Registry[PairStrategy] = Registry(
    "pair_strategy",
    {
        "best_vs_worst": PairStrategy(lambda ranked, scores, rng: [(ranked[0], ranked[-1])]),
        "best_vs_random": PairStrategy(_best_vs_random),
        "all_pairs": PairStrategy(_all_pairs),
    },
    aliases={"all": "all_pairs"},
)

# The preference formats (``data_format``): name → adapter and detection. A new format is an adapter
# function above and one entry here (or FORMATS.register(name, DataFormat(...)) from anywhere).
FORMATS: Registry[DataFormat] = Registry(
    "data_format",
    {
        "trl": DataFormat(_trl_pairs, lambda row: bool(set(row) & {"chosen", "rejected"}), "chosen/rejected"),
        "hh_rlhf": DataFormat(_hh_pairs, _is_hh_row, "chosen/rejected transcripts"),
        "unified_feedback": DataFormat(
            _unified_feedback_pairs, lambda row: {"conv_A", "conv_B"} <= set(row), "conv_A/conv_B"
        ),
        "ultrafeedback": DataFormat(
            _ultrafeedback_pairs,
            lambda row: "completions" in row and not {"conv_A", "conv_B"} <= set(row),
            "completions",
        ),
    },
)


# ----------------------------------------------------------------------------------------------- text


def as_user_turn(prompt: Text) -> Text:
    """A plain instruction is one user turn: UltraFeedback responses and sampled responses are chat
    answers. Chat prompts are kept as they are."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt


def as_reply(response: Text) -> list[Message]:
    """A plain-text response is one assistant turn; chat responses are kept as they are."""
    return response if isinstance(response, list) else [{"role": "assistant", "content": response}]


def chat_pair(prompt: Text, response: Text) -> tuple[Text, list[Message]]:
    """(prompt, response) as chat messages, the form reward models with chat templates score."""
    return as_user_turn(prompt), as_reply(response)


def response_text(response: Text) -> str:
    """The text of a response given as plain text or as assistant messages."""
    return (
        response
        if isinstance(response, str)
        else "".join(m["content"] for m in response if m["role"] == "assistant")
    )
