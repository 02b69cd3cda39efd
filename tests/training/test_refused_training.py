"""A training run refused for a bad input leaves nothing behind (no logs/metrics.csv, no output folder)."""

from __future__ import annotations

from helpers import write_jsonl


def test_a_bad_data_row_leaves_no_output(cli, tmp_path, tiny_llama) -> None:
    write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "q"}])
    argv = [
        "train",
        "--model_name_or_path",
        str(tiny_llama),
        "--train_file",
        "pairs.jsonl",
        "--output_dir",
        "rm",
    ]
    result = cli.run(tmp_path, argv)
    assert result["rc"] == 2 and "pairs.jsonl, line 2" in result["stderr"], result["stderr"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl"]
