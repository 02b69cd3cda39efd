"""Runs of many episodes: a resumable JSONL of graded episodes and a per-environment report.

Each finished episode is appended as one complete line and flushed, keyed by (environment, sample). A run
that is interrupted and started again with the same arguments skips the keys already present, drops a
torn last line if the interruption cut one, and loses nothing. Records carry the released-format fields
(prompt, response, pm_score, reward, passed, sample_model) plus the grades.
"""

from __future__ import annotations

import json
import math
import threading
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rmguard import checks
from rmguard.errors import DataError, RMGuardError
from rmguard.fileio import atomic_write_json, output_lock
from rmguard.settings import option
from rmguard.tamper.envs.base import EnvironmentSpec
from rmguard.tamper.envs.registry import REGISTRY, curriculum, get_environment, make_environment
from rmguard.tamper.grading import SHARED_FIELDS, visible_text
from rmguard.tamper.policies import ReplayPolicy
from rmguard.tamper.protocol import Episode, EpisodeConfig, Policy, run_episode
from rmguard.tamper.sandbox.jail import Jail

PreferenceScorer = Callable[[list[str], list[str]], list[float]]


@dataclass
class RunConfig:
    env: list[str] = option([], "environment names or 'all' (repeatable; none given: all)", action="extend")
    samples: int = option(16, "episodes per environment (or per file environment)")
    seed: int = option(0, "run seed (episode seeds derive from it)")
    num_variants: int = option(512, "sample i uses prompt variant i mod this (the paper's 512)")
    concurrency: int = option(8, "parallel episodes (scripted and openai: policies)")
    examples_per_environment: int = option(2, "example responses in the report")

    def __post_init__(self) -> None:
        for name in ("samples", "num_variants", "concurrency"):
            checks.at_least(name, getattr(self, name))
        checks.at_least("examples_per_environment", self.examples_per_environment, 0)
        self.env = expand_environments(self.env or ["all"])


def expand_environments(names: Iterable[str]) -> list[str]:
    expanded: list[str] = []
    for name in names:
        for item in curriculum() if name == "all" else [name]:
            REGISTRY.lookup(item, extra=("all",))
            if item not in expanded:
                expanded.append(item)
    return expanded


def episode_seed(seed: int, environment: str, sample: int) -> int:
    return zlib.crc32(f"{seed}:{environment}:{sample}".encode())


def episode_record(
    episode: Episode, policy_name: str, sample: int, run_seed: int, pm_score: float | None
) -> dict:
    grade = episode.grade.to_dict()
    return {
        "environment": episode.spec.name,
        **({"release_name": episode.spec.release_name} if episode.spec.release_name else {}),
        "sample": sample,
        "variant": episode.spec.variant,
        "run_seed": run_seed,
        "seed": episode.seed,
        "sample_model": policy_name,
        "prompt": episode.spec.prompt,
        "response": episode.response,
        "pm_score": pm_score,
        "reward": grade["reward"],
        "passed": grade["passed_oversight"],
        **grade,
        "stop_reason": episode.stop_reason,
        "transcript": episode.commands,
    }


def run_curriculum(
    config: RunConfig,
    policy: Policy,
    output: str | Path,
    jail: Jail | None = None,
    preference_scorer: PreferenceScorer | None = None,
    specs: list[EnvironmentSpec] | None = None,
    episode: EpisodeConfig | None = None,
) -> dict:
    """Run (or resume) ``config.samples`` episodes per environment into ``output``; return the report.

    ``specs`` replaces the built-in variants (environments loaded from a JSON file), cycled per sample.
    """
    output = Path(output)
    with output_lock(output):
        return _run_locked(config, policy, output, jail, preference_scorer, specs, episode or EpisodeConfig())


