"""``rmguard study-rl``: the study's RLOO arm, as the BSR paper's gold-over-training figure.

1. **world** — one world built by the study's own code, exactly as ``rmguard study`` builds world
   ``world_seed``: the pool, the rubric labels with the study's noise and labelling seed, the world's
   splits (``pipeline``), and its proxies trained at full depth by rmguard's trainer with the study's
   settings, rows, seed and head (``worlds.train_proxy``). The study deletes a proxy once it has scored the
   pool; here each checkpoint is kept, complete (every layer: the frozen ones are saved with the rest), and
   RLOO reads it through rmguard's loading code, so it scores any new sample of the policy at full depth.
2. **arms** — ``rmguard rloo`` (TRL's RLOOTrainer) against each proxy, from the same initial policy, with
   the same RL seeds, the world's training prompts to optimise on and the study's held-out (Best-of-N)
   prompts to track on: no proxy saw a pair of them. Every ``eval_steps`` the policy answers each held-out
   prompt once; proxy, gold, length and KL(π ‖ π_ref) are recorded per prompt. An arm is finished when its
   ``arms/<proxy>-seed<s>.json`` exists; a rerun skips finished arms (and finished proxies).
3. **report** — per proxy, every tracked value per eval step with a 95 % two-stage bootstrap interval
   (RL seeds, then the shared held-out prompts; percentile, so inside the statistic's range); gold's
   cross-fitted drop from its peak step to the last (``statistics.cross_fitted_drops``, steps in place of
   Best-of-N's n); gold at the last step and the drop against BT's, paired by seed and prompt; Holm over
   that family. ``report.json`` and the figures gold and proxy against KL, gold against step.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from rmguard.errors import ConfigError
from rmguard.fileio import atomic_write_json, atomic_write_jsonl, output_lock, read_json
from rmguard.overopt.study import statistics
from rmguard.overopt.study.design import BASELINE
from rmguard.overopt.study.headline import label
from rmguard.overopt.study.labels import LabelCondition, world_splits
from rmguard.overopt.study.pool import study_pool

Progress = Callable[[str, int, int], None]
TRACKED = ("gold", "proxy", "kl", "length")
ARM_SET = frozenset({"policy", "prompts", "eval_prompts", "proxies", "gold", "output_dir"})  # per arm


@dataclass
class RlStudyConfig:
    """The RLOO arm of the study. ``world`` holds StudyConfig fields (the world and its proxies' training,
    as ``rmguard study`` reads them; its ``seeds`` and ``objectives`` come from ``world_seed`` and
    ``proxies``); ``rloo`` holds ``rmguard rloo``'s settings (RlooConfig fields) shared by every arm;
    ``sampling`` its SamplingConfig fields (the seed is each arm's RL seed)."""

    output_dir: str = "runs/study-rl"
    world: dict[str, Any] = field(default_factory=dict)
    world_seed: int = 0
    proxies: list[str] = field(default_factory=lambda: ["bt", "bsr", "grm"])
    rl_seeds: list[int] = field(default_factory=lambda: [0])
    rloo: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    resamples: int = statistics.RESAMPLES

    def __post_init__(self) -> None:
        if not self.proxies or not self.rl_seeds:
            raise ConfigError("study-rl needs at least one proxy and one RL seed")
        if len(set(self.rl_seeds)) != len(self.rl_seeds) or len(set(self.proxies)) != len(self.proxies):
            raise ConfigError(f"proxies and rl_seeds must not repeat, got {self.proxies} and {self.rl_seeds}")
        self.study_config()
        for seed in self.rl_seeds:
            self.arm_configs("-", "-", "-", "-", seed)

    def study_config(self) -> Any:
        """The world's StudyConfig (one world: ``world_seed``; its objectives: the proxies)."""
        from rmguard.overopt.study.pipeline import StudyConfig

        given = sorted({"seeds", "objectives", "output_dir"} & set(self.world))
        if given:
            raise ConfigError(f"world: {', '.join(given)} are set by world_seed, proxies and output_dir")
        values = {**self.world, "seeds": [self.world_seed], "objectives": list(self.proxies)}
        if values.get("prompts_dataset"):
            values.setdefault("generate", True)  # as StudyConfig.from_yaml: other prompts need their pool
        return _build(StudyConfig, "world", {**values, "output_dir": str(Path(self.output_dir) / "world")})

    def arm_configs(self, policy: str, prompts: str, eval_prompts: str, proxy: str, seed: int) -> tuple:
        """(RlooConfig, SamplingConfig) of one arm."""
        from rmguard.overopt.generation import SamplingConfig
        from rmguard.overopt.rloo import RLOO_SAMPLING, RlooConfig

        for section, reserved in (("rloo", ARM_SET), ("sampling", {"seed"})):
            given = sorted(reserved & set(getattr(self, section)))
            if given:
                raise ConfigError(f"{section}: {', '.join(given)} are set per arm by study-rl")
        arm = {"policy": policy, "prompts": prompts, "eval_prompts": eval_prompts, "proxies": [proxy]}
        arm.update(gold=self.study_config().gold, output_dir="-")  # the study's gold, tracked only
        rloo = _build(RlooConfig, "rloo", {**self.rloo, **arm})
        sampling = _build(
            SamplingConfig, "sampling", {**asdict(RLOO_SAMPLING), **self.sampling, "seed": seed}
        )
        return rloo, sampling

    @classmethod
    def from_yaml(cls, path: str | Path, output_dir: str | None = None) -> RlStudyConfig:
        """The arm in a YAML file of this class's fields (unknown fields are an error, naming the file)."""
        from rmguard.training.config import read_yaml_mapping

        values = read_yaml_mapping(path)
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"{path}: unknown study-rl field(s): {', '.join(unknown)}")
        for section in ("world", "rloo", "sampling"):
            if not isinstance(values.get(section, {}), dict):
                raise ConfigError(f"{path}: {section} must be a mapping of field: value")
        if output_dir is not None:
            values["output_dir"] = output_dir
        try:
            return cls(**values)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None


