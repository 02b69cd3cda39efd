"""Each benchmark's reader on rows in its published format, scored with hand-made rewards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rmguard.errors import DataError
from rmguard.eval.eval_sets import file_metrics, load_eval_set
from rmguard.eval.rewordbench import transform_set
from rmguard.eval.suite import merge_sets

import benchmark_rows as rows


def _write(path, data, array: bool = False):
    path.write_text(json.dumps(data) if array else "".join(json.dumps(r) + "\n" for r in data))
    return str(path)


def test_judgebench_both_orders_single_game_and_macro(tmp_path):
    data = rows.judgebench(3)
    data[0].update(label="A>B", source="mmlu-pro-law")
    data[1].update(label="B>A", source="mmlu-pro-math")
    data[2].update(label="A>B", source="livecodebench")
    eval_set = load_eval_set(_write(tmp_path / "dataset=judgebench,response_model=x.jsonl", data))
    assert eval_set.kind == "judgebench" and eval_set.groups == [[0, 1], [2, 3], [4, 5]]
    # right; a tie (labelled B>A); wrong
    summary = file_metrics(eval_set, np.array([2.0, 1.0, 1.0, 1.0, 1.0, 2.0]), resamples=50)
    assert summary["accuracy"] == pytest.approx(1 / 3) and summary["ties"] == 1
    assert summary["single_game_accuracy"] == pytest.approx(2 / 3)  # one order hands the tie to B
    assert summary["categories"] == {"mmlu-pro": 0.5, "livecodebench": 0.0}
    assert summary["macro_accuracy"] == pytest.approx(0.25)
    assert summary["macro_accuracy_ci_low"] <= 0.25 <= summary["macro_accuracy_ci_high"]


def test_rmb_pairwise_and_best_of_n_files(tmp_path):
    pairwise = load_eval_set(
        _write(tmp_path / "S1.json", rows.rmb_pairwise("Harmlessness/S1", 2), array=True)
    )
    assert pairwise.kind == "rmb_pairwise" and pairwise.prompts[0][0]["role"] == "user"
    summary = file_metrics(pairwise, np.array([1.0, 0.0, 0.5, 0.5]), resamples=50)  # right, tie
    assert summary["accuracy"] == 0.5 and summary["goals"] == {"Harmlessness": 0.5}
    bon = load_eval_set(
        _write(tmp_path / "Discussion.json", rows.rmb_bon("Helpfulness/Chat/Discussion", 2), array=True)
    )
    assert bon.kind == "rmb_bon" and [len(g) for g in bon.groups] == [4, 4]
    # record 1: best 3 over losers 1, 2, 0 → right; record 2: best 2 ties a loser → wrong
    summary = file_metrics(bon, np.array([3, 1, 2, 0, 2, 1, 2, 0], dtype=float), resamples=50)
    assert summary["accuracy"] == 0.5
    assert summary["scenarios"] == {"BoN_set/Helpfulness/Chat/Discussion": {"accuracy": 0.5, "records": 2}}
    merged = merge_sets("pairwise", [pairwise, pairwise])
    assert merged.groups[2] == [4, 5] and len(merged.subsets) == 4


def test_ppe_preference_leaves_ties_out(tmp_path):
    eval_set = load_eval_set(_write(tmp_path / "ppe.jsonl", rows.ppe_preference(3)))  # model_a, model_b, tie
    assert eval_set.kind == "ppe_preference"
    summary = file_metrics(eval_set, np.array([2.0, 1.0, 2.0, 1.0, 0.0, 5.0]), resamples=50)
    assert summary["accuracy"] == 0.5 and summary["pairs"] == 2 and summary["ties_left_out"] == 1


def test_ppe_correctness_pairs_and_best_of_k(tmp_path):
    eval_set = load_eval_set(_write(tmp_path / "ppe_math.jsonl", rows.ppe_correctness(1)))
    assert eval_set.kind == "ppe_correctness" and eval_set.groups == [[0, 1, 2, 3]]
    # scores 1, 0, 1, 0; pairs (0,1) right, (2,3) tied rewards → wrong, (1,2) right
    summary = file_metrics(eval_set, np.array([3.0, 1.0, 2.0, 2.0]), resamples=50)
    assert summary["accuracy"] == pytest.approx(2 / 3) and summary["pairs"] == 3
    assert summary["best_of_k_curve"] == [0.5, 0.75, 0.875, 1.0]
    assert summary["best_of_k"] == 1.0 and summary["best_of_k_k"] == 4


def test_rule_based_transform_keeps_ids_and_rewrites_one_side(tmp_path):
    eval_set = load_eval_set(_write(tmp_path / "rb.jsonl", rows.rewardbench(2)))
    quoted = transform_set(eval_set, "add_quotes")
    assert quoted.ids == eval_set.ids and quoted.responses == eval_set.responses
    assert quoted.prompts[0][0]["content"] == f'"{eval_set.prompts[0][0]["content"]}"'
    boxed = transform_set(eval_set, "answer_header")
    assert boxed.prompts == eval_set.prompts


@pytest.mark.parametrize(
    ("name", "row", "array", "expect"),
    [
        ("judgebench label", {**rows.judgebench(1)[0], "label": "A=B"}, False, "line 2, field 'label'"),
        (
            "judgebench response",
            {**rows.judgebench(1)[0], "response_B": ""},
            False,
            "line 2, field 'response_B'",
        ),
        (
            "rmb answer",
            {**rows.rmb_pairwise("H/S1", 1)[0], "reject": {"llm_name": "m"}},
            True,
            "line 2, field 'reject.answer'",
        ),
        ("rmb losers", {**rows.rmb_bon("H/S1", 1)[0], "loser_list": []}, True, "line 2, field 'loser_list'"),
        ("ppe winner", {**rows.ppe_preference(1)[0], "winner": "model_c"}, False, "line 2, field 'winner'"),
        (
            "ppe pair",
            {**rows.ppe_correctness(1)[0], "sampled_conflict_pairs": [[0, 9]]},
            False,
            "line 2, field 'sampled_conflict_pairs'",
        ),
        (
            "ppe same-score pair",
            {**rows.ppe_correctness(1)[0], "sampled_conflict_pairs": [[0, 2]]},
            False,
            "line 2, field 'sampled_conflict_pairs'",
        ),
        ("ppe scores", {**rows.ppe_correctness(1)[0], "scores": "yes"}, False, "line 2, field 'scores'"),
    ],
)
def test_a_malformed_row_is_one_error_naming_file_row_and_field(tmp_path, name, row, array, expect):
    good = {
        "judgebench": rows.judgebench(1)[0],
        "rmb answer": rows.rmb_pairwise("H/S1", 1)[0],
        "rmb losers": rows.rmb_bon("H/S1", 1)[0],
    }
    first = next((v for k, v in good.items() if name.startswith(k)), None)
    first = first or (rows.ppe_preference(1)[0] if "winner" in name else rows.ppe_correctness(1)[0])
    path = _write(tmp_path / ("D.json" if array else "D.jsonl"), [first, row], array=array)
    with pytest.raises(DataError) as error:
        load_eval_set(path)
    message = str(error.value)
    assert message.startswith(path) and expect in message and "\n" not in message


def _rmbench_reference(records: list[dict]) -> float:
    """``compute_accuracy`` of THU-KEG/RM-Bench scripts/utils.py, its total: split by ``domain`` (chat, math,
    code, safety by prefix) when the records have one, else one pool; per pool the 3×3 matrix of
    1[chosen_i > rejected_j]; a domain's number is the mean of its hard, normal and easy; total = their mean."""

    def levels(pool):
        m = np.mean([[[c > r for r in x["score_rejected"]] for c in x["score_chosen"]] for x in pool], axis=0)
        return [m[np.triu_indices(3, 1)].mean(), np.diag(m).mean(), m[np.tril_indices(3, -1)].mean()]

    if "domain" not in records[0]:
        return float(np.mean(levels(records)))
    pools = [[x for x in records if x["domain"].startswith(d)] for d in ("chat", "math", "code", "safety")]
    return float(np.mean([np.mean(levels(pool)) for pool in pools if pool]))


@pytest.mark.parametrize("layout", ["total_dataset", "per-domain file"])
def test_rmbench_domains_come_from_the_domain_field_as_the_reference(tmp_path, layout):
    sources = ["xstest-should-refuse", "refusals-dangerous", "refusals-offensive", "xstest-should-respond"]
    domains = ["safety-refuse", "safety-refuse", "chat", "safety-response"]
    data = rows.rmbench(4)
    for row, source, domain in zip(data, sources, domains):
        row.pop("domain")
        row["subset"] = source
        if layout == "total_dataset":
            row["domain"] = domain
    eval_set = load_eval_set(_write(tmp_path / "rm.json", data, array=True))
    rewards = np.random.default_rng(3).normal(size=len(eval_set.responses)).round(1)  # ties included
    summary = file_metrics(eval_set, rewards)
    scored = [
        {**row, "score_chosen": rewards[g[:3]].tolist(), "score_rejected": rewards[g[3:]].tolist()}
        for row, g in zip(data, eval_set.groups)
    ]
    assert summary["accuracy"] == pytest.approx(_rmbench_reference(scored))
    expected = {"chat", "safety"} if layout == "total_dataset" else {"all"}
    assert set(summary["domains"]) == expected
