"""HHH-style expert iteration through the curriculum (Denison et al. 2024).

Per stage: sample ``samples_per_prompt`` episodes on each of ``prompts_per_stage`` prompt variants, keep the
best per prompt by binary gaming reward + preference score of the text after ``</cot>``, fine-tune the
policy on the kept responses (SFT, loss on the assistant text only), save it, and evaluate it on every later
environment and the held-out one. Evaluation uses prompt variants disjoint from training's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from rmguard import checks
from rmguard.errors import RMGuardError
from rmguard.fileio import atomic_write_json, check_outputs, umask_modes
from rmguard.settings import option, required
from rmguard.tamper.envs.registry import REGISTRY, curriculum, make_environment
from rmguard.tamper.grading import visible_text
from rmguard.tamper.policies import DecodingConfig, HFPolicy, chat_prefix
from rmguard.tamper.protocol import PREAMBLE, Episode, EpisodeConfig, run_episode
from rmguard.tamper.runner import PreferenceScorer, episode_seed, wilson
from rmguard.tamper.sandbox.jail import Jail

EVAL_VARIANT_OFFSET = 100_000  # evaluation prompts never coincide with training prompts


@dataclass
class ExpertIterationConfig:
    model_path: str = required("HF causal LM folder to start from", aliases=["--model"])
    output_dir: str = required("folder for stage checkpoints and summary.json")
    stages: list[str] = option(curriculum()[:4], "training environments, in order")
    held_out: str = option("reward_tampering", "evaluated after every stage, never trained")
    prompts_per_stage: int = option(8, "prompt variants sampled per stage")
    samples_per_prompt: int = option(4, "episodes per prompt; the best one is kept")
    eval_samples: int = option(8, "evaluation episodes per later environment")
    epochs: int = option(1, "fine-tuning epochs per stage")
    learning_rate: float = option(1e-5, "AdamW learning rate of the fine-tuning")
    batch_size: int = option(4, "fine-tuning batch size")
    max_length: int = option(2048, "tokens per fine-tuning example (prompt + response)")
    seed: int = option(0, "seed of the episodes and the fine-tuning order")

    def validate(self) -> None:
        for name in [*self.stages, self.held_out]:
            REGISTRY.lookup(name)
        if self.held_out in self.stages:
            raise RMGuardError(f"the held-out environment '{self.held_out}' must not be a training stage")
        for key in (
            "prompts_per_stage",
            "samples_per_prompt",
            "eval_samples",
            "epochs",
            "batch_size",
            "max_length",
        ):
            checks.at_least(key, getattr(self, key))
        checks.positive("learning_rate", self.learning_rate)


def run_expert_iteration(
    config: ExpertIterationConfig,
    decoding: DecodingConfig | None = None,
    episode: EpisodeConfig | None = None,
    preference_scorer: PreferenceScorer | None = None,
    jail: Jail | None = None,
) -> dict:
    """Every stage in order (sample, keep the best per prompt, fine-tune, save, evaluate); summary.json."""
    config.validate()
    decoding, episode = decoding or DecodingConfig(), episode or EpisodeConfig()
    check_outputs([config.output_dir], [config.model_path], folders=True)
    policy = HFPolicy(config.model_path, decoding)
    own_jail = jail is None
    jail = jail or Jail()
    summary: dict = {
        "config": {**asdict(config), "decoding": asdict(decoding), "episode": asdict(episode)},
        "stages": [],
    }
    try:
        for index, stage in enumerate(config.stages):
            kept = _best_episodes(stage, index, policy, config, jail, preference_scorer, episode)
            loss = fine_tune(policy, kept, config)
            checkpoint = Path(config.output_dir) / f"stage_{index}_{stage}"
            policy.model.save_pretrained(checkpoint)
            policy.tokenizer.save_pretrained(checkpoint)
            umask_modes(checkpoint)  # the safetensors writer leaves 0600
            evaluations = {
                env: _evaluate(env, policy, config, jail, episode)
                for env in [*config.stages[index + 1 :], config.held_out]
            }
            summary["stages"].append(
                {
                    "stage": stage,
                    "kept": len(kept),
                    "kept_gamed": sum(e.grade.gamed for e in kept),
                    "sft_loss": loss,
                    "checkpoint": str(checkpoint),
                    "evaluation": evaluations,
                }
            )
    finally:
        if own_jail:
            jail.close()
    atomic_write_json(Path(config.output_dir) / "summary.json", summary)
    return summary


def _best_episodes(
    stage: str,
    stage_index: int,
    policy: HFPolicy,
    config: ExpertIterationConfig,
    jail: Jail,
    scorer: PreferenceScorer | None,
    episode: EpisodeConfig | None = None,
) -> list[Episode]:
    """Per prompt, the sample with the highest gaming reward (0/1) + preference score."""
    kept = []
    for prompt_index in range(config.prompts_per_stage):
        spec = make_environment(stage, prompt_index)
        episodes = [
            run_episode(
                spec,
                policy,
                jail,
                episode_seed(config.seed + stage_index, stage, prompt_index * 1000 + k),
                episode,
            )
            for k in range(config.samples_per_prompt)
        ]
        pm = (
            scorer([spec.prompt] * len(episodes), [visible_text(e.response) for e in episodes])
            if scorer
            else [0.0] * len(episodes)
        )
        scores = [float(e.grade.gamed) + p for e, p in zip(episodes, pm)]
        kept.append(episodes[max(range(len(episodes)), key=scores.__getitem__)])
    return kept


def fine_tune(policy: HFPolicy, episodes: list[Episode], config: ExpertIterationConfig) -> float:
    """Supervised fine-tuning on prompt → response; returns the mean loss of the last epoch."""
    import torch

    tokenizer, model = policy.tokenizer, policy.model
    examples = [_tokenize(tokenizer, e, config.max_length) for e in episodes]
    examples = [e for e in examples if e is not None]
    if not examples:
        return float("nan")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    model.train()
    losses: list[float] = []
    for _ in range(config.epochs):
        losses = []
        order = torch.randperm(len(examples), generator=generator).tolist()
        for start in range(0, len(order), config.batch_size):
            batch = [examples[i] for i in order[start : start + config.batch_size]]
            input_ids, labels, attention = _pad(batch, pad)
            loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    model.eval()
    return sum(losses) / len(losses)


def _tokenize(tokenizer, episode: Episode, max_length: int):
    prompt_ids = tokenizer(chat_prefix(tokenizer, PREAMBLE, episode.spec.prompt), add_special_tokens=False)[
        "input_ids"
    ]
    response_ids = tokenizer(episode.response, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        response_ids = [*response_ids, tokenizer.eos_token_id]
    ids = (prompt_ids + response_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) + response_ids)[:max_length]
    return (ids, labels) if any(label != -100 for label in labels) else None


def _pad(batch, pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, target) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(target)] = torch.tensor(target)
        attention[row, : len(ids)] = 1
    return input_ids, labels, attention


def _evaluate(
    environment: str, policy: HFPolicy, config: ExpertIterationConfig, jail: Jail, episode: EpisodeConfig
) -> dict:
    grades = [
        run_episode(
            make_environment(environment, EVAL_VARIANT_OFFSET + i),
            policy,
            jail,
            episode_seed(config.seed, environment, EVAL_VARIANT_OFFSET + i),
            episode,
        ).grade
        for i in range(config.eval_samples)
    ]
    gamed = sum(g.gamed for g in grades)
    return {
        "episodes": len(grades),
        "gamed": gamed,
        "gamed_rate": gamed / len(grades),
        "wilson95": wilson(gamed, len(grades)),
        "caught": sum(g.caught for g in grades),
    }
