"""The study's worlds: every seed's own splits, every proxy trained at full depth by rmguard's trainer.

A *world* is one draw of the study's randomness, seed s: which styles are held out, which responses of a
training prompt form training pairs, which pairs are flipped (``make_splits(seed=s)``), and the proxies'
initialisation and batch order (seed s). In each world:

* every objective is trained on the world's pairs (``proxies.py``: the whole backbone, its top layers
  trained, the frozen part's outputs read from the study's store; RRM's pairs augmented with the other
  training prompts' responses), and the sweep objectives also on nested subsets of them
  (``data_fractions``: the first fraction of one seeded permutation, so smaller sets lie inside larger);
* ``members`` BT proxies share the BT row's initialisation (seed s) and differ in their label-noise draw
  (the pairs' gold order re-flipped with the member's own seed) and in the order of their pairs: WARM
  averages their weights (``training/averaging``), the ensembles combine their standardized rewards;
* ``bt_length_calibrated`` is BT's rewards calibrated for length (:func:`length_calibrated`).

A proxy's checkpoint lives only until it is scored. A finished world is saved as
``worlds/<noise>/seed<s>.npz`` (rewards and ‖h‖ of every response per row, each row's log-prob per token
of the chosen training responses, InfoRM's latent means μ of every response), so a rerun resumes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rmguard.errors import ConfigError
from rmguard.fileio import atomic_write_bytes, atomic_write_jsonl
from rmguard.overopt.study.analysis import BonPool, Member, World, combine
from rmguard.overopt.study.design import (
    BASELINE,
    ENSEMBLES,
    LENGTH_CALIBRATED,
    OBJECTIVES,
    WARM,
    sized_name,
)


def text_key(prompt: Any, response: Any) -> str:
    """One key per (chat prompt, chat response): how a world's rows find their table rows."""
    return json.dumps([prompt, response], sort_keys=True, ensure_ascii=False)


@dataclass
class WorldJob:
    """One world to train and score (everything a worker process needs, picklable)."""

    seed: int
    noise: float
    splits: str  # the world's make_splits folder
    output: str  # worlds/<noise>/seed<s>.npz
    frozen: str  # the folder of the study's frozen outputs (proxies.frozen_pass)
    prompts: list[Any]  # every table row, scored by every proxy
    responses: list[Any]
    keys: dict[str, int]
    objectives: list[str]
    sweep_objectives: list[str]
    fractions: list[float]
    members: int
    training: dict[str, Any] = field(default_factory=dict)  # TrainConfig values shared by every proxy
    trainable_layers: int = 1
    score_batch_size: int = 64
    length_bias: float = 0.0  # the world's label condition is a length bias (eval.labeling)


def _rows(job: WorldJob) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(job.splits, "train.jsonl").read_text().splitlines() if line]


def _member_rows(
    rows: list[dict[str, Any]], noise: float, length_bias: float, seed: int
) -> list[dict[str, Any]]:
    """The same pairs with the world's label condition drawn again under ``seed`` (gold order restored,
    then ``corrupt_labels``), in an order shuffled by ``seed``."""
    from rmguard.eval.labeling import corrupt_labels, swap_pair

    redrawn = [dict(r) for r in rows]
    for row in redrawn:
        if row.get("label_flipped"):
            swap_pair(row)
            row["label_flipped"] = False
    corrupt_labels(redrawn, noise, length_bias, seed)
    random.Random(seed).shuffle(redrawn)
    return redrawn


