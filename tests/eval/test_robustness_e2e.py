"""End to end on a synthetic UltraFeedback-like world: label → split → train BT and BSR → eval (CLI) → diagnose.

The label and split CLIs are exercised in test_labeling_splits.py; here their library calls keep the test fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmguard.eval.diagnostics import diagnose
from rmguard.eval.labeling import label_file
from rmguard.eval.splits import SPLITS, make_splits
from rmguard.training.config import TrainConfig
from rmguard.training.trainer import train

from helpers import run_cli, write_jsonl
from synthetic_world import make_records

GOLD = str(Path(__file__).parents[1] / "synthetic_world.py") + ":gold"


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_llama) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("world")
    raw = write_jsonl(root / "raw.jsonl", make_records(20, seed=0))
    labelled = root / "labelled.jsonl"
    assert (
        label_file(str(raw), GOLD, labelled, "best_vs_worst", label_noise=0.25, seed=0)["flipped"] == 5
    )  # 20 · 0.25
    make_splits(str(labelled), root / "splits", heldout_prompts=0.25, heldout_models=2, seed=0)
    models = {}
    for objective in ("bt", "bsr"):
        config = TrainConfig(
            model_name_or_path=str(tiny_llama),
            train_file=str(root / "splits" / "train.jsonl"),
            output_dir=str(root / objective),
            objective=objective,
            max_steps=4,
            per_device_train_batch_size=8,
            learning_rate=3e-3,
            save_steps=2,
            save_total_limit=3,
            report_to=["none"],
            disable_tqdm=True,
            seed=0,
        )
        models[objective] = Path(train(config).output_dir)
    return {"root": root, "splits": root / "splits", **models}


def test_eval_prints_the_scenario_table_for_both_models(world):
    files = [str(world["splits"] / f"{name}.jsonl") for name in SPLITS[1:]]
    output = world["root"] / "results.json"
    args = [
        "eval",
        "--model",
        str(world["bt"]),
        "--model",
        str(world["bsr"]),
        "--output",
        str(output),
        "--bootstrap",
        "50",
    ]
    for path in files:
        args += ["--data", path]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert (
        "| model | In-domain acc | Prompt-disjoint τ | Response-disjoint τ | Mutual-disjoint τ |"
        in result.stdout
    )
    assert "| bt |" in result.stdout and "| bsr |" in result.stdout
    assert result.stdout.count("| model |") == 1  # the table once
    report = json.loads(output.read_text())
    for model in ("bt", "bsr"):
        val1 = report["results"][model]["val1_in_domain"]
        assert (
            val1["kind"] == "pairs"
            and 0 <= val1["accuracy"] <= 1
            and val1["accuracy_ci_low"] <= val1["accuracy"]
        )
        for name in SPLITS[2:]:
            ranking = report["results"][model][name]
            assert ranking["kind"] == "rankings" and -1 <= ranking["kendall_tau"] <= 1
            assert ranking["kendall_tau_ci_low"] <= ranking["kendall_tau"] <= ranking["kendall_tau_ci_high"]


def test_diagnostics_cover_files_checkpoints_and_plots(world, tmp_path):
    names = ("train", "val1_in_domain", "val4_mutual_disjoint")
    files = [str(world["splits"] / f"{name}.jsonl") for name in names]
    results = diagnose([world["bt"], world["bsr"]], files, tmp_path / "diag", max_pairs=8)
    assert sorted(results["plots"]) == [
        "hidden_norms_bsr.png",
        "hidden_norms_bt.png",
        "pair_distance_over_training.png",
    ]
    for name in results["plots"]:
        assert (tmp_path / "diag" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "diag" / "diagnostics.json").read_text())
    for model in ("bt", "bsr"):
        entry = saved["models"][model]
        assert entry["head_norm"] > 0
        assert [p["step"] for p in entry["pair_distance_over_training"]] == [2, 4]
        assert all(p["n"] == 8 for p in entry["pair_distance_over_training"])
        for name in names:
            stats = entry["files"][name]
            assert 1 <= stats["effective_rank"] <= stats["hidden_size"]
            assert stats["hidden_norm"]["n"] == len(stats["hidden_norms"]) and stats["reward"]["std"] >= 0


EVAL_FILES = {
    "rewardbench2": [
        {
            "id": f"r{i}",
            "prompt": "p1 p2",
            "chosen": ["g1 g2"],
            "rejected": ["b1", "b2 b3", "g3"],
            "num_correct": 1,
            "subset": "Focus",
        }
        for i in range(3)
    ]
    + [
        {
            "id": "ref:1",
            "prompt": "p3",
            "chosen": ["g4"],
            "rejected": ["b4", "b5"],
            "num_correct": 1,
            "subset": "Ties",
        },
        {
            "id": "tied:1",
            "prompt": "p3",
            "chosen": ["g4", "g5"],
            "rejected": ["b4"],
            "num_correct": 2,
            "subset": "Ties",
        },
    ],
    "rmbench": [
        {
            "id": i,
            "prompt": "p4",
            "chosen": ["g1", "g1 g2", "g1 g2 g3"],
            "rejected": ["b1", "b1 b2", "b1 b2 b3"],
            "subset": "chat",
        }
        for i in range(3)
    ],
    "pairs": [
        {"prompt": "p5", "chosen": "g6 g7", "rejected": "b6", "subset": "alpacaeval-easy"},
        {"prompt": "p6", "chosen": "g8", "rejected": "b7 b8", "subset": "math-prm"},
    ],
}


@pytest.mark.parametrize("kind", sorted(EVAL_FILES))
def test_eval_writes_json_for_every_file_kind(kind, world, tmp_path):
    data = tmp_path / f"{kind}.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in EVAL_FILES[kind]))
    output = tmp_path / "results.json"
    result = run_cli(
        "eval", "--model", str(world["bt"]), "--data", str(data), "--output", str(output), "--bootstrap", "20"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(output.read_text())["results"]["bt"][kind]
    assert summary["kind"] == kind


def test_eval_prints_one_table_for_mixed_files() -> None:
    from rmguard.eval.evaluation import console_table

    report = {"data": {"val1_in_domain": "a", "hhh": "b"}, "table": "FILES", "scenario_table": "SCENARIOS"}
    assert console_table(report) == "FILES"
    report["data"] = {"val1_in_domain": "a", "val2_prompt_disjoint": "b"}
    assert console_table(report) == "SCENARIOS"