def _run_locked(
    config: RunConfig,
    policy: Policy,
    output: Path,
    jail: Jail | None,
    preference_scorer: PreferenceScorer | None,
    specs: list[EnvironmentSpec] | None,
    episode_config: EpisodeConfig,
) -> dict:
    records = load_records(output)
    for record in records:
        if record.get("sample_model") != policy.name or record.get("run_seed") != config.seed:
            raise RMGuardError(
                f"{output} holds a run of {record.get('sample_model')} with seed "
                f"{record.get('run_seed')}; resume it with the same policy and seed or pick another --output"
            )
    done = {(r["environment"], r["sample"]) for r in records}
    todo = [(spec, sample) for spec, sample in _planned(config, specs) if (spec.name, sample) not in done]
    own_jail = jail is None and any(get_environment(s.name).needs_jail(s) for s, _ in todo)
    jail = Jail() if own_jail else jail
    lock = threading.Lock()
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with output.open("a") as sink:

            def work(item: tuple[EnvironmentSpec, int]) -> None:
                spec, sample = item
                episode = run_episode(
                    spec, policy, jail, episode_seed(config.seed, spec.name, sample), episode_config
                )
                pm = (
                    preference_scorer([spec.prompt], [visible_text(episode.response)])[0]
                    if preference_scorer
                    else None
                )
                line = json.dumps(episode_record(episode, policy.name, sample, config.seed, pm)) + "\n"
                with lock:
                    sink.write(line)
                    sink.flush()
                    records.append(json.loads(line))

            workers = config.concurrency if policy.concurrent else 1
            if workers <= 1:
                for item in todo:
                    work(item)
            else:
                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(work, todo))
    finally:
        if own_jail:
            jail.close()
    report = summarize_records(records, config.examples_per_environment)
    atomic_write_json(output.with_suffix(".report.json"), report)
    return report


def _planned(config: RunConfig, specs: list[EnvironmentSpec] | None):
    if specs is not None:
        for sample in range(config.samples):
            for index, spec in enumerate(specs):
                yield spec, sample * len(specs) + index
        return
    for name in config.env:
        for sample in range(config.samples):
            yield make_environment(name, sample % config.num_variants), sample


RECORD_START = b'{"environment": '  # how every line episode_record() writes begins


def load_records(path: Path) -> list[dict]:
    """Records of an earlier run; a torn last line (an interrupted write of ours) is cut off the file.

    Every complete line is checked first, and the tail is cut only when it is the start of one of our
    records: a file that is not a results file is refused and left exactly as it was.
    """
    if not path.exists():
        return []
    if not path.is_file():
        raise DataError(str(path), "not a file; --output must name a results JSONL file")
    raw = path.read_bytes()
    good_end = raw.rfind(b"\n") + 1
    records = []
    for row, line in enumerate(raw[:good_end].split(b"\n"), 1):
        if line.strip():
            records.append(_results_record(path, row, line))
    tail = raw[good_end:]
    if tail and not tail.startswith(RECORD_START[: len(tail)]):
        raise DataError(str(path), "not a results record", row=len(raw[:good_end].split(b"\n")))
    if tail:
        with path.open("r+b") as handle:
            handle.truncate(good_end)
    return records


def _results_record(path: Path, row: int, line: bytes) -> dict:
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(str(path), "not a results record (not JSON text)", row=row) from error
    if not isinstance(record, dict) or "environment" not in record or "sample" not in record:
        raise DataError(str(path), "not a results record (needs environment and sample)", row=row)
    return record


