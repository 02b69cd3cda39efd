"""The cached-feature study: every seed's world (its own splits), every proxy fitted on cached features.

A *world* is one draw of the study's randomness, seed s: which styles are held out, which responses of a
training prompt form training pairs, which pairs are flipped (``make_splits(seed=s)``), and the proxies'
initialisation (seed s). In each world:

* every objective is fitted on the world's pairs, and the sweep objectives also on nested subsets of them
  (``data_fractions``: the first fraction of one seeded permutation, so smaller sets lie inside larger);
* ``members`` BT proxies share the BT row's initialisation and differ in the order of their batches and in
  their label-noise draw (the pairs' gold order re-flipped with the member's own seed): WARM averages their
  weights, the ensembles combine their standardized rewards.

A finished world is saved as ``worlds/<noise>/seed<s>.npz`` (rewards and ‖h‖ of every cached response per
row), so a rerun resumes.
"""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rmguard.fileio import atomic_write_bytes
from rmguard.overopt.demo.cached import FitSettings
from rmguard.overopt.demo.design import BASELINE, OBJECTIVES, WARM, sized_name


def text_key(prompt: Any, response: Any) -> str:
    """One key per (chat prompt, chat response): how a world's rows find their cached features."""
    return json.dumps([prompt, response], sort_keys=True, ensure_ascii=False)


@dataclass
class WorldJob:
    """One world to fit (everything a worker process needs, picklable)."""

    seed: int
    noise: float
    splits: str  # the world's make_splits folder
    output: str  # worlds/<noise>/seed<s>.npz
    features: str  # the cached features .npz
    keys: dict[str, int]
    objectives: list[str]
    sweep_objectives: list[str]
    fractions: list[float]
    members: int
    fit: FitSettings


def _pairs(job: WorldJob) -> tuple[np.ndarray, np.ndarray]:
    """(pairs [M, 2] of response indices as labelled, whether each pair's label was flipped [M])."""
    rows = [json.loads(line) for line in Path(job.splits, "train.jsonl").read_text().splitlines() if line]
    pairs = np.array([[job.keys[text_key(r["prompt"], r[k])] for k in ("chosen", "rejected")] for r in rows])
    return pairs, np.array([bool(r.get("label_flipped")) for r in rows])