def _build(kind: type, section: str, values: dict[str, Any]) -> Any:
    """``kind(**values)``: unknown fields refused, YAML's text values typed as the fields read them."""
    from rmguard.settings import coerce, field_types

    types = field_types(kind)
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(f"{section}: unknown field(s) {', '.join(unknown)} (see {kind.__name__})")
    try:
        return kind(**{name: coerce(f"{section}.{name}", types[name], v) for name, v in values.items()})
    except TypeError as error:  # a value of the wrong type meets a comparison in a check
        raise ConfigError(f"{section}: a field has a value of the wrong type ({error})") from None


# ----------------------------------------------------------------------------------------------- the run


def run_rl_study(config: RlStudyConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Build the world, train its proxies, run every unfinished arm and write ``report.json`` and the
    figures under ``config.output_dir`` (locked against a second writer for the whole run)."""
    out = Path(config.output_dir)
    with output_lock(out):
        return _rl_study(config, out, progress or (lambda *_: None))


def _rl_study(config: RlStudyConfig, out: Path, progress: Progress) -> dict[str, Any]:
    from rmguard.overopt.bon import finite_json
    from rmguard.overopt.study.proxies import proxy_model

    study = config.study_config()
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    world = build_world(study, config.world_seed, out / "world", progress)
    timings["world and proxies"] = round(time.perf_counter() - clock, 1)
    arms = {}
    for name in config.proxies:
        for seed in config.rl_seeds:
            arms[name, seed] = run_arm(config, world, name, seed, out / "arms", progress)
    timings["arms (this run)"] = round(time.perf_counter() - clock - timings["world and proxies"], 1)
    arrays, steps = arm_arrays(config.proxies, config.rl_seeds, arms)
    progress("analyse", 0, 1)
    result = analyse_arms(arrays, steps, config.resamples)
    progress("analyse", 1, 1)
    report = finite_json(
        {
            "headline": {"answer": answer(result, steps), **result["headline"]},
            "curves": result["curves"],
            "steps": steps,
            "world": {
                "seed": config.world_seed,
                "training_pairs": world["pairs"],
                "train_prompts": world["train_prompts"],
                "heldout_prompts": world["heldout_prompts"],
                "proxy_model": proxy_model(study),
            },
            "proxies_seconds": world["seconds"],  # each proxy's and arm's own run, also when resumed
            "arms_seconds": {f"{n}-seed{s}": arm["seconds"] for (n, s), arm in arms.items()},
            "timings_s": timings,
            "config": asdict(config),
        }
    )
    write_figures(result["curves"], steps, out)
    atomic_write_json(out / "report.json", report)
    return report


def build_world(study: Any, seed: int, folder: Path, progress: Progress) -> dict[str, Any]:
    """The world's prompt files and proxy checkpoints (name → folder), built by the study's own steps."""
    from rmguard.gold import GoldScorer
    from rmguard.overopt.study import pipeline
    from rmguard.overopt.study.proxies import training_values
    from rmguard.overopt.study.worlds import WorldJob, train_proxy

    gold = GoldScorer(study.gold, batch_size=study.score_batch_size)  # fails fast on a bad gold
    records, bon = pipeline.world_records(study, study_pool(study, folder, progress))
    responses = folder / "data" / "responses.jsonl"
    atomic_write_jsonl(responses, records)
    # the arm's world is the main condition's (uniform noise at label_noise): no other condition is labelled
    main = replace(study, length_bias=None, label_noises=None)
    splits = world_splits(main, responses, gold, bon, folder)[LabelCondition(study.label_noise)][seed]
    held = set(bon.ids)
    prompt_files = {
        "train_prompts": [r["prompt"] for r in records if r["id"] not in held],
        "heldout_prompts": list(bon.prompts),
    }
    world: dict[str, Any] = {}
    for name, prompts in prompt_files.items():
        atomic_write_jsonl(folder / "data" / f"rl_{name}.jsonl", [{"prompt": p} for p in prompts])
        world[name] = len(prompts)
        world[f"{name}_file"] = str(folder / "data" / f"rl_{name}.jsonl")
    # the study's WorldJob for this world; no table: the arm scores the policy's own samples
    job = WorldJob(
        seed,
        study.label_noise,
        str(splits),
        str(folder / "proxies.npz"),
        "",
        [],
        [],
        {},
        study.objectives,
        [],
        [1.0],
        1,
        training_values(study),
        study.trainable_layers,
        study.score_batch_size,
    )
    world["proxies"], world["policy"], world["pairs"] = {}, study.policy, None
    for k, name in enumerate(study.objectives):
        progress("train proxies (full depth)", k, len(study.objectives))
        done = folder / "proxies" / f"{name}.json"
        if not done.is_file():
            start = time.perf_counter()
            pairs = train_proxy(job, name)
            seconds = round(time.perf_counter() - start, 1)
            atomic_write_json(
                done, {"objective": name, "world_seed": seed, "pairs": pairs, "seconds": seconds}
            )
        world["proxies"][name] = str(folder / "proxies" / name)
        world["pairs"] = read_json(done)["pairs"]
        world.setdefault("seconds", {})[name] = read_json(done).get("seconds")
    progress("train proxies (full depth)", len(study.objectives), len(study.objectives))
    return world


def run_arm(
    config: RlStudyConfig, world: dict[str, Any], name: str, seed: int, folder: Path, progress: Progress
) -> dict[str, Any]:
    """One arm's summary (``rmguard rloo``'s, with its cost): read back if finished, else run from scratch."""
    from rmguard.overopt.rloo import run_rloo

    done = folder / f"{name}-seed{seed}.json"
    if done.is_file():
        return read_json(done)
    arm = folder / f"{name}-seed{seed}"
    shutil.rmtree(arm, ignore_errors=True)  # an interrupted arm starts over
    rloo, sampling = config.arm_configs(
        world["policy"],
        world["train_prompts_file"],
        world["heldout_prompts_file"],
        world["proxies"][name],
        seed,
    )
    rloo.output_dir = str(arm)
    start = time.perf_counter()
    summary = run_rloo(
        rloo, sampling, lambda _, done, total: progress(f"rloo {name} seed {seed}", done, total)
    )
    summary["seconds"] = round(time.perf_counter() - start, 1)
    atomic_write_json(done, summary)
    return summary


# ----------------------------------------------------------------------------------------------- analysis


def arm_arrays(
    proxies: list[str], seeds: list[int], arms: dict[tuple[str, int], dict[str, Any]]
) -> tuple[dict[str, dict[str, np.ndarray]], list[int]]:
    """(proxy → metric → [seeds, prompts, eval steps] array, the eval steps) from the arms' summaries."""
    steps = [int(row["step"]) for row in arms[proxies[0], seeds[0]]["tracking"]]
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for name in proxies:
        for seed in seeds:
            got = [int(row["step"]) for row in arms[name, seed]["tracking"]]
            if got != steps:
                raise ConfigError(f"arm {name} seed {seed} tracked steps {got}, the others {steps}")
        arrays[name] = {
            metric: np.array(
                [[ev[metric] for ev in arms[name, seed]["per_prompt"]] for seed in seeds], dtype=float
            ).transpose(0, 2, 1)
            for metric in TRACKED
        }
    return arrays, steps


