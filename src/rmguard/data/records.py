"""The canonical preference pair every data format is turned into."""

from __future__ import annotations

from dataclasses import dataclass

Message = dict[str, str]
Text = str | list[Message]  # plain text, or chat messages {"role", "content"}


@dataclass(frozen=True)
class PreferencePair:
    """One preference: ``chosen`` is preferred to ``rejected`` as a continuation of ``prompt``.

    Conversational pairs hold message lists (the prompt may be empty, the responses are the assistant
    turn(s)); plain-text pairs hold strings and are concatenated as prompt + response.
    ``source`` and ``row`` locate the record for error messages. ``tie``: neither response is preferred
    (an augmentation's neutral pair, :mod:`rmguard.data.augmentation`); the objective takes it as BT with
    target ½.
    """

    prompt: Text
    chosen: Text
    rejected: Text
    margin: float | None = None
    source: str = ""
    row: int = 0
    tie: bool = False

    @property
    def is_conversational(self) -> bool:
        return isinstance(self.chosen, list)


@dataclass(frozen=True)
class RenderedText:
    """A response whose whole text (prompt + ``text``) is already final under a model's text rule
    (:mod:`rmguard.text_rule`): tokenized as it is, with or without the tokenizer's special tokens."""

    text: str
    add_special_tokens: bool


@dataclass(frozen=True)
class ScoredResponse:
    """A single response to score: used for single-response files and multi-response evaluation."""

    prompt: Text
    response: Text | RenderedText
    source: str = ""
    row: int = 0

    @property
    def is_conversational(self) -> bool:
        return isinstance(self.response, list)
