"""Readers and official scoring of the 2025–26 reward-model benchmarks, as entries of ``EVAL_KINDS``.

Each kind reads one file in its benchmark's published format (docs/evaluation.md has the sources):
    judgebench       ``pair_id, source, question, response_A, response_B, label`` (ScalerLab/JudgeBench
                     data/*.jsonl): both orders, net vote, official (micro) and macro averages
    rmb_pairwise     ``pair_uid, conversation_input, chosen.answer, reject.answer, category_path`` (RMB_dataset/
                     Pairwise_set/**.json): chosen > rejected
    rmb_bon          ``bon_uid, conversation_input, bon_best.answer, loser_list[].answer, category_path``
                     (RMB_dataset/BoN_set/**.json): the best strictly above every loser
    ppe_preference   ``question_id, prompt, response_1, response_2, winner`` (PPE-Human-Preference-V1):
                     accuracy on the rows a human decided (ties left out, counted)
    ppe_correctness  ``question_id, prompt, response_1..response_K, scores, sampled_conflict_pairs``
                     (PPE-*-Best-of-K): accuracy on the conflict pairs, the best-of-K curve
The rules are the pure functions of :mod:`rmguard.eval.metrics`; this module maps rows to items and
rewards to those functions' inputs.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from rmguard.data.formats import as_reply, as_user_turn, check_text
from rmguard.errors import DataError
from rmguard.eval import metrics as rm
from rmguard.eval.eval_sets import EVAL_KINDS, EvalKind, EvalSet, Rows, with_ci
from rmguard.eval.intervals import stratified_interval

PPE_WINNERS = ("model_a", "model_b")
PPE_TIES = ("tie", "tie (bothbad)")


def _field(row: dict[str, Any], name: str, spec: str, number: int) -> Any:
    if row.get(name) is None:
        raise DataError(spec, "missing field", row=number, field=name)
    return row[name]


def _text(row: dict[str, Any], name: str, spec: str, number: int) -> Any:
    return check_text(_field(row, name, spec, number), spec, number, name)


def _answer(value: Any, spec: str, number: int, name: str) -> str:
    """RMB's response objects ``{"llm_name": ..., "answer": ...}``: the answer text."""
    if not isinstance(value, dict):
        raise DataError(spec, "expected an object with an 'answer'", row=number, field=name)
    return check_text(value.get("answer"), spec, number, f"{name}.answer")


def _conversation(row: dict[str, Any], spec: str, number: int) -> Any:
    messages = _text(row, "conversation_input", spec, number)
    if not isinstance(messages, list) or not messages:
        raise DataError(spec, "expected a non-empty list of messages", row=number, field="conversation_input")
    return messages


# ----------------------------------------------------------------------------------------------- readers


def _read_judgebench(rows: Rows, spec: str, out: EvalSet) -> None:
    for number, row in rows:
        label = _field(row, "label", spec, number)
        if label not in rm.JUDGEBENCH_LABELS:
            raise DataError(spec, f"expected 'A>B' or 'B>A', got {label!r}", row=number, field="label")
        question = as_user_turn(_text(row, "question", spec, number))
        responses = [as_reply(_text(row, f"response_{side}", spec, number)) for side in "AB"]
        source = str(_field(row, "source", spec, number))
        out.add(question, responses, str(row.get("pair_id", number)), source)
        out.meta.append({"label": label})


def _read_rmb_pairwise(rows: Rows, spec: str, out: EvalSet) -> None:
    for number, row in rows:
        chosen = _answer(_field(row, "chosen", spec, number), spec, number, "chosen")
        rejected = _answer(_field(row, "reject", spec, number), spec, number, "reject")
        path = str(_field(row, "category_path", spec, number))
        out.add(
            _conversation(row, spec, number),
            [as_reply(chosen), as_reply(rejected)],
            str(row.get("pair_uid", number)),
            path,
        )