def analyse_arms(
    arrays: dict[str, dict[str, np.ndarray]], steps: list[int], resamples: int = statistics.RESAMPLES
) -> dict[str, Any]:
    """Curves with intervals per proxy and the primary family (every drop; gold at the last step and the
    drop against BT's), Holm-adjusted. ``arrays``: proxy → metric → [S, P, K]."""
    curves = {
        name: {
            metric: [
                statistics.hierarchical_interval(list(a[:, :, k]), resamples=resamples, crossed=True)
                for k in range(len(steps))
            ]
            for metric, a in metrics.items()
        }
        for name, metrics in arrays.items()
    }
    names = list(arrays)
    points, replicates = statistics.cross_fitted_drops(
        [arrays[n]["gold"] for n in names], resamples=min(resamples, 2000)
    )
    drops = {n: statistics.describe(points[i], replicates[:, i]) for i, n in enumerate(names)}
    paired: dict[str, dict[str, Any]] = {}
    if BASELINE in arrays:
        base = names.index(BASELINE)
        for i, name in enumerate(names):
            if name == BASELINE:
                continue
            diff = arrays[name]["gold"][:, :, -1] - arrays[BASELINE]["gold"][:, :, -1]
            paired[f"{name} - {BASELINE}"] = {
                "gold_at_end": statistics.hierarchical_interval(
                    list(diff), resamples=resamples, crossed=True
                ),
                "gold_drop": statistics.describe(
                    points[i] - points[base], replicates[:, i] - replicates[:, base]
                ),
            }
    statistics.adjust_family([*drops.values(), *(e for p in paired.values() for e in p.values())])
    rows = {
        name: {
            "gold_start": curves[name]["gold"][0],
            "gold_end": curves[name]["gold"][-1],
            "gold_peak_step": steps[int(np.argmax([c["mean"] for c in curves[name]["gold"]]))],
            "gold_drop": drops[name],
            "kl_end": curves[name]["kl"][-1],
            "length_end": curves[name]["length"][-1],
            "proxy_gain": float(curves[name]["proxy"][-1]["mean"] - curves[name]["proxy"][0]["mean"]),
        }
        for name in names
    }
    return {"curves": curves, "headline": {"proxies": rows, "paired_differences": paired}}