class _World:
    """One world's work folder, its table rows and what its proxies gave."""

    def __init__(self, job: WorldJob):
        from rmguard.overopt.study.proxies import frozen_layers

        self.job = job
        self.work = Path(job.output).with_suffix("")
        self.frozen = frozen_layers(job.training["model_name_or_path"], job.trainable_layers)
        self.out: dict[str, np.ndarray] = {}
        # every proxy shares the backbone's tokenizer and text rule: the table is tokenized once per world
        self.features: tuple[Any, list[Any]] | None = None

    def train(self, name: str, objective: str, rows: list[dict[str, Any]]) -> Path:
        from rmguard.training.config import load_config
        from rmguard.training.trainer import train

        data, folder = self.work / f"{name}.jsonl", self.work / name
        atomic_write_jsonl(data, rows)
        shutil.rmtree(folder, ignore_errors=True)  # a world interrupted before its .npz starts over
        values = {**self.job.training, **OBJECTIVES[objective], "seed": self.job.seed}
        values.update(train_file=str(data), output_dir=str(folder), freeze_layers=self.frozen)
        if OBJECTIVES[objective]["objective"] == "grm":
            values["head_type"] = "linear"  # the same reward head for every objective
        config = load_config(None, values)
        if config.reuse_frozen_outputs and config.pair_augmentation != "none":
            self.cover_augmented_pairs(config)
        with contextlib.redirect_stdout(io.StringIO()):  # the trainer's console lines, once per proxy
            train(config)
        return folder

    def cover_augmented_pairs(self, config: Any) -> None:
        """Run the frozen part once over every distinct sequence of the augmented training pairs, tokenized
        as training tokenizes them (``load_features``), adding them to the store. RRM puts other prompts'
        responses under each prompt: contexts the study's frozen pass never saw, each in several augmented
        pairs, so training would otherwise run the whole model on nearly every batch of its first epoch;
        after this it runs the trainable top only, as every other proxy does."""
        from rmguard.overopt.study.proxies import untrained_model
        from rmguard.scoring import RewardScorer
        from rmguard.training.loaders import load_features
        from rmguard.training.tokenization import ResponseFeatures

        model, tokenizer = untrained_model(config.model_name_or_path, self.job.trainable_layers)
        features, _ = load_features(
            config, config.train_file, config.train_split, tokenizer, lambda _: None, config.pair_augmentation
        )
        sequences = {
            (tuple(f.prompt_ids), tuple(r)) for f in features for r in (f.chosen_ids, f.rejected_ids)
        }
        scorer = RewardScorer((model, tokenizer), batch_size=self.job.score_batch_size)
        scorer.rewards([ResponseFeatures(list(p), list(r)) for p, r in sorted(sequences)])

    def score(self, name: str, folder: Path, chosen: list[int] | None = None) -> None:
        """Rewards and ‖h‖ of every table row (and an InfoRM model's latent means) and, given ``chosen``
        rows, their mean log-prob per token (an objective's row: a pass of the LM head over every chosen
        token, not spent on members)."""
        from rmguard.data.records import ScoredResponse
        from rmguard.eval.latent import hidden_latents
        from rmguard.overopt.study.proxies import lm_logprobs
        from rmguard.scoring import RewardScorer
        from rmguard.training import frozen_prefix
        from rmguard.training.modeling import load_reward_model

        model, tokenizer = load_reward_model(folder)
        model.requires_grad_(False)
        if self.job.training.get("reuse_frozen_outputs"):
            frozen_prefix.attach(model, self.frozen)
        scorer = RewardScorer((model, tokenizer), batch_size=self.job.score_batch_size)
        rule = (scorer.text_rule, scorer.max_length)
        if self.features is None or self.features[0] != rule:
            pairs = zip(self.job.prompts, self.job.responses)
            items = [ScoredResponse(p, r, "<memory>", i + 1) for i, (p, r) in enumerate(pairs)]
            self.features = rule, scorer.features(items)
        rewards, hidden = scorer.rewards_with_hidden(self.features[1])
        self.out[f"rewards/{name}"], self.out[f"norms/{name}"] = rewards.numpy(), hidden.norm(dim=1).numpy()
        if model.latent_head is not None:
            self.out[f"latents/{name}"] = hidden_latents(model, hidden)
        if chosen is None:
            return
        try:
            sums, counts = lm_logprobs(
                model,
                tokenizer,
                [self.job.prompts[i] for i in chosen],
                [self.job.responses[i] for i in chosen],
            )
            self.out[f"logp/{name}"] = np.array([sums.sum() / counts.sum()])
        except ConfigError:  # a standard model on an untied backbone has no LM head: no log-prob row
            pass

    def save(self) -> str:
        buffer = io.BytesIO()
        np.savez(buffer, **self.out)
        atomic_write_bytes(Path(self.job.output), buffer.getvalue())
        shutil.rmtree(self.work, ignore_errors=True)
        return self.job.output


def _chosen_rows(job: WorldJob, rows: list[dict[str, Any]]) -> list[int]:
    """The table rows of the world's chosen training responses, each once."""
    return sorted({job.keys[text_key(r["prompt"], r["chosen"])] for r in rows})


def length_calibrated(rewards: np.ndarray, responses: list[Any], reference: list[int]) -> np.ndarray:
    """r̂ = r − f(ℓ) of every table row (Huang et al. 2025), with f fitted on the rows ``reference``: the
    functions ``rmguard calibrate`` fits with and :class:`rmguard.scoring.RewardScorer` applies, at their
    defaults (``rmguard.calibration``: characters, LOWESS with frac 1.0)."""
    from rmguard.calibration import fit_length_calibration, response_length

    lengths = np.array([response_length(r) for r in responses], dtype=float)
    index = np.asarray(reference, dtype=int)
    return fit_length_calibration(lengths[index], rewards[index]).apply(rewards, lengths)


