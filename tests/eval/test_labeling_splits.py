"""Gold labelling, label noise, the four scenario splits and the evaluation-file formats (no model needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rmguard.errors import ConfigError, DataError
from rmguard.eval.eval_sets import file_metrics, load_eval_set
from rmguard.eval.labeling import (
    companion_path,
    corrupt_labels,
    flip_count,
    flip_indices,
    label_file,
    length_bias_labels,
    length_biased_indices,
)
from rmguard.eval.splits import SPLITS, make_splits
from rmguard.training.modeling import build_reward_model, save_reward_model

from helpers import run_cli, write_jsonl
from synthetic_world import make_records

GOLD = str(Path(__file__).parents[1] / "synthetic_world.py") + ":gold"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("label")
    raw = write_jsonl(folder / "raw.jsonl", make_records(30, seed=1))
    label_file(str(raw), GOLD, folder / "labelled.jsonl", "all_pairs", 0.25, seed=0)
    return folder / "labelled.jsonl"


@pytest.mark.parametrize(
    "pairs,fraction", [(40, 0.25), (7, 0.25), (10, 0.0), (10, 1.0), (3, 0.5), (1000, 0.137)]
)
def test_label_noise_flips_exactly_the_rounded_fraction(pairs, fraction):
    flipped = flip_indices(pairs, fraction, seed=5)
    assert len(flipped) == len(set(flipped)) == flip_count(pairs, fraction) == int(fraction * pairs + 0.5)
    assert flipped == flip_indices(pairs, fraction, seed=5)
    with pytest.raises(ConfigError):
        flip_indices(pairs, 1.5, seed=0)


def _pair(chosen: str, rejected: str) -> dict:
    """A gold-ordered pair (chosen has the higher gold) of assistant replies."""
    reply = [{"role": "assistant", "content": chosen}], [{"role": "assistant", "content": rejected}]
    golds = {"chosen_gold": 1.0, "rejected_gold": 0.0, "chosen_model": "a", "rejected_model": "b"}
    return {"chosen": reply[0], "rejected": reply[1], **golds}


def test_length_bias_decides_exactly_the_drawn_pairs_by_characters():
    """Hand-computed: of 5 pairs, 4 differ in length (characters); with p = 1 length decides all 4, and the
    2 whose gold prefers the shorter response swap; with p = 0.5 exactly round(0.5 · 4) = 2 are drawn,
    and only those among them whose gold prefers the shorter response swap; with p = 0 nothing changes."""
    texts = [("long answer", "short"), ("tiny", "much longer"), ("same", "four"), ("ab", "abc"), ("xyz", "x")]
    lengths = [(len(a), len(b)) for a, b in texts]
    assert length_biased_indices(lengths, 1.0, seed=0) == [0, 1, 3, 4]  # pair 2 ties: never decided
    drawn = length_biased_indices(lengths, 0.5, seed=7)
    assert len(drawn) == 2 and set(drawn) <= {0, 1, 3, 4} and drawn == length_biased_indices(lengths, 0.5, 7)
    for share, want in ((1.0, {1, 3}), (0.5, set(drawn) & {1, 3}), (0.0, set())):
        rows = [_pair(a, b) for a, b in texts]
        assert length_bias_labels(rows, share, seed=7) == len(want)
        for k, row in enumerate(rows):
            assert row.get("label_flipped", False) == (k in want)
            assert row["chosen_gold"] == (0.0 if k in want else 1.0)  # gold travels with its response
            if k in want:
                assert row["chosen"][0]["content"] == texts[k][1]  # the longer one is now chosen
    with pytest.raises(ConfigError, match="two conditions"):
        corrupt_labels([_pair("a", "bb")], 0.25, 0.25, seed=0)
    with pytest.raises(ConfigError, match="length bias"):
        length_biased_indices(lengths, 1.5, seed=0)


def test_label_file_scores_every_response_and_records_noise(labelled):
    records = read_jsonl(labelled)
    assert len(records) == 30
    assert all("gold_score" in c and c["model"] for r in records for c in r["completions"])
    meta = json.loads(companion_path(labelled, "meta").read_text())
    pairs = read_jsonl(companion_path(labelled, "pairs"))
    assert meta["pairs"] == len(pairs) and meta["flipped"] == round(0.25 * len(pairs))
    assert sum(p["label_flipped"] for p in pairs) == meta["flipped"]
    for pair in pairs:  # gold scores travel with their responses; ties are never paired
        assert pair["chosen_gold"] != pair["rejected_gold"]
        assert (pair["chosen_gold"] < pair["rejected_gold"]) == pair["label_flipped"]


def test_splits_are_disjoint_and_deterministic(labelled, tmp_path):
    first = make_splits(str(labelled), tmp_path / "a", heldout_prompts=0.3, heldout_models=2, seed=3)
    make_splits(str(labelled), tmp_path / "b", heldout_prompts=0.3, heldout_models=2, seed=3)
    make_splits(str(labelled), tmp_path / "c", heldout_prompts=0.3, heldout_models=2, seed=4)
    for name in SPLITS:
        assert (tmp_path / "a" / f"{name}.jsonl").read_bytes() == (
            tmp_path / "b" / f"{name}.jsonl"
        ).read_bytes()
    assert any(
        (tmp_path / "a" / f"{n}.jsonl").read_bytes() != (tmp_path / "c" / f"{n}.jsonl").read_bytes()
        for n in SPLITS
    )
    assert first["disjointness"]["prompts_disjoint"] and first["disjointness"]["models_disjoint"]

    rows = {name: read_jsonl(tmp_path / "a" / f"{name}.jsonl") for name in SPLITS}
    held = set(first["heldout_models"])
    pair_models = {
        name: {m for r in rows[name] for m in (r["chosen_model"], r["rejected_model"])}
        for name in ("train", "val1_in_domain")
    }
    set_models = {name: {c["model"] for r in rows[name] for c in r["completions"]} for name in SPLITS[2:]}
    assert (
        not (pair_models["train"] | pair_models["val1_in_domain"] | set_models["val2_prompt_disjoint"]) & held
    )
    assert set_models["val3_response_disjoint"] | set_models["val4_mutual_disjoint"] <= held
    train_ids = {r["id"] for r in rows["train"]} | {r["id"] for r in rows["val3_response_disjoint"]}
    heldout_ids = {r["id"] for r in rows["val2_prompt_disjoint"]} | {
        r["id"] for r in rows["val4_mutual_disjoint"]
    }
    assert not train_ids & heldout_ids and len(heldout_ids) == 9
    train_responses = {
        (r["id"], r[side + "_model"]) for r in rows["train"] for side in ("chosen", "rejected")
    }
    val1_responses = {
        (r["id"], r[side + "_model"]) for r in rows["val1_in_domain"] for side in ("chosen", "rejected")
    }
    assert not train_responses & val1_responses
    # label noise (read from the label metadata) flips training pairs only
    assert first["counts"]["train"]["flipped"] == round(0.25 * first["counts"]["train"]["pairs"])
    assert not any(r["label_flipped"] for r in rows["val1_in_domain"])


def test_a_length_biased_world_has_the_same_splits_and_only_other_training_labels(tmp_path):
    """The length-biased condition read from the label metadata: the same seed gives the same splits and
    pairs as the uniform condition; only the training labels differ, each flipped one now preferring the
    longer response."""
    raw = write_jsonl(tmp_path / "raw.jsonl", make_records(30, seed=1))
    for name, noise, bias in (("uniform", 0.25, 0.0), ("length", 0.0, 0.5)):
        label_file(str(raw), GOLD, tmp_path / f"{name}.jsonl", "all_pairs", noise, 0, length_bias=bias)
        make_splits(str(tmp_path / f"{name}.jsonl"), tmp_path / name, 0.3, 2, seed=3)
    for split in SPLITS[1:]:
        assert (tmp_path / "uniform" / f"{split}.jsonl").read_bytes() == (
            tmp_path / "length" / f"{split}.jsonl"
        ).read_bytes()

    def gold_order(row: dict) -> tuple:
        pair = (row["rejected"], row["chosen"]) if row["label_flipped"] else (row["chosen"], row["rejected"])
        return row["prompt"], *pair

    uniform, length = (read_jsonl(tmp_path / n / "train.jsonl") for n in ("uniform", "length"))
    assert [gold_order(r) for r in uniform] == [gold_order(r) for r in length]
    flipped = [r for r in length if r["label_flipped"]]
    manifest = json.loads((tmp_path / "length" / "manifest.json").read_text())
    assert manifest["length_bias"] == 0.5 and manifest["counts"]["train"]["flipped"] == len(flipped) > 0
    assert all(len(r["chosen"][0]["content"]) > len(r["rejected"][0]["content"]) for r in flipped)


def test_split_by_model_names_and_bad_inputs(cli, labelled, tmp_path):
    manifest = make_splits(str(labelled), tmp_path / "n", 0.2, ["alpha", "foxtrot"], seed=0)
    assert manifest["heldout_models"] == ["alpha", "foxtrot"]
    with pytest.raises(ConfigError, match="do not occur"):
        make_splits(str(labelled), tmp_path / "x", 0.2, ["zulu"])
    with pytest.raises(ConfigError, match="two training models"):
        make_splits(str(labelled), tmp_path / "x", 0.2, 5)
    nameless = read_jsonl(labelled)
    del nameless[3]["completions"][1]["model"]
    path = write_jsonl(tmp_path / "nameless.jsonl", nameless)
    result = cli("split", "--data", str(path), "--output-dir", str(tmp_path / "y"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "line 4, field 'completions[1].model': no model name" in result.stderr


def test_label_rejects_an_unknown_gold_spec(cli, tmp_path):
    raw = write_jsonl(tmp_path / "raw.jsonl", make_records(3))
    with pytest.raises(ConfigError, match="not-a-spec: no such model folder"):
        label_file(str(raw), "not-a-spec", tmp_path / "out.jsonl")
    result = cli(
        "label",
        "--data",
        str(raw),
        "--gold",
        "no_such_module_xyz:gold",
        "--output",
        str(tmp_path / "out.jsonl"),
    )
    assert (
        result.returncode == 2
        and "cannot import no_such_module_xyz" in result.stderr
        and "Traceback" not in result.stderr
    )
    assert not (tmp_path / "out.jsonl").exists()
    both = ("--label-noise", "0.25", "--length-bias", "0.25")
    result = cli("label", "--data", str(raw), "--gold", GOLD, "--output", str(tmp_path / "out.jsonl"), *both)
    assert result.returncode == 2 and "two conditions" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "out.jsonl").exists()


def test_ranking_file_with_one_response_per_prompt_is_rejected(tmp_path):
    rows = [
        {"id": "a", "instruction": "p1", "completions": [{"model": "m", "response": "g1", "gold_score": 1}]}
    ]
    with pytest.raises(DataError, match="line 1, field 'completions'.*Kendall τ needs at least 2"):
        load_eval_set(str(write_jsonl(tmp_path / "one.jsonl", rows)))


def test_eval_set_formats_give_file_metrics_of_hand_made_rewards(tmp_path):
    rb1 = write_jsonl(
        tmp_path / "rb1.jsonl",
        [
            {"prompt": "p1", "chosen": "g1", "rejected": "b1", "subset": "alpacaeval-easy"},
            {"prompt": "p2", "chosen": "g2", "rejected": "b2", "subset": "alpacaeval-easy"},
            {"prompt": "p3", "chosen": "g3", "rejected": "b3", "subset": "donotanswer"},
        ],
    )
    eval_set = load_eval_set(str(rb1))
    assert eval_set.kind == "pairs" and len(eval_set.responses) == 6
    summary = file_metrics(eval_set, np.array([1, 0, 0, 0, 0, 1]), resamples=50)  # right, tie, wrong
    assert summary["accuracy"] == pytest.approx(1 / 3) and summary["ties"] == 1
    assert summary["subsets"]["alpacaeval-easy"] == {"accuracy": 0.5, "pairs": 2}
    assert summary["rewardbench_v1"] == {"Chat": 0.5, "Safety": 0.0, "overall": 0.25}

    rb2 = write_jsonl(
        tmp_path / "rb2.jsonl",
        [
            {
                "id": "1",
                "prompt": "p1",
                "chosen": ["g1"],
                "rejected": ["b1", "b2", "b3"],
                "num_correct": 1,
                "subset": "Math",
            },
            {
                "id": "2",
                "prompt": "p2",
                "chosen": ["g2"],
                "rejected": ["b1", "b2", "b3"],
                "num_correct": 1,
                "subset": "Math",
            },
            {
                "id": "ref:7",
                "prompt": "p3",
                "chosen": ["g3"],
                "rejected": ["b4"],
                "num_correct": 1,
                "subset": "Ties",
            },
            {
                "id": "tied:7",
                "prompt": "p3",
                "chosen": ["g3", "g4"],
                "rejected": ["b4"],
                "num_correct": 2,
                "subset": "Ties",
            },
        ],
    )
    eval_set = load_eval_set(str(rb2))
    assert eval_set.kind == "rewardbench2"
    rewards = np.array(
        [3, 1, 2, 0, 2, 2, 1, 0, 5, 1, 4, 6, 1], dtype=float
    )  # record 2 ties with its best rejected
    summary = file_metrics(eval_set, rewards, resamples=50)
    # record 1 wins (1), record 2 ties the best rejected: RewardBench v2 gives it 1/2 → Math = 0.75
    assert summary["subsets"]["Math"] == 0.75 and summary["ties_with_best_rejected"] == 1
    assert summary["ties"]["accuracy_ref"] == 1.0 and summary["ties"]["correctness_preferred"] == 1.0
    assert summary["score"] == pytest.approx((0.75 + summary["ties"]["score"]) / 2)

    rmb = write_jsonl(
        tmp_path / "rmbench.jsonl",
        [
            {"prompt": "p1", "chosen": ["g1", "g2", "g3"], "rejected": ["b1", "b2", "b3"], "domain": "chat"},
        ],
    )
    eval_set = load_eval_set(str(rmb))
    summary = file_metrics(eval_set, np.array([1, 2, 3, 0, 1.5, 2.5]))
    assert eval_set.kind == "rmbench" and (summary["hard"], summary["normal"], summary["easy"]) == (
        0.0,
        1.0,
        1.0,
    )
    assert summary["domains"]["chat"]["hard"] == 0.0

    hhh = write_jsonl(
        tmp_path / "hhh.jsonl",
        [
            {"input": "p1", "targets": {"choices": ["b1", "g1"], "labels": [0, 1]}, "subset": "honest"},
        ],
    )
    eval_set = load_eval_set(str(hhh))
    assert eval_set.kind == "pairs" and eval_set.responses[0] == [{"role": "assistant", "content": "g1"}]


def test_in_domain_splits_hold_only_prompts_that_gave_a_training_pair(labelled, tmp_path):
    rows = read_jsonl(labelled)
    tied = {row["id"] for row in rows[:8]}
    for row in rows[:8]:  # every response of these prompts ties: no training pair can come from them
        for completion in row["completions"]:
            completion["gold_score"] = 0.5
    data = write_jsonl(tmp_path / "tied.jsonl", rows)
    manifest = make_splits(str(data), tmp_path / "s", heldout_prompts=0.2, heldout_models=2, seed=0)
    for name in ("val1_in_domain", "val3_response_disjoint"):
        ids = {row["id"] for row in read_jsonl(tmp_path / "s" / f"{name}.jsonl")}
        assert not ids & tied
        left_out = manifest["counts"][name]["prompts_without_training_pair_left_out"]
        assert left_out >= 1
    assert (
        manifest["counts"]["train"]["prompts_without_pair"]
        == manifest["counts"]["val3_response_disjoint"]["prompts_without_training_pair_left_out"]
    )


TAU_ROWS = [  # the BSR paper's Kendall-τ layout (LinkedIn-XFACT/RM-Robustness, scripts/run_kendall.py), in words
    # the tiny tokenizer knows, so that every response gets its own reward (unknown words all read as [UNK])
    {
        "instruction": "p1 p2",
        **{f"response_{i}_text": text for i, text in enumerate(["g1", "g2 g3 b1", "b2", "g4 b3"], 1)},
        "all_scores": [0.8, 0.9, 0.1, 0.5],
    },
    {
        "instruction": "p3",
        **{f"response_{i}_text": text for i, text in enumerate(["g5", "g6 g7", "b4 b5", "g8 g9 g10"], 1)},
        "all_scores": [0.7, 0.7, 0.0, 0.9],  # a tie in gold: τ-b
    },
    {
        "instruction": "p4 p5 p6",
        **{f"response_{i}_text": text for i, text in enumerate(["g11", "b6", "g12 b7", "b8 g13"], 1)},
        "all_scores": [0.3, 0.3, 0.3, 0.3],  # constant gold: NaN, left out of the mean
    },
]


REFERENCE_KENDALL = """
import json, sys
import torch
from scipy import stats
from transformers import AutoModelForSequenceClassification, AutoTokenizer