def _member_pairs(pairs: np.ndarray, flipped: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """The same pairs with the label noise drawn again under ``seed`` (gold order restored, then flipped)."""
    from rmguard.eval.labeling import flip_indices

    gold_order = np.where(flipped[:, None], pairs[:, ::-1], pairs)
    redrawn = gold_order.copy()
    index = flip_indices(len(pairs), noise, seed)
    redrawn[index] = gold_order[index, ::-1]
    return redrawn


def _weight_average(members: list[Any]) -> Any:
    """WARM: one proxy whose adapter and head are the uniform average of the members' (which share their
    initialisation, so their weights lie in one basin)."""
    from rmguard.overopt.demo.cached import CachedProxy
    from rmguard.training.averaging import average_state_dicts

    warm = CachedProxy(members[0].head.in_features, members[0].down.out_features)
    warm.load_state_dict(average_state_dicts([m.state_dict() for m in members]))
    return warm


def fit_world(job: WorldJob, threads: int | None = None) -> str:
    """Fit and score every row of one world (module docstring); returns the saved .npz path."""
    import torch

    from rmguard.overopt.demo.cached import TokenTable, fit_cached_proxy, score_cached

    if threads:
        torch.set_num_threads(threads)
    saved = np.load(job.features)
    features = torch.from_numpy(saved["reward_states"].astype(np.float32))
    needs_tokens = any(OBJECTIVES[o]["objective"] == "grm" for o in {*job.objectives, *job.sweep_objectives})
    tokens = TokenTable(dict(saved)) if needs_tokens else None
    lengths = torch.from_numpy(saved["response_tokens"])
    pairs, flipped = _pairs(job)
    order = np.random.default_rng(job.seed).permutation(len(pairs))
    out: dict[str, np.ndarray] = {"pairs": np.array([len(pairs)])}

    def keep(name: str, proxy: Any) -> None:
        out[f"rewards/{name}"], out[f"norms/{name}"] = score_cached(proxy, features)

    for fraction in job.fractions:
        subset = pairs[np.sort(order[: max(2, round(fraction * len(pairs)))])]
        for objective in job.objectives if fraction == 1 else job.sweep_objectives:
            proxy = fit_cached_proxy(
                features, subset, OBJECTIVES[objective], job.fit, job.seed, job.seed, tokens, lengths
            )
            keep(sized_name(objective, fraction), proxy)
            if fraction == 1 and objective == BASELINE and job.members > 1:
                members = [proxy] + [
                    fit_cached_proxy(
                        features,
                        _member_pairs(pairs, flipped, job.noise, 1000 * job.seed + m),
                        OBJECTIVES[BASELINE],
                        job.fit,
                        job.seed,
                        1000 * job.seed + m,
                    )
                    for m in range(1, job.members)
                ]
                for m, member in enumerate(members[1:], start=1):
                    keep(f"{BASELINE}-member{m}", member)
                keep(WARM, _weight_average(members))
    buffer = io.BytesIO()
    np.savez(buffer, **out)
    atomic_write_bytes(Path(job.output), buffer.getvalue())
    return job.output


def fit_worlds(jobs: list[WorldJob], workers: int, progress: Any = None) -> dict[str, dict[str, np.ndarray]]:
    """Every unfinished world fitted by ``workers`` processes (one thread each); output path → its arrays."""
    import multiprocessing

    todo = [job for job in jobs if not Path(job.output).is_file()]
    done = len(jobs) - len(todo)
    if progress:
        progress("fit proxies on cached features", done, len(jobs))
    if workers <= 1 or len(todo) <= 1:
        for job in todo:
            fit_world(job)
            done += 1
            if progress:
                progress("fit proxies on cached features", done, len(jobs))
    else:
        context = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for future in as_completed([pool.submit(fit_world, job, threads) for job in todo]):
                future.result()
                done += 1
                if progress:
                    progress("fit proxies on cached features", done, len(jobs))
    return {job.output: dict(np.load(job.output)) for job in jobs}


# ----------------------------------------------------------------------------------------------- the parent's side


@dataclass
class ResponseTable:
    """Every response the study scores, once: the labelled records' responses, then the Best-of-N pool."""

    prompts: list[Any]
    responses: list[Any]
    keys: dict[str, int]
    token_rows: list[int]  # responses that can be training responses (GRM's token arrays)
    bon_index: np.ndarray  # [P, N] rows of the Best-of-N pool

    def rows(self, eval_set: Any) -> np.ndarray:
        return np.array([self.keys[text_key(p, r)] for p, r in zip(eval_set.prompts, eval_set.responses)])


def response_table(records: list[dict[str, Any]], bon: dict[str, Any]) -> ResponseTable:
    from rmguard.data.formats import as_reply, as_user_turn, chat_pair

    held = set(bon["ids"])
    prompts, responses, token_rows = [], [], []
    for record in records:
        for completion in record["completions"]:
            if record["id"] not in held:
                token_rows.append(len(prompts))
            prompts.append(as_user_turn(record["prompt"]))
            responses.append(as_reply(completion["response"]))
    start = len(prompts)
    for prompt, rows in zip(bon["prompts"], bon["responses"]):
        for response in rows:
            p, r = chat_pair(prompt, response)
            prompts.append(p)
            responses.append(r)
    keys = {}
    for k, (p, r) in enumerate(zip(prompts, responses)):
        keys.setdefault(text_key(p, r), k)
    shape = (len(bon["prompts"]), len(bon["responses"][0]))
    return ResponseTable(
        prompts, responses, keys, token_rows, start + np.arange(shape[0] * shape[1]).reshape(shape)
    )


def world_members(
    arrays: dict[str, np.ndarray], sets: list[Any], table: ResponseTable, extra: dict[str, np.ndarray]
) -> dict[str, dict[str, Any]]:
    """row → member (rewards and ‖h‖ per evaluation file, Best-of-N rewards) for one world; ``extra``
    holds scores of every table row that have no ‖h‖ (the controls)."""
    rows = {s.name: table.rows(s) for s in sets}
    names = [k.split("/", 1)[1] for k in arrays if k.startswith("rewards/")]
    members = {}
    for name in names:
        rewards, norms = arrays[f"rewards/{name}"], arrays[f"norms/{name}"]
        members[name] = {
            "files": {f: (rewards[i], norms[i]) for f, i in rows.items()},
            "bon": rewards[table.bon_index],
        }
    for name, scores in extra.items():
        members[name] = {
            "files": {f: (scores[i], None) for f, i in rows.items()},
            "bon": scores[table.bon_index],
        }
    return members