def _pair_sides(job: WorldJob, rows: list[dict[str, Any]]) -> list[int]:
    """The table rows of both sides of every training pair, in file order (chosen, then rejected): the
    reference set ``rmguard calibrate --data train.jsonl`` reads. The training responses are the
    calibration's reference, not the evaluated ones (the paper's code fits on the set it scores): they are
    the responses the proxy was fitted on, so no held-out or Best-of-N response informs f."""
    return [job.keys[text_key(r["prompt"], r[side])] for r in rows for side in ("chosen", "rejected")]


def fit_world(job: WorldJob, threads: int | None = None) -> str:
    """Train and score every row of one world (module docstring); returns the saved .npz path."""
    import torch

    from rmguard.overopt.study.proxies import FROZEN_FILE
    from rmguard.training import frozen_prefix
    from rmguard.training.averaging import average_reward_models

    if threads:
        torch.set_num_threads(threads)
    if job.training.get("reuse_frozen_outputs"):
        frozen_prefix.load(Path(job.frozen) / FROZEN_FILE)
    world = _World(job)
    rows = _rows(job)
    chosen = _chosen_rows(job, rows)
    world.out["pairs"] = np.array([len(rows)])
    world.out["chosen"] = np.array(chosen)
    order = np.random.default_rng(job.seed).permutation(len(rows))
    for fraction in job.fractions:
        subset = [rows[k] for k in np.sort(order[: max(2, round(fraction * len(rows)))])]
        for objective in job.objectives if fraction == 1 else job.sweep_objectives:
            if objective not in OBJECTIVES:  # a row of another's model (LENGTH_CALIBRATED), made below
                continue
            name = sized_name(objective, fraction)
            folder = world.train(name, objective, subset)
            world.score(name, folder, chosen if fraction == 1 else None)
            if name == BASELINE and LENGTH_CALIBRATED in job.objectives:
                world.out[f"rewards/{LENGTH_CALIBRATED}"] = length_calibrated(
                    world.out[f"rewards/{name}"], job.responses, _pair_sides(job, rows)
                )
            if fraction != 1 or objective != BASELINE or job.members < 2:
                shutil.rmtree(folder)
                continue
            members = [folder]
            for m in range(1, job.members):
                member = f"{BASELINE}-member{m}"
                members.append(
                    world.train(
                        member, BASELINE, _member_rows(rows, job.noise, job.length_bias, 1000 * job.seed + m)
                    )
                )
                world.score(member, members[-1])
            with contextlib.redirect_stdout(io.StringIO()):
                average_reward_models([str(f) for f in members], world.work / WARM)
            world.score(WARM, world.work / WARM)
            for f in [*members, world.work / WARM]:
                shutil.rmtree(f)
    return world.save()


def train_proxy(job: WorldJob, objective: str) -> int:
    """Train ``objective``'s proxy of ``job``'s world on all its pairs, as :func:`fit_world` trains that row,
    and keep its checkpoint (``<job.output without .npz>/<objective>``: the RL arm optimises against it);
    returns the number of training pairs."""
    rows = _rows(job)
    _World(job).train(objective, objective, rows)
    return len(rows)


def finished(job: WorldJob) -> bool:
    """Whether the world's saved .npz holds every row the job asks for (one saved by an earlier run with
    fewer objectives is fitted again rather than leaving the new rows out of the report)."""
    if not Path(job.output).is_file():
        return False
    with np.load(job.output) as saved:
        rows = {key.split("/", 1)[1] for key in saved.files if key.startswith("rewards/")}
    sweep = {sized_name(o, f) for f in job.fractions if f != 1 for o in job.sweep_objectives}
    return set(job.objectives) | sweep <= rows


def fit_worlds(jobs: list[WorldJob], workers: int, progress: Any = None) -> dict[str, dict[str, np.ndarray]]:
    """Every unfinished world fitted by ``workers`` processes (one thread each); output path → its arrays."""
    import multiprocessing

    todo = [job for job in jobs if not finished(job)]
    done = len(jobs) - len(todo)
    stage = "train and score proxies (worlds)"
    if progress:
        progress(stage, done, len(jobs))
    if workers <= 1 or len(todo) <= 1:
        for job in todo:
            fit_world(job)
            done += 1
            if progress:
                progress(stage, done, len(jobs))
    else:
        context = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for future in as_completed([pool.submit(fit_world, job, threads) for job in todo]):
                future.result()
                done += 1
                if progress:
                    progress(stage, done, len(jobs))
    return {job.output: dict(np.load(job.output)) for job in jobs}