model_dir, rows = sys.argv[1], json.loads(sys.argv[2])
model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
tokenizer = AutoTokenizer.from_pretrained(model_dir)
taus = []
for item in rows:
    temp = []
    for num in range(1, 5):
        messages = [
            {"role": "user", "content": item["instruction"]},
            {"role": "assistant", "content": item[f"response_{num}_text"]},
        ]
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            temp.append(model(ids).logits.float().item())
    taus.append(stats.kendalltau(item["all_scores"], temp)[0])
print(json.dumps(taus))
"""


def reference_kendall(model_dir: Path, rows: list[dict]) -> list[float]:
    """run_kendall.py's loop: chat [user instruction, assistant response_i_text] → logit; scipy τ(all_scores,
    rewards). Run as its own program, as the reference is, so nothing this test process set can touch it."""
    result = subprocess.run(
        [sys.executable, "-c", REFERENCE_KENDALL, str(model_dir), json.dumps(rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)  # NaN for a prompt whose gold is constant


def test_eval_reads_the_bsr_kendall_files_as_released(tiny_llama, tmp_path):
    torch.manual_seed(
        0
    )  # the random head: without a seed, the tests run before decide it (and its near-ties)
    model, tokenizer = build_reward_model(str(tiny_llama))
    save_reward_model(model, tokenizer, tmp_path / "rm")
    data = write_jsonl(tmp_path / "val2.jsonl", TAU_ROWS)
    output = tmp_path / "results.json"
    args = ["eval", "--model", str(tmp_path / "rm"), "--data", str(data), "--output", str(output)]
    result = run_cli(*args, "--bootstrap", "20")
    assert result.returncode == 0, result.stderr
    summary = json.loads(output.read_text())["results"]["rm"]["val2"]
    taus = reference_kendall(tmp_path / "rm", TAU_ROWS)
    assert np.isnan(taus[2]) and not np.isnan(taus[1])
    assert summary["kind"] == "rankings" and summary["prompts"] == 3 and summary["prompts_nan_tau"] == 1
    assert summary["kendall_tau"] == pytest.approx(np.nanmean(taus), abs=1e-6)


def test_split_reads_the_kendall_layout(tmp_path):
    rows = [
        {
            "id": f"q{n}",
            "instruction": f"prompt {n}",
            **{f"response_{i}_text": f"answer {n}.{i}" for i in range(1, 7)},
            **{f"response_{i}_model": f"m{i}" for i in range(1, 7)},
            "all_scores": [float((n * 7 + i * 3) % 5) for i in range(6)],
        }
        for n in range(10)
    ]
    data = write_jsonl(tmp_path / "tau.jsonl", rows)
    eval_set = load_eval_set(str(data))
    assert eval_set.gold[0] == rows[0]["all_scores"] and eval_set.models[:6] == [
        "m1",
        "m2",
        "m3",
        "m4",
        "m5",
        "m6",
    ]
    assert eval_set.responses[1] == [{"role": "assistant", "content": "answer 0.2"}]
    result = run_cli(
        "split", "--data", str(data), "--output-dir", str(tmp_path / "s"), "--heldout-models", "m5,m6"
    )
    assert result.returncode == 0, result.stderr
    val3 = read_jsonl(tmp_path / "s" / "val3_response_disjoint.jsonl")
    train = read_jsonl(tmp_path / "s" / "train.jsonl")
    assert val3 and {c["model"] for row in val3 for c in row["completions"]} == {"m5", "m6"}
    assert not [key for key in val3[0] if key.startswith(("response_", "all_scores"))]
    assert val3[0]["completions"][0]["gold_score"] in rows[int(val3[0]["id"][1:])]["all_scores"][4:]
    first = next(row for row in train if row["id"] == "q0")
    assert first["chosen_gold"] > first["rejected_gold"] and "all_scores" not in first

    nameless = [{k: v for k, v in row.items() if not k.endswith("_model")} for row in rows]
    path = write_jsonl(tmp_path / "nameless.jsonl", nameless)
    result = run_cli("split", "--data", str(path), "--output-dir", str(tmp_path / "y"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "line 1, field 'response_1_model': no model name" in result.stderr
    short = [{**rows[0], "all_scores": [1.0, 2.0]}]
    with pytest.raises(DataError, match="field 'all_scores'.*6 gold scores"):
        load_eval_set(str(write_jsonl(tmp_path / "short.jsonl", short)))
    gap = [{k: v for k, v in rows[0].items() if k != "response_3_text"}]
    with pytest.raises(DataError, match="field 'response_3_text'"):
        load_eval_set(str(write_jsonl(tmp_path / "gap.jsonl", gap)))


def test_a_split_with_few_in_domain_pairs_says_so_in_one_line(tmp_path, caplog):
    def record(n: int, tied: bool) -> dict:
        scores = [1.0] * 6 if tied else [float(i) for i in range(6)]
        completions = [
            {"model": f"m{i}", "response": f"r{n}.{i}", "gold_score": s} for i, s in enumerate(scores)
        ]
        return {"id": f"q{n}", "instruction": f"p{n}", "completions": completions}

    path = write_jsonl(tmp_path / "tied.jsonl", [record(n, tied=n >= 3) for n in range(20)])
    with caplog.at_level("WARNING", logger="rmguard.eval.splits"):
        manifest = make_splits(str(path), tmp_path / "s", heldout_prompts=0.2, heldout_models=2, seed=0)
    pairs, prompts = manifest["counts"]["val1_in_domain"]["pairs"], manifest["prompts"]["train"]
    assert pairs <= 3 and prompts == 16
    [warning] = [r.getMessage() for r in caplog.records]
    assert f"only {pairs} in-domain pairs for 16 training prompts" in warning and "\n" not in warning
    caplog.clear()
    untied = write_jsonl(tmp_path / "ok.jsonl", [record(n, tied=False) for n in range(20)])
    make_splits(str(untied), tmp_path / "t", heldout_prompts=0.2, heldout_models=2, seed=0)
    assert not caplog.records