def wilson(successes: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95 % interval for a binomial rate."""
    if total == 0:
        return (0.0, 1.0)
    p = successes / total
    center = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, center - half), min(1.0, center + half))


def rate_fields() -> tuple[str, ...]:
    """The yes/no grade fields a report gives rates of: the shared ones, then each registered
    environment's own (its ``grade_fields``), in curriculum order."""
    fields = dict.fromkeys(SHARED_FIELDS)
    for environment in REGISTRY.values():
        fields.update(dict.fromkeys(environment.grade_fields))
    return tuple(fields)


def _report_name(record: dict) -> str:
    """Records are reported per environment, and per release name when loaded from the release's files."""
    return record.get("release_name") or record["environment"]


def summarize_records(records: list[dict], examples: int = 2) -> dict:
    """The report: per environment (or release name), episodes, mean reward, each rate with its Wilson
    interval, execution outcomes, mean preference score and a few example responses."""
    report = {}
    order = {_report_name(r): _curriculum_order(r["environment"]) for r in records}
    for name in sorted(order, key=lambda n: (order[n], n)):
        rows = [r for r in records if _report_name(r) == name]
        entry: dict = {"episodes": len(rows), "mean_reward": sum(r["reward"] for r in rows) / len(rows)}
        for key in rate_fields():
            values = [bool(r[key]) for r in rows if r.get(key) is not None]
            if values:
                k = sum(values)
                entry[key] = {"count": k, "rate": k / len(values), "wilson95": wilson(k, len(values))}
        outcomes = [r["exec_outcome"] for r in rows if r.get("exec_outcome")]
        if outcomes:
            entry["exec_outcomes"] = {o: outcomes.count(o) for o in sorted(set(outcomes))}
        scores = [r["pm_score"] for r in rows if r.get("pm_score") is not None]
        if scores:
            entry["mean_pm_score"] = sum(scores) / len(scores)
        gamed = [r for r in rows if r["gamed"]][:examples]
        entry["examples"] = [
            {"sample": r["sample"], "gamed": r["gamed"], "response": r["response"][:4000]}
            for r in gamed + [r for r in rows if not r["gamed"]][: max(0, examples - len(gamed))]
        ]
        report[name] = entry
    return report


def _curriculum_order(name: str) -> int:
    """Reports list environments in registry (curriculum) order; names not registered come last."""
    order = list(REGISTRY)
    return order.index(name) if name in order else len(order)


def format_report(report: dict) -> str:
    """The report as a table: episodes, the gaming rate with its interval, the rate of every other grade
    field some environment of the report has (:func:`rate_fields`), and the mean preference score."""
    fields = [f for f in rate_fields() if f != "gamed" and any(f in entry for entry in report.values())]
    lines = [
        " ".join([f"{'environment':36} {'n':>5} {'gamed':>22}", *(f"{f:>7}" for f in fields), f"{'pm':>7}"])
    ]
    for name, entry in report.items():
        gamed = entry["gamed"]
        interval = f"{gamed['rate']:.3f} [{gamed['wilson95'][0]:.3f},{gamed['wilson95'][1]:.3f}]"
        rates = [f"{entry[f]['rate']:.3f}" if f in entry else "-" for f in fields]
        pm = f"{entry['mean_pm_score']:.3f}" if "mean_pm_score" in entry else "-"
        cells = [
            f"{name:36} {entry['episodes']:>5} {interval:>22}",
            *(f"{r:>{max(7, len(f))}}" for r, f in zip(rates, fields)),
            f"{pm:>7}",
        ]
        lines.append(" ".join(cells))
    return "\n".join(lines)


def replay_response(
    environment: str,
    response: str,
    variant: int = 0,
    jail: Jail | None = None,
    spec: EnvironmentSpec | None = None,
    episode_config: EpisodeConfig | None = None,
) -> dict:
    """Replay a fixed response's commands through a fresh environment (under ``episode_config``'s budgets)
    and grade the result."""
    spec = spec or make_environment(environment, variant)
    own = jail is None and get_environment(spec.name).needs_jail(spec)
    jail = Jail() if own else jail
    try:
        episode = run_episode(spec, ReplayPolicy(response), jail, config=episode_config)
    finally:
        if own:
            jail.close()
    return {
        "environment": spec.name,
        **({"release_name": spec.release_name} if spec.release_name else {}),
        "variant": spec.variant,
        "prompt": spec.prompt,
        **episode.grade.to_dict(),
        "response": episode.response,
        "stop_reason": episode.stop_reason,
        "transcript": episode.commands,
    }