# ----------------------------------------------------------------------------------------------- the parent's side


@dataclass
class ResponseTable:
    """Every response the study scores, once: the labelled records' responses, then the Best-of-N pool."""

    prompts: list[Any]
    responses: list[Any]
    keys: dict[str, int]
    token_rows: list[int]  # responses of the training prompts (their log-probs are measured)
    bon_index: np.ndarray  # [P, N] rows of the Best-of-N pool

    def rows(self, eval_set: Any) -> np.ndarray:
        return np.array([self.keys[text_key(p, r)] for p, r in zip(eval_set.prompts, eval_set.responses)])


def response_table(records: list[dict[str, Any]], bon: BonPool) -> ResponseTable:
    from rmguard.data.formats import as_reply, as_user_turn, chat_pair

    held = set(bon.ids)
    prompts, responses, token_rows = [], [], []
    for record in records:
        for completion in record["completions"]:
            if record["id"] not in held:
                token_rows.append(len(prompts))
            prompts.append(as_user_turn(record["prompt"]))
            responses.append(as_reply(completion["response"]))
    start = len(prompts)
    for prompt, rows in zip(bon.prompts, bon.responses):
        for response in rows:
            p, r = chat_pair(prompt, response)
            prompts.append(p)
            responses.append(r)
    keys = {}
    for k, (p, r) in enumerate(zip(prompts, responses)):
        keys.setdefault(text_key(p, r), k)
    shape = (len(bon.prompts), len(bon.responses[0]))
    return ResponseTable(
        prompts, responses, keys, token_rows, start + np.arange(shape[0] * shape[1]).reshape(shape)
    )


def world_members(
    arrays: dict[str, np.ndarray], sets: list[Any], table: ResponseTable, extra: dict[str, np.ndarray]
) -> dict[str, Member]:
    """row → member (rewards and ‖h‖ per evaluation file, Best-of-N rewards, log-prob, InfoRM's latents of
    the Best-of-N pool) for one world; ``extra`` holds scores of every table row that have no ‖h‖ (the
    controls)."""
    rows = {s.name: table.rows(s) for s in sets}
    names = [k.split("/", 1)[1] for k in arrays if k.startswith("rewards/")]
    members = {}
    for name in names:
        rewards, norms = arrays[f"rewards/{name}"], arrays.get(f"norms/{name}")
        logp, latents = arrays.get(f"logp/{name}"), arrays.get(f"latents/{name}")
        members[name] = Member(
            {f: (rewards[i], None if norms is None else norms[i]) for f, i in rows.items()},
            rewards[table.bon_index],
            None if logp is None else float(logp[0]),
            None if latents is None else latents[table.bon_index],
        )
    for name, scores in extra.items():
        members[name] = Member({f: (scores[i], None) for f, i in rows.items()}, scores[table.bon_index])
    return members


def eval_sets(folder: Path) -> list[Any]:
    """A world's four scenario files, as evaluation sets."""
    from rmguard.eval.eval_sets import load_eval_set
    from rmguard.eval.splits import SCENARIOS

    return [load_eval_set(str(folder / f"{name}.jsonl")) for name in SCENARIOS]


def world_view(
    config: Any,
    job: WorldJob,
    arrays: dict[str, np.ndarray],
    table: ResponseTable,
    controls: dict[str, np.ndarray],
    backbone: dict[str, np.ndarray],
) -> World:
    """One world as the analysis reads it: its sets, every row's member, the untrained model's ‖h‖ per
    split and log-prob per token of the world's chosen training responses."""
    sets = eval_sets(Path(job.splits))
    members = world_members(arrays, sets, table, controls)
    bt = [
        members[n]
        for n in [BASELINE, *(f"{BASELINE}-member{m}" for m in range(1, config.members))]
        if n in members
    ]
    if len(bt) > 1:
        members.update({name: combine(bt, how) for name, how in ENSEMBLES.items()})
    chosen = arrays["chosen"]
    tokens = backbone["logp_tokens"][chosen].sum()
    return World(
        job.seed,
        sets,
        members,
        {s.name: backbone["norms"][table.rows(s)] for s in sets},
        float(backbone["logp_sum"][chosen].sum() / tokens) if tokens > 0 else None,
    )
