"""The text rule a reward model was trained under: which token its reward is read at.

A reward model reads its reward at the last token of a text. Which text that is depends on how it was
trained, and a server handed a whole text (OpenRLHF's ``query``, verl's ``input``) must end it the same way:

* ``chat``      rmguard on chat data: the chat template's rendering, read at its last token (SmolLM2:
                ``…<|im_end|>\\n``). A text ending at the template's end-of-turn token without what the
                template writes after it (a generation stops at ``<|im_end|>``) is completed; a text that
                ends no assistant turn cannot be scored (a model never read a reward there). A template
                that opens with BOS gets it back when the client stripped it (verl does, for vLLM to add).
* ``eos``       rmguard on plain text (and TRL): text + EOS unless it already ends with EOS, tokenized with
                the tokenizer's special tokens.
* ``openrlhf``  OpenRLHF's RewardDataset (openrlhf/datasets/reward_dataset.py, ``__getitem__``):
                ``text.rstrip("\\n")`` + ``" " + EOS`` unless it ends with EOS, no special tokens added.
                It applies to every request, chat messages too (rendered by the template first).

rmguard records the rule in ``rmguard.json`` (``text_rule``) when it saves a trained model; an OpenRLHF
checkpoint is recognised by its config; an older checkpoint is guessed from its tokenizer, and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rmguard.data.records import RenderedText, ScoredResponse
from rmguard.errors import ConfigError, DataError
from rmguard.registry import Registry
from rmguard.training.modeling import is_openrlhf_checkpoint, read_metadata
from rmguard.training.tokenization import render, require_chat_template

TEXT_RULE_KEY = "text_rule"
RULES: Registry[str] = Registry(
    "text rule",
    {
        "chat": "the chat template's rendering, read at the end of its assistant turn",
        "eos": "text + EOS",
        "openrlhf": 'OpenRLHF\'s: text.rstrip("\\n") + " " + EOS',
    },
)
_MARK = "\x00rmguard-response\x00"


def trained_rule(conversational: bool) -> str:
    """The rule rmguard training renders its pairs under (training/tokenization.py ``render``)."""
    return "chat" if conversational else "eos"


def checkpoint_rule(path: str | Path, tokenizer: Any) -> tuple[str, str]:
    """(rule, where it came from) for a checkpoint folder."""
    if is_openrlhf_checkpoint(path):
        return "openrlhf", "an OpenRLHF checkpoint"
    recorded = read_metadata(path).get(TEXT_RULE_KEY)
    if recorded is not None:
        RULES.lookup(recorded, source=f"{path}/rmguard.json")
        return recorded, "recorded in the checkpoint"
    guess = trained_rule(bool(tokenizer.chat_template))
    return guess, "not recorded; guessed from the tokenizer (a chat template: chat)"


def turn_end(tokenizer: Any) -> str:
    """What the chat template writes after an assistant message's content (SmolLM2: ``<|im_end|>\n``)."""
    probe = [{"role": "user", "content": "u"}, {"role": "assistant", "content": _MARK}]
    text = tokenizer.apply_chat_template(probe, tokenize=False)
    return text[text.rindex(_MARK) + len(_MARK) :]


def openrlhf_end(text: str, eos: str) -> str:
    """OpenRLHF's ending: ``text.rstrip("\n")``, then ``" " + EOS`` unless it already ends with EOS."""
    text = text.rstrip("\n")
    return text if text.endswith(eos) else f"{text} {eos}"


class TextFinisher:
    """Whole texts (a server's ``query`` or ``input``) ended as ``rule`` ends them; the chat template is
    probed once, here."""

    def __init__(self, rule: str, tokenizer: Any):
        RULES.lookup(rule)
        self.rule = rule
        self.eos = tokenizer.eos_token or ""
        self.end = self.bos = ""
        if rule == "chat" and not tokenizer.chat_template:
            raise ConfigError("the text rule is 'chat' but the tokenizer has no chat template")
        if rule == "chat":
            self.end = turn_end(tokenizer)
        if rule != "eos" and tokenizer.chat_template:
            bos = tokenizer.bos_token or ""
            opening = tokenizer.apply_chat_template([{"role": "user", "content": "u"}], tokenize=False)
            self.bos = bos if bos and opening.startswith(bos) else ""

    def __call__(self, text: str, where: str, bos_removed: bool = False) -> RenderedText:
        """``text`` ended by the rule; DataError naming ``where`` when the rule cannot score it.
        ``bos_removed``: the text is a chat rendering whose leading BOS the client removed (verl does, for
        vLLM to add back; vLLM adds it only where encoding adds BOS): it is put back."""
        if self.bos and not text.startswith(self.bos) and (bos_removed or self.rule == "chat"):
            text = self.bos + text
        if self.rule == "openrlhf":
            return RenderedText(openrlhf_end(text, self.eos), add_special_tokens=False)
        if self.rule == "eos":
            return RenderedText(text if text.endswith(self.eos) else text + self.eos, add_special_tokens=True)
        closing = self.end.rstrip()
        if not text.endswith(self.end):
            if not (closing and text.endswith(closing)):
                raise DataError(
                    where,
                    f"the text does not end an assistant turn of the model's chat template ({self.end!r}); "
                    "this model was trained on chat-template renderings (text rule 'chat') and reads its "
                    "reward only there",
                )
            text += self.end[len(closing) :]
        return RenderedText(text, add_special_tokens=False)


def apply_rule(rule: str, tokenizer: Any, items: list[ScoredResponse]) -> list[ScoredResponse]:
    """Prompt/response items as ``rule`` reads them: unchanged for rmguard's rules (training/tokenization.py
    renders them as training did); rendered and ended as OpenRLHF's RewardDataset does for ``openrlhf``."""
    if rule != "openrlhf":
        return items
    out = []
    for item in items:
        if isinstance(item.response, RenderedText):
            out.append(item)
            continue
        if item.is_conversational:
            require_chat_template(tokenizer, item.source)
            prompt, full, _ = render(tokenizer, item.prompt, item.response)
        else:
            prompt, full = str(item.prompt), str(item.prompt) + str(item.response)
        full = openrlhf_end(full, tokenizer.eos_token or "")
        prompt = prompt if prompt and full.startswith(prompt) and full != prompt else ""
        out.append(ScoredResponse(prompt, RenderedText(full[len(prompt) :], False), item.source, item.row))
    return out