def _fmt(entry: dict[str, Any]) -> str:
    low, high = entry["ci"]
    return f"{entry['mean']:+.3f} [{low:+.3f}, {high:+.3f}]"


def answer(result: dict[str, Any], steps: list[int]) -> list[str]:
    """The headline in sentences, from the numbers only."""
    rows, paired = result["headline"]["proxies"], result["headline"]["paired_differences"]
    lines = []
    for name, row in rows.items():
        drop = row["gold_drop"]
        verdict = (
            "falls after its peak" if drop["resolved"] and drop["mean"] > 0 else "does not fall resolvably"
        )
        lines.append(
            f"{label(name)}: gold {row['gold_start']['mean']:.3f} → {row['gold_end']['mean']:.3f} over "
            f"{steps[-1]} steps (KL {row['kl_end']['mean']:.2f} nats, length {row['length_end']['mean']:.1f} "
            f"tokens); peak at step {row['gold_peak_step']}, cross-fitted drop {_fmt(drop)}: {verdict} "
            f"(adjusted p {drop['p_adjusted']:.2g})."
        )
    for pair, entries in paired.items():
        end = entries["gold_at_end"]
        state = "resolved" if end["resolved"] else f"not resolved, MDE {end['mde']:.3f}"
        name = pair.split(" - ")[0]
        lines.append(f"{label(name)} − BT, gold at the last step: {_fmt(end)} ({state}).")
    return lines


def write_figures(curves: dict[str, Any], steps: list[int], out: Path) -> None:
    """gold and proxy (its gain over step 0) against KL, gold against step, one line per proxy."""
    from rmguard.overopt.plots import line_plot, save_png

    def band(name: str, metric: str, x: list[float], shift: float = 0.0) -> tuple:
        entries = curves[name][metric]
        return (
            x,
            [e["mean"] - shift for e in entries],
            [e["ci"][0] - shift for e in entries],
            [e["ci"][1] - shift for e in entries],
        )

    over = "95% interval: RL seeds, then held-out prompts (two-stage bootstrap)"
    kl = {n: [e["mean"] for e in c["kl"]] for n, c in curves.items()}
    for metric, x_name, xs, ylabel in (
        ("gold", "kl", kl, "gold reward (rubric)"),
        ("proxy", "kl", kl, "proxy score − its value at step 0"),
        ("gold", "step", dict.fromkeys(curves, steps), "gold reward (rubric)"),
    ):
        lines = {
            label(n): band(n, metric, xs[n], c[metric][0]["mean"] if metric == "proxy" else 0.0)
            for n, c in curves.items()
        }
        xlabel = "KL(π ‖ π_ref), nats (held-out estimate)" if x_name == "kl" else "RLOO step"
        figure = line_plot(lines, xlabel, ylabel, f"RLOO against each proxy, held-out prompts\n{over}")
        save_png(figure, out / f"{metric}_vs_{x_name}.png")
