"""One conversation, one reward: ``rmguard score`` and every endpoint of a real ``rmguard serve`` agree to 1e-5,
for a chat model trained by rmguard and for a model saved as OpenRLHF saves it, with rewards normalised by the
mean and std each checkpoint's config holds (OpenRLHF's keys).

The requests are the RL frameworks' own, built from their source:
* verl 0.9 (verl/experimental/reward_loop/reward_loop.py, ``_preprocess_reward_inputs`` and
  ``compute_score_disrm``): the conversation rendered by the reward model's chat template
  (``add_generation_prompt=False``), a leading BOS removed; ``{"model", "input", "use_activation": False}``
  posted to ``/classify`` and the reward read at ``data[-1]["probs"][-1]`` (vLLM), or ``{"model", "input"}``
  to ``/v1/embeddings`` and ``data[-1]["embedding"][-1]`` (SGLang). verl's module needs ray and tensordict,
  which do not install here, so the payload is rebuilt from that source.
* OpenRLHF (openrlhf/utils/agent.py, ``SingleTurnAgentExecutor``): ``query`` = the decoded prompt and
  generated tokens (so the text ends at EOS, ``<|im_end|>``, without the template's trailing newline),
  ``prompts`` and ``labels`` one each; the answer's ``rewards``, ``scores`` and ``extra_logs`` are read.
  ``test_openrlhf_client.py`` runs that client itself where it is installed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from rmguard.normalization import reward_statistics
from rmguard.scoring import RewardScorer, load_score_items
from rmguard.training.config import load_config
from rmguard.training.trainer import train

from helpers import run_cli, start_server, write_jsonl

CONVERSATION = [{"role": "user", "content": "p1 p2 p3"}, {"role": "assistant", "content": "g1 g2 b3"}]
OPENRLHF_MEAN, OPENRLHF_STD = 0.25, 1.5


@pytest.fixture(scope="module")
def chat_model(tiny_llama, synthetic_data, tmp_path_factory) -> Path:
    """A reward model rmguard trained (one epoch) and evaluated on chat pairs."""
    out = tmp_path_factory.mktemp("chat") / "rm"
    values = dict(
        model_name_or_path=str(tiny_llama),
        train_file=str(synthetic_data["train"]),
        eval_file=str(synthetic_data["eval"]),
        output_dir=str(out),
        learning_rate=3e-3,
        num_train_epochs=1,
        per_device_train_batch_size=8,
        disable_tqdm=True,
        report_to=["none"],
        seed=0,
    )
    train(load_config(None, values))
    return out


def save_as_openrlhf(base: Path, folder: Path) -> Path:
    """A reward model laid out as OpenRLHF saves one (openrlhf/models/model.py ``_get_reward_model``:
    the backbone under its base-model prefix and ``score`` = Linear(H, 1, bias=False); DeepspeedStrategy
    ``save_model`` writes its config, whose class is ``RewardModel`` and which holds ``normalize_reward``
    and, after evaluation, rm_trainer.py's ``mean`` and ``std``)."""
    torch.manual_seed(1)
    config = AutoConfig.from_pretrained(base)
    config.num_labels = 1
    model = AutoModelForSequenceClassification.from_pretrained(base, config=config)
    model.score.weight.data.normal_(0, 1)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    saved = json.loads((folder / "config.json").read_text())
    for key in ("id2label", "label2id"):  # OpenRLHF's config keeps the backbone's default labels
        saved.pop(key, None)
    saved.update(architectures=["RewardModel"], normalize_reward=False, mean=OPENRLHF_MEAN, std=OPENRLHF_STD)
    (folder / "config.json").write_text(json.dumps(saved))
    return folder


@pytest.fixture(scope="module")
def openrlhf_model(tiny_llama, tmp_path_factory) -> Path:
    return save_as_openrlhf(tiny_llama, tmp_path_factory.mktemp("openrlhf") / "rm")


def openrlhf_reward(folder: Path, text: str, normalize: bool) -> float:
    """OpenRLHF's reward of one text, as its RewardModel.forward computes it (openrlhf/models/model.py):
    the value head on the last hidden state at the last attended token, position ids from the mask,
    (r − mean) / std with ``normalize_reward``; the text tokenized without special tokens (serve_rm.py)."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    batch = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    backbone = AutoModel.from_pretrained(folder).eval()
    head = load_file(str(folder / "model.safetensors"))["score.weight"]
    position_ids = batch["attention_mask"].long().cumsum(-1) - 1
    with torch.no_grad():
        hidden = backbone(
            batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=position_ids
        )
    reward = (hidden.last_hidden_state[0, -1] @ head[0]).item()
    config = json.loads((folder / "config.json").read_text())
    return (reward - config["mean"]) / config["std"] if normalize else reward


def verl_input(tokenizer, messages: list[dict]) -> str:
    """verl's ``_preprocess_reward_inputs``: the chat template's text, its leading BOS removed."""
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
    bos = tokenizer.bos_token
    return text[len(bos) :] if bos is not None and text.startswith(bos) else text


def every_endpoint(url: str, folder: Path, messages: list[dict]) -> dict[str, float]:
    """The reward of ``messages`` through each endpoint, read where each client reads it."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    text = verl_input(tokenizer, messages)

    def post(path: str, body: dict) -> dict:
        response = httpx.post(url + path, json=body, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    openrlhf = post("/get_reward", {"query": [full.rstrip("\n")], "prompts": [prompt], "labels": [""]})
    assert openrlhf["scores"] == openrlhf["rewards"] and isinstance(openrlhf["extra_logs"], dict)
    rewards = {
        "score messages": post("/score", {"items": [{"messages": messages}]})["rewards"][0],
        "score prompt/response": post(
            "/score", {"items": [{"prompt": messages[:-1], "response": messages[-1:]}]}
        )["rewards"][0],
        "get_reward (OpenRLHF's query, ends at EOS)": openrlhf["rewards"][0],
        "get_reward (the template's whole text)": post("/get_reward", {"query": [full]})["rewards"][0],
        "classify (verl, vLLM)": post(
            "/classify", {"model": str(folder), "input": text, "use_activation": False}
        )["data"][-1]["probs"][-1],
        "classify activation=false": post("/classify", {"model": "m", "input": [text], "activation": False})[
            "data"
        ][0]["probs"][0],
        "classify messages": post("/classify", {"messages": messages, "use_activation": False})["data"][0][
            "probs"
        ][0],
        "embeddings (verl, SGLang)": post("/v1/embeddings", {"model": str(folder), "input": text})["data"][
            -1
        ]["embedding"][-1],
    }
    sigmoid = post("/classify", {"model": "m", "input": text})["data"][0]["probs"][0]  # vLLM's default
    rewards["classify default activation (logit of)"] = math.log(sigmoid / (1 - sigmoid))
    return rewards


@pytest.fixture(scope="module", params=["chat_model", "openrlhf_model"])
def served(request):
    """(checkpoint, base URL, startup lines) of a real ``rmguard serve --normalize`` of each model."""
    folder = request.getfixturevalue(request.param)
    url, process = start_server(folder, "--normalize", "--batch-size", "4")
    startup = [process.stdout.readline(), process.stdout.readline()]
    yield folder, url, startup
    process.kill()
    process.wait()


def test_every_endpoint_and_rmguard_score_give_one_reward(served, tmp_path):
    folder, url, startup = served
    rows = write_jsonl(tmp_path / "one.jsonl", [{"prompt": CONVERSATION[:1], "response": CONVERSATION[1:]}])
    done = run_cli(
        "score",
        "--model",
        str(folder),
        "--data",
        str(rows),
        "--output",
        str(tmp_path / "s.jsonl"),
        "--normalize",
    )
    assert done.returncode == 0, done.stderr
    expected = json.loads((tmp_path / "s.jsonl").read_text())["reward"]
    rewards = every_endpoint(url, folder, CONVERSATION)
    assert rewards == {name: pytest.approx(expected, abs=1e-5) for name in rewards}
    raw = RewardScorer(folder, device="cpu").score([CONVERSATION[:1]], [CONVERSATION[1:]])[0]
    assert raw != pytest.approx(expected, abs=1e-3)  # normalisation did change the reward
    if folder.name == "rm" and "openrlhf" in str(folder.parent):
        assert "text rule 'openrlhf' (an OpenRLHF checkpoint)" in startup[1]
        text = AutoTokenizer.from_pretrained(folder).apply_chat_template(CONVERSATION, tokenize=False)
        # OpenRLHF's training text: the template's text without its trailing newline, ending at EOS
        assert expected == pytest.approx(openrlhf_reward(folder, text.rstrip("\n"), normalize=True), abs=1e-5)
        assert raw == pytest.approx(openrlhf_reward(folder, text.rstrip("\n"), normalize=False), abs=1e-5)
    else:
        assert "text rule 'chat' (recorded in the checkpoint)" in startup[1]
    assert "rewards normalised" in startup[1]


def test_plain_text_under_the_openrlhf_rule_ends_with_eos_as_openrlhf_trains(openrlhf_model):
    url, process = start_server(openrlhf_model)
    try:
        expected = openrlhf_reward(openrlhf_model, "p1 p2 g1 <|im_end|>", normalize=False)
        query = httpx.post(
            f"{url}/get_reward", json={"query": ["p1 p2 g1\n"], "prompts": ["p1 p2"], "labels": [None]}
        )
        item = httpx.post(f"{url}/score", json={"items": [{"prompt": "p1 p2", "response": " g1"}]})
        scored = RewardScorer(openrlhf_model, device="cpu").score(["p1 p2"], [" g1"])[0]
        got = [query.json()["rewards"][0], item.json()["rewards"][0], scored]
        assert got == pytest.approx([expected] * 3, abs=1e-5)
        assert "rewards raw" in process.stdout.readline() + process.stdout.readline()
    finally:
        process.kill()
        process.wait()


def test_a_text_that_ends_no_turn_is_refused_under_the_chat_rule(chat_model):
    url, process = start_server(chat_model)
    try:
        cut = "<|im_start|>user\np1<|im_end|>\n<|im_start|>assistant\ng1 g2"  # a generation cut at max length
        response = httpx.post(f"{url}/get_reward", json={"query": [cut], "prompts": [""], "labels": [""]})
        assert response.status_code == 422
        assert response.json()["error"].startswith("query[0]: the text does not end an assistant turn")
        vllm = httpx.post(f"{url}/classify", json={"model": "m", "input": ["g1", cut]})
        assert vllm.status_code == 422
        assert (
            vllm.json()["error"]["type"] == "UnprocessableEntityError" and vllm.json()["error"]["code"] == 422
        )
        assert vllm.json()["error"]["message"].startswith("input[0]: the text does not end an assistant turn")
        empty = httpx.post(f"{url}/get_reward", json={"query": [], "prompts": [], "labels": []})
        assert empty.status_code == 200 and empty.json() == {"rewards": [], "scores": [], "extra_logs": {}}
    finally:
        process.kill()
        process.wait()


def test_training_writes_openrlhfs_mean_and_std_of_the_evaluation_rewards(chat_model, synthetic_data):
    config = json.loads((chat_model / "config.json").read_text())
    meta = json.loads((chat_model / "rmguard.json").read_text())
    assert meta["text_rule"] == "chat"
    _, items, count, _ = load_score_items(str(synthetic_data["eval"]))
    rewards = RewardScorer(chat_model, device="cpu").score_items(items)
    stats = reward_statistics(rewards[0::2], rewards[1::2])
    assert stats.std == pytest.approx(torch.tensor(rewards.tolist()).std().item(), rel=1e-5)
    assert (config["mean"], config["std"]) == pytest.approx((stats.mean, stats.std), abs=1e-5)
    # OpenRLHF's RewardModel reads these two keys (hasattr(config, "mean")) and returns (r − mean) / std
    normalised = RewardScorer(chat_model, device="cpu", normalize=True).score_items(items)
    assert normalised.tolist() == pytest.approx(
        ((rewards - config["mean"]) / config["std"]).tolist(), abs=1e-5
    )


def test_normalize_without_statistics_is_one_line(tiny_llama, tmp_path):
    from rmguard.training.modeling import build_reward_model, save_reward_model

    model, tokenizer = build_reward_model(str(tiny_llama))
    save_reward_model(model, tokenizer, tmp_path / "rm")
    rows = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "p1", "response": " g1"}])
    done = run_cli(
        "score",
        "--model",
        str(tmp_path / "rm"),
        "--data",
        str(rows),
        "--output",
        str(tmp_path / "o.jsonl"),
        "--normalize",
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--normalize needs the reward mean and std in config.json ('mean', 'std')" in done.stderr
    assert not (tmp_path / "o.jsonl").exists()
