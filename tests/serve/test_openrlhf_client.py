"""OpenRLHF's own remote-reward client against a real ``rmguard serve``.

OpenRLHF is no dependency of rmguard and its package needs DeepSpeed, Ray and vLLM; its client
(openrlhf/utils/agent.py, ``SingleTurnAgentExecutor._fetch_rewards_via_http``) needs only aiohttp. This test
loads that one module from an installed ``openrlhf`` (``pip install --no-deps openrlhf`` in any
environment; ``RMGUARD_OPENRLHF_SITE`` names the site-packages folder holding it when it is not importable
here), with its parent packages registered bare so that their heavy ``__init__`` imports do not run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from rmguard.training.modeling import build_reward_model, save_reward_model

from helpers import start_server


def _openrlhf_agent():
    site = os.environ.get("RMGUARD_OPENRLHF_SITE")
    spec = importlib.util.find_spec("openrlhf") if site is None else None
    root = Path(site) / "openrlhf" if site else (Path(spec.origin).parent if spec and spec.origin else None)
    if root is None or not (root / "utils" / "agent.py").is_file():
        pytest.skip("OpenRLHF is not installed (pip install --no-deps openrlhf; RMGUARD_OPENRLHF_SITE)")
    pytest.importorskip("aiohttp")
    for name, folder in (("openrlhf", root), ("openrlhf.utils", root / "utils")):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(folder)]
            sys.modules[name] = package
    agent_spec = importlib.util.spec_from_file_location("openrlhf.utils.agent", root / "utils" / "agent.py")
    agent = importlib.util.module_from_spec(agent_spec)
    agent_spec.loader.exec_module(agent)
    return agent


def test_openrlhfs_client_over_comma_separated_urls_gets_each_samples_reward(tiny_llama, tmp_path):
    agent = _openrlhf_agent()
    torch.manual_seed(0)
    model, tokenizer = build_reward_model(str(tiny_llama))
    save_reward_model(model, tokenizer, tmp_path / "rm", {"text_rule": "chat"})
    url, process = start_server(tmp_path / "rm")
    try:
        endpoint = f"{url}/get_reward"
        # train_ppo_ray.py splits --reward.remote_url on commas. OpenRLHF 0.11 rotates one sample's request
        # over the list; earlier clients shard it, so the servers beyond the first get an empty shard.
        executor = agent.SingleTurnAgentExecutor(remote_rm_url=[endpoint, endpoint])
        queries = [
            f"<|im_start|>user\np{i}<|im_end|>\n<|im_start|>assistant\ng{i} b{i}<|im_end|>" for i in range(8)
        ]
        prompts, labels = ["<|im_start|>user\n"] * 8, ["label"] * 8

        async def each_alone():
            return await asyncio.gather(
                *(
                    executor._fetch_rewards_via_http([q], [p], [y])
                    for q, p, y in zip(queries, prompts, labels)
                )
            )

        answers = asyncio.run(each_alone())
        whole = asyncio.run(executor._fetch_rewards_via_http(queries, prompts, labels))
        rewards = [r for shard in whole for r in shard["rewards"]]  # 8 samples over two URLs: 4 and 4
        assert len(rewards) == 8 and len(whole) == 2
        assert [a[0]["rewards"] for a in answers] == [[pytest.approx(r, abs=1e-5)] for r in rewards]
        assert all(a[0]["scores"] == a[0]["rewards"] and a[0]["extra_logs"] == {} for a in answers)
        assert all(
            shard == {"rewards": [], "scores": [], "extra_logs": {}} for a in answers for shard in a[1:]
        )
        empty = asyncio.run(agent.SingleTurnAgentExecutor(endpoint)._fetch_rewards_via_http([], [], []))
        assert empty in ([], [{"rewards": [], "scores": [], "extra_logs": {}}])
    finally:
        process.kill()
        process.wait()
