"""One run per output, for every command that writes a run: an output holding a run is refused in one line
that names it and the ways on; ``--overwrite_output_dir`` removes the old run first; ``--resume_from_checkpoint
latest`` continues it (train from its newest checkpoint, tamper run from its records)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmguard import run_folder
from rmguard.errors import ConfigError

from helpers import write_jsonl

SEQ_CLS = '{"architectures": ["LlamaForSequenceClassification"], "num_labels": 1}'
GOLD = "def gold(prompt, response):\n    return 1.0\n"
PROMPTS = "".join(json.dumps({"prompt": f"p{i}"}) + "\n" for i in range(5))
PAIR = '{"prompt": "p", "chosen": "a", "rejected": "b"}\n'
OVEROPT_FILES = {"P/.keep": "", "X/config.json": SEQ_CLS, "gold.py": GOLD, "D.jsonl": PROMPTS}

# command → (argv, input files, the old run's file, whether the command can continue a run). P is a
# folder without a model, so a run let through stops at the policy, after the output rule has acted.
COMMANDS = {
    "train": (
        ["train", "--model_name_or_path", "P", "--train_file", "D.jsonl", "--output_dir", "out"],
        {"P/.keep": "", "D.jsonl": PAIR},
        "out/checkpoints/checkpoint-2/trainer_state.json",
        True,
    ),
    "bon": (
        ["bon", "--policy", "P", "--prompts", "D.jsonl", "--proxy", "X", "--gold", "gold.py:gold"]
        + ["--output-dir", "out"],
        OVEROPT_FILES,
        "out/pool.jsonl",
        True,
    ),
    "rloo": (
        ["rloo", "--policy", "P", "--prompts", "D.jsonl", "--proxy", "X", "--gold", "gold.py:gold"]
        + ["--output-dir", "out"],
        OVEROPT_FILES,
        "out/tracking.csv",
        False,
    ),
    "demo": (
        ["demo", "--quick", "--policy", "P", "--output-dir", "out"],
        {"P/.keep": ""},
        "out/report.json",
        True,
    ),
    "study": (
        ["study", "--config", "s.yaml", "--output-dir", "out"],
        {"P/.keep": "", "s.yaml": "policy: P\n"},
        "out/report.json",
        True,
    ),
    "tamper run": (
        ["tamper", "run", "--env", "political_sycophancy", "--policy", "hf:P", "--output", "out.jsonl"],
        {"P/.keep": ""},
        "out.jsonl",
        True,
    ),
    "tamper train": (
        ["tamper", "train", "--model", "P", "--output_dir", "out"],
        {"P/.keep": ""},
        "out/stage_0_political_sycophancy/config.json",
        False,
    ),
}


# what an earlier run left: a results record for tamper run (which refuses any other file before the rule)
RESULTS_RECORD = json.dumps({"environment": "political_sycophancy", "sample": 0}) + "\n"


def _folder(tmp_path: Path, files: dict[str, str], old_run: str) -> Path:
    folder = tmp_path / "case"
    earlier = RESULTS_RECORD if old_run.endswith(".jsonl") else "an earlier run\n"
    for relative, content in {**files, old_run: earlier}.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(content)
    return folder


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", COMMANDS)
def test_an_output_holding_a_run_is_refused_in_one_line(command, cli, tmp_path) -> None:
    argv, files, old_run, resumable = COMMANDS[command]
    folder = _folder(tmp_path, files, old_run)
    before = _tree(folder)
    result = cli.run(folder, argv)
    output = "out.jsonl" if command == "tamper run" else "out"
    ways = "continue it with --resume_from_checkpoint latest or start over" if resumable else "start over"
    expected = f"rmguard {command.split()[0]}: error: {output} holds a run already; {ways} with --overwrite_output_dir"
    assert result["rc"] == 2 and result["stderr"].splitlines() == [f"{expected} (removes its files)"]
    assert _tree(folder) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_overwrite_removes_the_old_run_first(command, cli, tmp_path) -> None:
    argv, files, old_run, _ = COMMANDS[command]
    folder = _folder(tmp_path, files, old_run)
    if command == "tamper run":
        (folder / "out.report.json").write_text("{}")  # the old run's report goes with it
    result = cli.run(folder, [*argv, "--overwrite_output_dir"])
    assert result["rc"] == 2 and "config.json" in result["stderr"], result[
        "stderr"
    ]  # stopped at the policy P
    assert not (folder / old_run).exists() and not (folder / "out.report.json").exists()
    assert _tree(folder) == {name: content.encode() for name, content in files.items()}  # the inputs alone


def test_a_run_in_the_output_may_not_go_both_ways(cli, tmp_path) -> None:
    argv, files, old_run, _ = COMMANDS["bon"]
    result = cli.run(
        _folder(tmp_path, files, old_run),
        [*argv, "--overwrite_output_dir", "--resume_from_checkpoint", "latest"],
    )
    assert result["rc"] == 2
    assert "--resume_from_checkpoint and --overwrite_output_dir exclude each other" in result["stderr"]


def test_overwrite_never_removes_an_input_or_the_working_folder(tmp_path, monkeypatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    data = write_jsonl(out / "pairs.jsonl", [{"prompt": "p"}])
    with pytest.raises(ConfigError, match="which holds .*pairs.jsonl"):
        run_folder.claim_output(out, None, True, inputs=[data])
    monkeypatch.chdir(out)
    with pytest.raises(ConfigError, match="write the run elsewhere"):
        run_folder.claim_output(tmp_path, None, True)
    assert data.is_file()


def test_an_empty_folder_or_file_holds_no_run(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty.jsonl").write_text("")
    for output in ("empty", "empty.jsonl", "absent"):
        run_folder.claim_output(tmp_path / output, None, False)  # no refusal


def test_tamper_run_resumes_its_records_or_starts_over(cli, tmp_path) -> None:
    scripted = ["--env", "political_sycophancy", "--policy", "scripted:honest"]
    argv = ["tamper", "run", *scripted, "--output", "r.jsonl"]
    assert cli.run(tmp_path, [*argv, "--samples", "2"])["rc"] == 0
    first = (tmp_path / "r.jsonl").read_text().splitlines()
    assert len(first) == 2
    resumed = cli.run(tmp_path, [*argv, "--samples", "3", "--resume_from_checkpoint", "latest"])
    assert resumed["rc"] == 0, resumed["stderr"]
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert lines[:2] == first and len(lines) == 3
    assert cli.run(tmp_path, [*argv, "--samples", "1", "--overwrite_output_dir"])["rc"] == 0
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1
    assert json.loads((tmp_path / "r.report.json").read_text())["political_sycophancy"]["episodes"] == 1


def test_train_resumes_from_its_latest_checkpoint_or_starts_over(
    cli, tmp_path, tiny_llama, synthetic_data
) -> None:
    argv = ["train", "--model_name_or_path", str(tiny_llama), "--train_file", str(synthetic_data["train"])]
    argv += ["--output_dir", "out", "--save_steps", "1", "--logging_steps", "1", "--disable_tqdm", "true"]
    first = cli.run(tmp_path, [*argv, "--max_steps", "2"])
    assert first["rc"] == 0, first["stderr"]
    refused = cli.run(tmp_path, [*argv, "--max_steps", "3"])
    assert refused["rc"] == 2 and "out holds a run already" in refused["stderr"]
    resumed = cli.run(tmp_path, [*argv, "--max_steps", "3", "--resume_from_checkpoint", "latest"])
    assert resumed["rc"] == 0, resumed["stderr"]
    assert "resumed from out/checkpoints/checkpoint-2 at step 2" in resumed["stdout"]
    steps = [line.split(",")[0] for line in (tmp_path / "out/logs/metrics.csv").read_text().splitlines()[1:]]
    assert steps.count("1") == steps.count("2") == steps.count("3") > 0  # one run's rows, continued
    again = cli.run(tmp_path, [*argv, "--max_steps", "1", "--overwrite_output_dir"])
    assert again["rc"] == 0, again["stderr"]
    assert sorted(p.name for p in (tmp_path / "out/checkpoints").iterdir()) == ["checkpoint-1"]
    assert json.loads((tmp_path / "out/rmguard.json").read_text())["global_step"] == 1


def test_train_latest_needs_a_checkpoint_to_continue(cli, tmp_path, synthetic_data) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "rmguard.json").write_text("{}")  # a finished run saved without checkpoints
    argv = ["train", "--train_file", str(synthetic_data["train"]), "--output_dir", "out"]
    result = cli.run(tmp_path, [*argv, "--resume_from_checkpoint", "latest"])
    assert result["rc"] == 2
    assert "out holds a run without a checkpoint to continue from (save_steps)" in result["stderr"]
