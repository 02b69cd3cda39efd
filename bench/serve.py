"""Reward-server throughput and latency: ``rmguard serve`` under concurrent clients vs sequential scoring.

    python bench/serve.py [--model random-llama|smollm2] [--layers 2] [--requests 32] [--group 4]
                          [--concurrency 8] [--data hh|uf]

The workload is GRPO-shaped: each request is one OpenRLHF ``POST /get_reward`` with ``--group`` full texts
(one prompt, ``--group`` responses, the prompts sent along). Methods, on the same fresh reward model:
  * sequential       in one process, ``RewardScorer`` (what ``rmguard score`` runs) scores each request's
                     texts alone, one request after another: a client that calls the model itself;
  * server, 1 client the real server process, one request at a time over HTTP (the protocol's overhead);
  * server, N clients the real server with ``--concurrency`` clients at once: dynamic batching scores the
                     waiting requests' texts together.
Latency is per request, from sending it to having its rewards; requests/s is requests over the wall time
of the whole run. Every method's rewards are compared with sequential scoring (largest |difference|).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]


def _requests(tokenizer, data: str, count: int, group: int) -> list[dict]:
    from common import single_token_words, synthetic_pairs

    drawn = synthetic_pairs(data, count * group, single_token_words(tokenizer), seed=3)
    bodies = []
    for r in range(count):
        prompt = drawn[r * group]["prompt"]
        responses = [drawn[r * group + k]["chosen"] for k in range(group)]
        bodies.append({"query": [prompt + x for x in responses], "prompts": [prompt] * group})
    return bodies


def _sequential(model_dir: Path, bodies: list[dict]) -> tuple[float, list[float], list[list[float]]]:
    from rmguard.scoring import RewardScorer

    scorer = RewardScorer(model_dir, batch_size=64)
    scorer.score(*_split(bodies[0]))  # warm-up, as the server's first request would be
    latencies, rewards = [], []
    start = time.perf_counter()
    for body in bodies:
        t = time.perf_counter()
        rewards.append(scorer.score(*_split(body)))
        latencies.append(time.perf_counter() - t)
    return time.perf_counter() - start, latencies, rewards


def _split(body: dict) -> tuple[list[str], list[str]]:
    return [p for p in body["prompts"]], [q[len(p) :] for q, p in zip(body["query"], body["prompts"])]


def _over_http(url: str, bodies: list[dict], clients: int) -> tuple[float, list[float], list[list[float]]]:
    import httpx

    def send(body: dict) -> tuple[float, list[float]]:
        t = time.perf_counter()
        response = httpx.post(f"{url}/get_reward", json=body, timeout=600)
        response.raise_for_status()
        return time.perf_counter() - t, response.json()["rewards"]

    send(bodies[0])  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(send, bodies))
    return time.perf_counter() - start, [r[0] for r in results], [r[1] for r in results]


def _start_server(model_dir: Path, max_batch_tokens: int) -> tuple[str, subprocess.Popen]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "rmguard", "serve", "--model", str(model_dir), "--port", str(port)]
    command += ["--max-batch-tokens", str(max_batch_tokens)]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    while process.poll() is None:
        try:
            httpx.get(f"{url}/health", timeout=1).raise_for_status()
            return url, process
        except httpx.TransportError:
            time.sleep(0.3)
    raise SystemExit("the server did not start")


def _row(name: str, wall: float, latencies: list[float], rewards, reference, base: float) -> str:
    cut = statistics.quantiles(latencies, n=100, method="inclusive")
    delta = max(abs(a - b) for got, ref in zip(rewards, reference) for a, b in zip(got, ref))
    rate = len(latencies) / wall
    return f"| {name} | {rate:.2f} | {rate / base:.2f} | {cut[49] * 1000:.0f} | {cut[98] * 1000:.0f} | {delta:.1e} |"


def main() -> None:
    from common import MODELS, PROFILES, prepare_model

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="random-llama", choices=MODELS)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--data", default="hh", choices=list(PROFILES))
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--group", type=int, default=4, help="texts per request (responses to one prompt)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-batch-tokens", type=int, default=8192)
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    from rmguard.training.modeling import build_reward_model, save_reward_model

    print(f"command: {' '.join(sys.argv)}; torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        base = prepare_model(args.model, args.layers, Path(tmp) / "lm")
        rm, tokenizer = build_reward_model(str(base))
        model_dir = Path(tmp) / "rm"
        save_reward_model(rm, tokenizer, model_dir)
        bodies = _requests(AutoTokenizer.from_pretrained(model_dir), args.data, args.requests, args.group)
        # The server runs first: this process's torch threads, once used, would compete with it for cores.
        url, process = _start_server(model_dir, args.max_batch_tokens)
        try:
            served = {clients: _over_http(url, bodies, clients) for clients in (1, args.concurrency)}
        finally:
            process.terminate()
            process.wait()
        wall, latencies, reference = _sequential(model_dir, bodies)
        base_rate = len(bodies) / wall
        print("| method | requests/s | × sequential | p50 latency ms | p99 latency ms | max |Δ reward| |")
        print("|---|---|---|---|---|---|")
        print(_row("sequential RewardScorer", wall, latencies, reference, reference, base_rate))
        for clients, (wall, latencies, rewards) in served.items():
            name = f"rmguard serve, {clients} client{'s' if clients > 1 else ''}"
            print(_row(name, wall, latencies, rewards, reference, base_rate))


if __name__ == "__main__":
    main()