def _read_rmb_bon(rows: Rows, spec: str, out: EvalSet) -> None:
    for number, row in rows:
        best = _answer(_field(row, "bon_best", spec, number), spec, number, "bon_best")
        losers = _field(row, "loser_list", spec, number)
        if not isinstance(losers, list) or not losers:
            raise DataError(spec, "expected a non-empty list of responses", row=number, field="loser_list")
        texts = [best] + [_answer(x, spec, number, f"loser_list[{i}]") for i, x in enumerate(losers)]
        path = str(_field(row, "category_path", spec, number))
        out.add(
            _conversation(row, spec, number),
            [as_reply(t) for t in texts],
            str(row.get("bon_uid", number)),
            path,
        )


def _read_ppe_preference(rows: Rows, spec: str, out: EvalSet) -> None:
    for number, row in rows:
        winner = _field(row, "winner", spec, number)
        if winner not in PPE_WINNERS + PPE_TIES:
            raise DataError(
                spec, f"expected one of {PPE_WINNERS + PPE_TIES}, got {winner!r}", row=number, field="winner"
            )
        prompt = as_user_turn(_text(row, "prompt", spec, number))
        responses = [as_reply(_text(row, f"response_{i}", spec, number)) for i in (1, 2)]
        out.add(prompt, responses, str(row.get("question_id", number)), row.get("language"))
        out.meta.append({"winner": winner})


def _read_ppe_correctness(rows: Rows, spec: str, out: EvalSet) -> None:
    for number, row in rows:
        scores = _field(row, "scores", spec, number)
        if (
            not isinstance(scores, list)
            or len(scores) < 2
            or not all(isinstance(s, (bool, int, float)) for s in scores)
        ):
            raise DataError(
                spec, "expected a list of at least two correctness scores", row=number, field="scores"
            )
        pairs = _field(row, "sampled_conflict_pairs", spec, number)
        if not isinstance(pairs, list) or not all(
            isinstance(p, list)
            and len(p) == 2
            and all(isinstance(i, int) and 0 <= i < len(scores) for i in p)
            and scores[p[0]] != scores[p[1]]
            for p in pairs
        ):
            raise DataError(
                spec,
                f"expected pairs [i, j] of response indices below {len(scores)} with different scores",
                row=number,
                field="sampled_conflict_pairs",
            )
        prompt = as_user_turn(_text(row, "prompt", spec, number))
        responses = [as_reply(_text(row, f"response_{i + 1}", spec, number)) for i in range(len(scores))]
        out.add(prompt, responses, str(row.get("question_id", number)), row.get("model_name"))
        out.meta.append({"scores": [float(s) for s in scores], "pairs": pairs})


# ----------------------------------------------------------------------------------------------- metrics


def _rewards(eval_set: EvalSet, rewards: np.ndarray) -> list[np.ndarray]:
    return [rewards[np.asarray(group)] for group in eval_set.groups]


def _judgebench(eval_set: EvalSet, rewards: np.ndarray, seed: int, resamples: int) -> dict[str, Any]:
    groups = _rewards(eval_set, rewards)
    labels = [m["label"] for m in eval_set.meta]
    votes = [rm.judgebench_vote(r[0], r[1], label) for r, label in zip(groups, labels)]
    single = [rm.judgebench_vote(r[0], r[1], label, both_orders=False) for r, label in zip(groups, labels)]
    sources = [str(s) for s in eval_set.subsets]
    scores = rm.judgebench_scores(votes, sources)
    correct = (np.array(votes) > 0).astype(float)
    _, low, high = stratified_interval(
        correct, [rm.judgebench_category(s) for s in sources], resamples=resamples, seed=seed
    )
    return {
        "pairs": len(votes),
        **scores,
        **with_ci("accuracy", correct, seed, resamples),
        "macro_accuracy_ci_low": low,
        "macro_accuracy_ci_high": high,
        "single_game_accuracy": float(np.mean(np.array(single) > 0)),
    }


def _by_subset(values: np.ndarray, subsets: list[str]) -> dict[str, dict[str, float]]:
    grouped: dict[str, list[float]] = defaultdict(list)
    for value, subset in zip(values, subsets):
        grouped[subset].append(float(value))
    return {s: {"accuracy": float(np.mean(v)), "records": len(v)} for s, v in grouped.items()}


