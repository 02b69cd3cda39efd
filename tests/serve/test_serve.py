"""``rmguard serve``: the real server process on 127.0.0.1, scored against RewardScorer; the batcher alone.

The server test starts ``python -m rmguard serve`` as a user does, sends concurrent requests with httpx and
checks every reward equals ``RewardScorer``'s (the scorer ``rmguard score`` runs) to 1e-5, then sends bad
payloads (each a 4xx JSON error) and checks the server still answers, and finally stops it with SIGTERM.
"""

from __future__ import annotations

import asyncio
import random
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch

from rmguard.data.records import ScoredResponse
from rmguard.scoring import RewardScorer
from rmguard.serve.batcher import DynamicBatcher
from rmguard.serve.requests import Limits, RequestError, get_reward_items, score_items
from rmguard.text_rule import TextFinisher
from rmguard.training.modeling import build_reward_model, save_reward_model
from rmguard.training.tokenization import ResponseFeatures

from helpers import BAD_WORDS, GOOD_WORDS, PROMPT_WORDS, build_tokenizer, start_server

LIMITS = Limits(max_request_bytes=20_000, max_request_items=64, max_length=40)


@pytest.fixture(scope="module")
def reward_model(tiny_llama, tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model, tokenizer = build_reward_model(str(tiny_llama))
    folder = tmp_path_factory.mktemp("serve") / "rm"
    save_reward_model(model, tokenizer, folder, {"text_rule": "eos"})  # plain-text queries: read + EOS
    return folder


@pytest.fixture(scope="module")
def server(reward_model):
    """(base URL, process) of a real ``rmguard serve`` with small limits and a small token budget, so
    that concurrent requests share forward passes and one request spans several."""
    args = ["--max-batch-tokens", "64", "--batch-size", "8", "--max-length", str(LIMITS.max_length)]
    args += ["--max-request-items", str(LIMITS.max_request_items)]
    args += ["--max-request-bytes", str(LIMITS.max_request_bytes)]
    url, process = start_server(reward_model, *args)
    yield url, process
    if process.poll() is None:
        process.kill()
        process.wait()


def _texts(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(prompt, response) plain-text pairs, several responses per prompt."""
    prompts = [" ".join(rng.choices(PROMPT_WORDS, k=rng.randint(1, 5))) + " " for _ in range(max(1, n // 3))]
    words = GOOD_WORDS + BAD_WORDS
    return [(rng.choice(prompts), " ".join(rng.choices(words, k=rng.randint(1, 8)))) for _ in range(n)]


def test_concurrent_requests_score_as_reward_scorer(server, reward_model):
    url, _ = server
    rng = random.Random(0)
    openrlhf = [_texts(rng, rng.randint(1, 9)) for _ in range(10)]
    chats = [_texts(rng, rng.randint(1, 9)) for _ in range(10)]

    def get_reward(pairs):
        body = {
            "query": [p + r for p, r in pairs],
            "prompts": [p for p, _ in pairs],
            "labels": ["x"] * len(pairs),
        }
        return httpx.post(f"{url}/get_reward", json=body, timeout=60)

    def score(pairs):
        items = [
            {"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": r}]}
            if k % 2
            else {"prompt": p, "response": r}
            for k, (p, r) in enumerate(pairs)
        ]
        return httpx.post(f"{url}/score", json={"items": items}, timeout=60)

    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(get_reward, pairs) for pairs in openrlhf]
        futures += [pool.submit(score, pairs) for pairs in chats]
        responses = [f.result() for f in futures]
    assert [r.status_code for r in responses] == [200] * 20

    scorer = RewardScorer(reward_model, batch_size=4, device="cpu")
    for pairs, response in zip(openrlhf, responses[:10]):
        expected = scorer.score([""] * len(pairs), [p + r for p, r in pairs])  # a whole text, no prompt
        assert response.json()["rewards"] == pytest.approx(expected, abs=1e-5)
        assert response.json()["scores"] == response.json()["rewards"]
    for pairs, response in zip(chats, responses[10:]):
        prompts = [[{"role": "user", "content": p}] if k % 2 else p for k, (p, _) in enumerate(pairs)]
        answers = [[{"role": "assistant", "content": r}] if k % 2 else r for k, (_, r) in enumerate(pairs)]
        assert response.json()["rewards"] == pytest.approx(scorer.score(prompts, answers), abs=1e-5)


BAD_PAYLOADS = [
    ("/get_reward", b"not json", 400, "not valid JSON"),
    ("/get_reward", b"[1, 2]", 400, "JSON object"),
    ("/get_reward", b"\xff\xfe", 400, "not valid JSON"),
    ("/get_reward", b"[" * 10_001 + b"]" * 10_001, 413, "at most 20000"),
    ("/get_reward", b"[" * 5000 + b"]" * 5000, 400, "not valid JSON"),
    ("/get_reward", b"{}", 400, "missing field 'query'"),
    ("/get_reward", b'{"query": "p1 g1"}', 400, "'query' must be a list"),
    (
        "/get_reward",
        b'{"query": ["p1"], "labels": ["a", "b"]}',
        400,
        "'labels' must be a list with one entry",
    ),
    ("/get_reward", b'{"query": ["p1", 3]}', 400, "query[1]: expected a string"),
    ("/get_reward", b'{"query": ["  "]}', 400, "query[0]: empty text"),
    ("/get_reward", b'{"query": [' + b'"g1",' * 64 + b'"g2"]}', 413, "at most 64"),
    ("/get_reward", ('{"query": ["' + "g1 " * 50 + '"]}').encode(), 413, "query[0] is 51 tokens"),
    ("/score", b'{"items": [{"prompt": "p1"}]}', 400, "items[0]: expected either"),
    ("/score", b'{"items": [{"response": "g1", "extra": 1}]}', 400, "items[0]: expected either"),
    ("/score", b'{"items": ["g1"]}', 400, "items[0]: expected an object"),
    ("/score", b'{"items": [{"response": 5}]}', 400, "items[0], field 'response'"),
    ("/score", b'{"items": [{"response": [{"role": "assistant"}]}]}', 400, "string 'role' and 'content'"),
    ("/score", b'{"items": [{"response": []}]}', 400, "items[0], field 'response': no messages"),
    ("/score", b'{"items": [{"messages": []}]}', 400, "non-empty list of messages"),
    (
        "/score",
        b'{"items": [{"messages": [{"role": "user", "content": "p1"}], "prompt": "p"}]}',
        400,
        "alone",
    ),
    ("/health", b"{}", 405, "POST /health: Method Not Allowed"),
    ("/nowhere", b"{}", 404, "POST /nowhere: Not Found"),
]


@pytest.mark.parametrize("path, body, status, message", BAD_PAYLOADS)
def test_bad_payloads_are_4xx_json_and_the_server_lives_on(server, path, body, status, message):
    url, process = server
    response = httpx.post(url + path, content=body, headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == status
    assert message in response.json()["error"]
    good = httpx.post(f"{url}/get_reward", json={"query": ["p1 g1"]}, timeout=60)
    assert good.status_code == 200 and len(good.json()["rewards"]) == 1
    assert process.poll() is None


def test_sigterm_stops_the_server_cleanly(server):
    url, process = server
    assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has stopped
    assert "rmguard serve: stopped" in stderr and "Traceback" not in stderr


# ------------------------------------------------------------------------------------- the pieces alone


def test_get_reward_splits_a_query_at_its_prompt_and_strips_padding():
    finish = TextFinisher("eos", build_tokenizer())
    items = get_reward_items(
        {"query": ["<pad>Q: hi A: yo<pad><pad>", "other text"], "prompts": ["Q: hi ", "nope"]},
        LIMITS,
        "<pad>",
        finish,
    )
    eos = "<|im_end|>"
    assert [(i.prompt, i.response.text, i.row) for i in items] == [
        ("Q: hi ", "A: yo" + eos, 0),
        ("", "other text" + eos, 1),
    ]
    with pytest.raises(RequestError, match="'prompts' must be a list with one entry per query"):
        get_reward_items({"query": ["Q: hi A: yo"], "prompts": "not a list"}, LIMITS, None, finish)


def test_score_items_turn_messages_into_prompt_and_last_turn():
    messages = [{"role": "user", "content": "p1"}, {"role": "assistant", "content": "g1"}]
    items = score_items(
        {"items": [{"messages": messages}, {"prompt": messages[:1], "response": "g2"}]}, LIMITS
    )
    assert (items[0].prompt, items[0].response, items[0].row) == (messages[:1], messages[1:], 0)
    assert items[1].response == [{"role": "assistant", "content": "g2"}] and items[1].row == 1
    with pytest.raises(RequestError, match="items"):
        score_items({"items": None}, LIMITS)


class _GatedScorer:
    """Scores each item as its response length; the first call waits for ``gate`` so requests pile up."""

    def __init__(self):
        self.gate, self.calls, self.started = threading.Event(), [], threading.Event()

    def features(self, items):
        return [ResponseFeatures([], list(item.response)) for item in items]

    def rewards(self, features):
        self.started.set()
        self.gate.wait(10)
        self.calls.append(["".join(f.response_ids) for f in features])
        return torch.tensor([float(len(f.response_ids)) for f in features])


def test_batcher_scores_waiting_requests_together_and_refuses_when_full():
    async def scenario():
        scorer = _GatedScorer()
        batcher = DynamicBatcher(scorer, max_queue_items=4, max_length=None)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit([ScoredResponse("", "a", "r", 0)], "query"))
        await asyncio.to_thread(scorer.started.wait, 10)  # the worker now holds the first request
        second = asyncio.ensure_future(batcher.submit([ScoredResponse("", "bb", "r", 0)] * 2, "query"))
        third = asyncio.ensure_future(batcher.submit([ScoredResponse("", "ccc", "r", 0)] * 2, "query"))
        await asyncio.sleep(0.05)
        with pytest.raises(RequestError, match="queue full") as full:
            await batcher.submit([ScoredResponse("", "d", "r", 0)], "query")
        scorer.gate.set()
        results = await asyncio.gather(first, second, third)
        batcher.close()
        return scorer.calls, [r.rewards for r in results], full.value.status

    calls, results, status = asyncio.run(scenario())
    assert calls == [["a"], ["bb", "bb", "ccc", "ccc"]]  # the two waiting requests share one call
    assert results == [[1.0], [2.0, 2.0], [3.0, 3.0]] and status == 503


def test_token_budget_bounds_every_forward_and_keeps_scores(reward_model):
    rng = random.Random(1)
    pairs = _texts(rng, 30)
    prompts, responses = [p for p, _ in pairs], [r for _, r in pairs]
    free = RewardScorer(reward_model, batch_size=64, device="cpu")
    for packing in (True, False):
        tight = RewardScorer(reward_model, batch_size=64, device="cpu", packing=packing, max_batch_tokens=24)
        features = tight.features([ScoredResponse(p, r) for p, r in pairs])
        batches = list(tight._packed_batches(features) if packing else tight._padded_batches(features))
        sizes = [b["input_ids"].numel() for _, b in batches]
        longest = max(len(f.prompt_ids) + len(f.response_ids) for f in features)
        assert len(batches) > 1 and max(sizes) <= max(24, longest)
        assert sorted(i for chunk, _ in batches for i in chunk) == list(range(len(pairs)))
        assert tight.score(prompts, responses) == pytest.approx(free.score(prompts, responses), abs=1e-5)


class _FailingOnceScorer(_GatedScorer):
    def rewards(self, features):
        if not self.calls:
            self.calls.append("failed")
            raise RuntimeError("out of memory")
        return super().rewards(features)


def test_a_model_failure_fails_its_requests_and_the_worker_serves_on():
    async def scenario():
        scorer = _FailingOnceScorer()
        scorer.gate.set()
        batcher = DynamicBatcher(scorer, max_queue_items=8, max_length=None)
        batcher.start()
        with pytest.raises(RuntimeError, match="out of memory"):
            await batcher.submit([ScoredResponse("", "a", "r", 0)], "query")
        after = await batcher.submit([ScoredResponse("", "bb", "r", 0)], "query")
        batcher.close()
        return after.rewards

    assert asyncio.run(scenario()) == [2.0]