def rmb_correct(eval_set: EvalSet, rewards: np.ndarray) -> np.ndarray:
    """Per RMB record (pairwise or Best-of-N): 1.0 when the best response's reward is strictly the highest."""
    return np.array([rm.strictly_best(r[0], r[1:]) for r in _rewards(eval_set, rewards)], dtype=float)


def _rmb(eval_set: EvalSet, rewards: np.ndarray, seed: int, resamples: int) -> dict[str, Any]:
    """Pooled over the records of every file read, as my_run_rm.py's ``sum(results) / len(results)``."""
    correct = rmb_correct(eval_set, rewards)
    paths = [str(s) for s in eval_set.subsets]
    goals = {g: v["accuracy"] for g, v in _by_subset(correct, [rm.rmb_goal(p) for p in paths]).items()}
    return {
        "records": len(correct),
        **with_ci("accuracy", correct, seed, resamples),
        "goals": goals,
        "scenarios": _by_subset(correct, paths),
    }


def _ppe_preference(eval_set: EvalSet, rewards: np.ndarray, seed: int, resamples: int) -> dict[str, Any]:
    correct = [
        float(r[0] > r[1]) if m["winner"] == "model_a" else float(r[1] > r[0])
        for r, m in zip(_rewards(eval_set, rewards), eval_set.meta)
        if m["winner"] in PPE_WINNERS
    ]
    if not correct:
        raise rm.MetricError(f"{eval_set.path}: no row has a winner (every row is a tie)")
    return {
        "pairs": len(correct),
        "ties_left_out": len(eval_set.meta) - len(correct),
        **with_ci("accuracy", np.array(correct), seed, resamples),
    }


def ppe_pair_correct(eval_set: EvalSet, rewards: np.ndarray) -> np.ndarray:
    """Per conflict pair of a PPE correctness file: 1.0 when the correct response outscores the incorrect one."""
    correct = []
    for r, m in zip(_rewards(eval_set, rewards), eval_set.meta):
        for i, j in m["pairs"]:
            better, worse = (i, j) if m["scores"][i] > m["scores"][j] else (j, i)
            correct.append(float(r[better] > r[worse]))
    return np.array(correct)


def _ppe_correctness(eval_set: EvalSet, rewards: np.ndarray, seed: int, resamples: int) -> dict[str, Any]:
    curves = [rm.best_of_k_curve(r, m["scores"]) for r, m in zip(_rewards(eval_set, rewards), eval_set.meta)]
    k = min(len(c) for c in curves)
    curve = np.mean([c[:k] for c in curves], axis=0)
    correct = ppe_pair_correct(eval_set, rewards)
    result = {
        "prompts": len(curves),
        "pairs": len(correct),
        "best_of_k_k": k,
        "best_of_k_curve": curve.tolist(),
    }
    result.update(with_ci("best_of_k", np.array([c[k - 1] for c in curves]), seed, resamples))
    result["best_of_k_max"] = float(curve.max())
    if len(correct):
        result.update(with_ci("accuracy", correct, seed, resamples))
    return result


def _has(*names: str):
    return lambda row: all(name in row for name in names)


for _name, _kind in {
    "judgebench": EvalKind(
        _has("response_A", "response_B", "label"), _read_judgebench, [_judgebench], "accuracy"
    ),
    "rmb_pairwise": EvalKind(_has("conversation_input", "reject"), _read_rmb_pairwise, [_rmb], "accuracy"),
    "rmb_bon": EvalKind(_has("conversation_input", "bon_best"), _read_rmb_bon, [_rmb], "accuracy"),
    "ppe_preference": EvalKind(
        _has("response_1", "response_2", "winner"), _read_ppe_preference, [_ppe_preference], "accuracy"
    ),
    "ppe_correctness": EvalKind(
        _has("scores", "sampled_conflict_pairs"), _read_ppe_correctness, [_ppe_correctness], "accuracy"
    ),
}.items():
    EVAL_KINDS.register(_name, _kind)
