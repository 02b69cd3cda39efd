"""Bad input stops a run with one line naming the file, row, field or option: never a traceback, never
numbers from nowhere, never a touched input.

The table (``CASES``) covers every category of issue 12's "one clear line" list and its neighbours, for
``eval``, ``split``, ``label``, ``score``, ``merge``, ``export``, ``diagnose`` and ``train``. Each case runs the
CLI's entry point (``rmguard.cli.main``, what ``python -m rmguard`` calls) in its own process, forked from
one driver that has imported the libraries once (a fresh interpreter per case costs ~20 s of imports on
shared cores); the process's own stderr is captured, so library log lines count too. Checks per case: exit
status 2, exactly one stderr line that starts ``rmguard <command>: error:`` and holds the expected text, no
traceback, no new file or folder, and every input byte-identical. Other cases here run ``python -m rmguard``
itself or the library, where the CLI is not in the way.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rmguard.errors import ConfigError
from rmguard.overopt.bon import BonConfig
from rmguard.overopt.generation import SamplingConfig
from rmguard.scoring import RewardScorer
from rmguard.tamper.protocol import EpisodeConfig
from rmguard.training.config import load_config

from helpers import run_cli, run_tamper

BON = ["bon", "--policy", "P", "--proxy", "X", "--gold", "G", "--output-dir", "OUT"]
# (sub-command arguments with OUT standing for the output path, the option the message must name)
OPTION_CASES = [
    (["score", "--model", "M", "--data", "D", "--output", "OUT", "--batch-size", "-1"], "--batch-size"),
    (["score", "--model", "M", "--data", "D", "--output", "OUT", "--batch-size", "0"], "--batch-size"),
    (["score", "--model", "M", "--data", "D", "--output", "OUT", "--max-length", "-5"], "--max-length"),
    (["eval", "--model", "M", "--data", "D", "--output", "OUT", "--batch-size", "-1"], "--batch-size"),
    (["eval", "--model", "M", "--data", "D", "--output", "OUT", "--bootstrap", "0"], "--bootstrap"),
    (["label", "--data", "D", "--gold", "G", "--output", "OUT", "--batch-size", "-1"], "--batch-size"),
    (["label", "--data", "D", "--gold", "G", "--output", "OUT", "--label-noise", "1.5"], "--label-noise"),
    ([*BON, "--score-batch-size", "-1"], "--score-batch-size"),
    ([*BON, "--top-p", "0"], "--top-p"),
    ([*BON, "--temperature", "nan"], "--temperature"),
    (["diagnose", "--model", "M", "--data", "D", "--output-dir", "OUT", "--max-pairs", "0"], "--max-pairs"),
    (["split", "--data", "D", "--output-dir", "OUT", "--heldout-prompts", "-0.1"], "--heldout-prompts"),
    (["tamper", "run", "--policy", "scripted:honest", "--output", "OUT", "--samples", "-3"], "--samples"),
    (["train", "--objective", "nonsense"], "objective"),
    (["train", "--data_format", "bogus"], "--data_format"),
    (["train", "--learning_rate", "-1", "--train_file", "D"], "learning_rate"),
]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"learning_rate": math.nan}, "learning_rate"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"num_train_epochs": 0.0}, "num_train_epochs"),
        ({"warmup_ratio": 1.5}, "warmup_ratio"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"logging_steps": 0}, "logging_steps"),
        ({"lora_r": 0}, "lora_r"),
        ({"per_device_train_batch_size": -1}, "per_device_train_batch_size"),
    ],
)
def test_train_config_rejects_out_of_range_numbers(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_config(None, {"train_file": "pairs.jsonl", **overrides})


def test_epochs_may_be_zero_when_max_steps_is_set() -> None:
    assert (
        load_config(None, {"train_file": "p.jsonl", "num_train_epochs": 0.0, "max_steps": 3}).max_steps == 3
    )


@pytest.mark.parametrize(
    "build, field",
    [
        (lambda: SamplingConfig(temperature=0.0), "temperature"),
        (lambda: SamplingConfig(top_p=0.0), "top_p"),
        (lambda: SamplingConfig(batch_size=-1), "batch_size"),
        (lambda: BonConfig("p", ["x"], "g", "o", score_batch_size=-1), "score_batch_size"),
        (lambda: BonConfig("p", ["x"], "g", "o", n=0), "n"),
        (lambda: EpisodeConfig(max_commands=0), "max_commands"),
    ],
)
def test_python_configs_reject_out_of_range_numbers(build, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        build()


def test_scorer_refuses_a_negative_batch_size_before_loading(tiny_llama) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        RewardScorer("no-such-folder", batch_size=-1)


@pytest.mark.parametrize("command", ["score", "eval", "label"])
@pytest.mark.parametrize("through_link", [False, True])
def test_output_equal_to_input_is_refused_and_the_input_kept(
    command: str, through_link: bool, tmp_path
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    before = data.read_bytes()
    output = data
    if through_link:
        output = tmp_path / "link.jsonl"
        output.symlink_to(data)
    source = {"score": ["--model", "M"], "eval": ["--model", "M"], "label": ["--gold", "G"]}[command]
    result = run_cli(command, *source, "--data", str(data), "--output", str(output), cwd=tmp_path)
    assert result.returncode == 2 and "is the input" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert data.read_bytes() == before


def test_merge_into_its_own_adapter_folder_is_refused(tmp_path) -> None:
    from rmguard.training.modeling import merge_lora

    with pytest.raises(ConfigError, match="is the input"):
        merge_lora(tmp_path, tmp_path / ".." / tmp_path.name)


@pytest.fixture
def reward_model_folder(tmp_path):
    folder = tmp_path / "rm"
    folder.mkdir()
    (folder / "config.json").write_text(
        '{"architectures": ["LlamaForSequenceClassification"], "num_labels": 1}'
    )
    return folder


def test_reward_model_or_empty_folder_is_refused_as_a_policy(reward_model_folder, tmp_path) -> None:
    from rmguard.overopt.generation import load_policy
    from rmguard.tamper.policies import HFPolicy

    for load in (load_policy, HFPolicy):
        with pytest.raises(ConfigError, match="a reward model .*not a policy"):
            load(str(reward_model_folder))
        with pytest.raises(ConfigError, match="no model here"):
            load(str(tmp_path))


def test_tamper_run_refuses_a_reward_model_policy(reward_model_folder, tmp_path) -> None:
    out = tmp_path / "episodes.jsonl"
    result = run_tamper("political_sycophancy", f"hf:{reward_model_folder}", out, cwd=tmp_path)
    assert result.returncode == 2 and "not a policy" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_score_cuts_at_the_models_length_by_default(tiny_llama, tmp_path) -> None:
    # a response longer than max_position_embeddings (256 here) is one line naming its row, not a huge forward
    from rmguard.training.modeling import build_reward_model, save_reward_model

    save_reward_model(*build_reward_model(str(tiny_llama)), tmp_path / "rm")
    data = tmp_path / "d.jsonl"
    rows = [{"prompt": "p", "response": "short"}, {"prompt": "p", "response": " a" * 600}]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = run_cli(
        "score", "--model", str(tmp_path / "rm"), "--data", str(data), "--output", str(tmp_path / "o")
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert (
        result.stderr.count("\n") == 1
        and "line 2" in result.stderr
        and "longer than max_length 256" in result.stderr
    )
    assert not (tmp_path / "o").exists()
    assert RewardScorer(tmp_path / "rm").max_length == 256


def test_unreadable_inputs_and_unwritable_outputs_are_one_line(tmp_path) -> None:
    (tmp_path / "latin1.jsonl").write_bytes(b'{"prompt": "p", "chosen": "caf\xe9", "rejected": "b"}\n')
    (tmp_path / "ok.jsonl").write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("not json")
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_folder").mkdir()
    cases = [
        (
            ["--model", "model", "--data", "latin1.jsonl", "--output", "o.jsonl"],
            "latin1.jsonl, line 1: not UTF-8",
        ),
        (
            ["--model", "model", "--data", "ok.jsonl", "--output", "o.jsonl"],
            "config.json, line 1: not valid JSON",
        ),
        (["--model", "model", "--data", "ok.jsonl", "--output", "a_file/o.jsonl"], "a_file is a file"),
        (["--model", "model", "--data", "ok.jsonl", "--output", "a_folder"], "a_folder: it is a folder"),
        (
            ["--model", "model", "--data", "ok.jsonl", "--output", "/proc/o.jsonl"],
            "cannot write /proc/o.jsonl",
        ),
    ]
    for args, message in cases:
        result = run_cli("score", *args, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(
    "body, message",
    [
        ("raise KeyError('x')", "raised KeyError"),
        ("return 'high'", "returned 'high'"),
        ("return float('nan')", "nan"),
    ],
)
def test_gold_functions_that_fail_are_one_line(body: str, message: str, tmp_path) -> None:
    from rmguard.overopt.gold import GoldScorer

    (tmp_path / "gold_fn.py").write_text(f"def gold(prompt, response):\n    {body}\n")
    with pytest.raises(ConfigError, match=f"gold function .*{message}.*item 1"):
        GoldScorer(f"{tmp_path / 'gold_fn.py'}:gold").score(["p"], ["r"])


# ----------------------------------------------------------------------------------------------- the table

PAIR = '{"prompt": "p", "chosen": "a", "rejected": "b"}\n'
RECORD = {
    "id": "q1",
    "instruction": "p",
    "completions": [
        {"model": "m1", "response": "a", "gold_score": 1.0},
        {"model": "m2", "response": "b", "gold_score": 0.0},
    ],
}
SPLITTABLE = "".join(
    json.dumps(
        {
            "id": f"q{n}",
            "instruction": f"p{n}",
            "completions": [
                {"model": f"m{i}", "response": f"r{n}.{i}", "gold_score": float(i)} for i in range(6)
            ],
        }
    )
    + "\n"
    for n in range(10)
)
LATIN1 = b'{"prompt": "p", "chosen": "caf\xe9", "rejected": "b"}\n'
GOLD_OK = "def gold(prompt, response):\n    return 1.0\n"


def _jsonl(*rows: dict) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def _record(**changes) -> dict:
    return {**RECORD, **changes}


def _completion(index: int, **changes) -> dict:
    completions = [dict(c) for c in RECORD["completions"]]
    completions[index].update(changes)
    return _record(completions=completions)


def _parquet(rows: list[dict]) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


# Commands with the data file D.<ext> and the output they would write.
def _data_commands(ext: str) -> dict[str, list[str]]:
    data = f"D.{ext}"
    return {
        "eval": ["eval", "--model", "M", "--data", data, "--output", "out.json"],
        "split": ["split", "--data", data, "--output-dir", "out"],
        "label": ["label", "--data", data, "--gold", "gold.py:gold", "--output", "out.jsonl"],
        "score": ["score", "--model", "M", "--data", data, "--output", "out.jsonl"],
    }


CASES: list[tuple[str, list[str], dict[str, str | bytes], str]] = []


def case(name: str, args: list[str], files: dict[str, str | bytes], expect: str) -> None:
    CASES.append((name, args, {"gold.py": GOLD_OK, **files} if args[0] == "label" else files, expect))


def data_case(name: str, commands: str, ext: str, content: str | bytes, expect: str) -> None:
    """The same bad data file D.<ext> given to each of ``commands`` (space-separated)."""
    for command in commands.split():
        case(f"{command}: {name}", _data_commands(ext)[command], {f"D.{ext}": content}, expect)


ALL = "eval split label score"
RECORDS = "split label"  # commands that read multi-response records only

# Non-UTF-8 bytes, in every text format and at a later line.
data_case("latin-1 JSONL", ALL, "jsonl", LATIN1, "D.jsonl, line 1: not UTF-8")
data_case(
    "latin-1 on line 3", "eval score", "jsonl", PAIR.encode() * 2 + LATIN1, "D.jsonl, line 3: not UTF-8"
)
data_case("latin-1 JSON", "eval split", "json", b"[" + LATIN1.strip() + b"]", "D.json, line 1: not UTF-8")
data_case(
    "latin-1 CSV", "eval score", "csv", b"prompt,chosen,rejected\np,caf\xe9,b\n", "D.csv, line 2: not UTF-8"
)
data_case("UTF-16 JSONL", "eval", "jsonl", PAIR.encode("utf-16"), "D.jsonl, line 1: not UTF-8")
# Malformed CSV and Parquet.
data_case(
    "garbage Parquet", ALL, "parquet", b"PAR1 this is not parquet", "D.parquet: not a readable Parquet file"
)
data_case("empty Parquet file", "eval split", "parquet", b"", "D.parquet: not a readable Parquet file")
data_case(
    "truncated Parquet",
    "eval score",
    "parquet",
    _parquet([json.loads(PAIR)] * 20)[:-30],
    "D.parquet: not a readable Parquet file",
)
data_case("Parquet with wrong columns", "eval", "parquet", _parquet([{"x": 1}]), "D.parquet")
data_case(
    "Parquet missing a field", "split", "parquet", _parquet([{"instruction": "p"}]), "D.parquet, line 1"
)
data_case("CSV unclosed quote", "eval score", "csv", 'prompt,chosen,rejected\n"p,a,b\n', "D.csv")
data_case("CSV extra field", "eval score", "csv", "prompt,chosen,rejected\np,a,b,c\n", "D.csv, line 2")
data_case(
    "CSV short row",
    "eval",
    "csv",
    "prompt,chosen,rejected\np,a\n",
    "D.csv, line 2: 2 fields where the header has 3",
)
data_case("CSV header only", "eval score", "csv", "prompt,chosen,rejected\n", "D.csv: no records")
data_case("empty CSV", "eval score", "csv", "", "D.csv: no records")
# Malformed JSON and empty files.
data_case(
    "malformed JSONL line 2", ALL, "jsonl", PAIR + '{"prompt": "p",\n', "D.jsonl, line 2: malformed JSON"
)
data_case(
    "JSONL line is an array", "eval split", "jsonl", "[1, 2]\n", "D.jsonl, line 1: expected a JSON object"
)
data_case("empty JSONL", ALL, "jsonl", "", "D.jsonl: no records")
data_case("blank-line JSONL", "eval split", "jsonl", "\n  \n", "D.jsonl: no records")
data_case("malformed JSON", "eval split", "json", '[{"prompt": ', "D.json, line 1: malformed JSON")
data_case("JSON scalar", "eval", "json", "3", "D.json: expected a JSON array")
data_case("JSON array of numbers", "eval", "json", "[1, 2]", "D.json: record 1 is a int")
data_case("empty JSON array", "eval split", "json", "[]", "D.json: no records")
data_case("unknown extension", "eval split", "txt", PAIR, "D.txt: unknown file type '.txt'")
case("eval: missing data file", _data_commands("jsonl")["eval"], {}, "D.jsonl: no such file")
case(
    "split: data is an empty folder",
    ["split", "--data", "dir", "--output-dir", "out"],
    {"dir/.keep": ""},
    "dir",
)
# Missing fields.
data_case(
    "pair without rejected", "eval score", "jsonl", '{"prompt": "p", "chosen": "a"}\n', "D.jsonl, line 1"
)
data_case("record without completions", RECORDS, "jsonl", _jsonl({"instruction": "p"}), "field 'completions'")
data_case(
    "record without a prompt",
    RECORDS,
    "jsonl",
    _jsonl({k: v for k, v in RECORD.items() if k != "instruction"}),
    "D.jsonl, line 1, field 'prompt': missing field",
)
data_case(
    "completion without response",
    "split label eval",
    "jsonl",
    _jsonl(_completion(1, response=None)),
    "line 1, field 'completions[1].response'",
)
data_case("completion without gold", "split eval", "jsonl", _jsonl(_completion(0, gold_score=None)), "line 1")
data_case(
    "completion without model",
    "split",
    "jsonl",
    _jsonl(_completion(0, model=None)),
    "field 'completions[0].model': no model name",
)
data_case(
    "τ row without all_scores entries",
    "eval split",
    "jsonl",
    _jsonl({"instruction": "p", "response_1_text": "a", "response_2_text": "b", "all_scores": [1.0]}),
    "field 'all_scores'",
)
# Wrong types, field by field.
data_case(
    "chosen is a number",
    "eval score",
    "jsonl",
    '{"prompt": "p", "chosen": 5, "rejected": "b"}\n',
    "field 'chosen'",
)
data_case(
    "prompt is an object",
    "eval",
    "jsonl",
    '{"prompt": {"a": 1}, "chosen": "a", "rejected": "b"}\n',
    "field 'prompt'",
)
data_case(
    "message without content",
    "eval score",
    "jsonl",
    '{"chosen": [{"role": "user"}], "rejected": [{"role": "user", "content": "b"}]}\n',
    "field 'chosen'",
)
data_case(
    "margin is text",
    "score",
    "jsonl",
    '{"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"}\n',
    "field 'margin'",
)
data_case("completions is text", RECORDS, "jsonl", _jsonl(_record(completions="a, b")), "field 'completions'")
data_case(
    "completion is a number", RECORDS, "jsonl", _jsonl(_record(completions=[1, 2])), "field 'completions[0]'"
)
data_case(
    "response is a number",
    RECORDS,
    "jsonl",
    _jsonl(_completion(0, response=7)),
    "field 'completions[0].response'",
)
data_case(
    "model is a number", RECORDS, "jsonl", _jsonl(_completion(1, model=3)), "field 'completions[1].model'"
)
data_case(
    "gold is text", "split eval", "jsonl", _jsonl(_completion(0, gold_score="high")), "field 'gold_score'"
)
data_case(
    "gold is NaN",
    "split eval",
    "jsonl",
    _jsonl(_completion(0, gold_score=float("nan"))),
    "field 'gold_score'",
)
data_case(
    "gold is true", "split eval", "jsonl", _jsonl(_completion(0, gold_score=True)), "field 'gold_score'"
)
data_case("gold is a list", "split", "jsonl", _jsonl(_completion(0, gold_score=[1])), "field 'gold_score'")
data_case(
    "all_scores is text",
    "eval split",
    "jsonl",
    _jsonl({"instruction": "p", "response_1_text": "a", "response_2_text": "b", "all_scores": "1,2"}),
    "field 'all_scores'",
)
data_case(
    "all_scores holds text",
    "eval",
    "jsonl",
    _jsonl({"instruction": "p", "response_1_text": "a", "response_2_text": "b", "all_scores": [1, "x"]}),
    "field 'all_scores[1]'",
)
data_case(
    "RewardBench 2 chosen holds a number",
    "eval",
    "jsonl",
    _jsonl({"prompt": "p", "chosen": ["a", 3], "rejected": ["b"], "num_correct": 1, "subset": "Math"}),
    "field 'chosen",
)
data_case(
    "HHH targets malformed",
    "eval",
    "jsonl",
    _jsonl({"input": "p", "targets": {"choices": ["a"], "labels": [1]}}),
    "field 'targets'",
)
data_case(
    "empty response text",
    "eval score",
    "jsonl",
    '{"prompt": "p", "chosen": " ", "rejected": "b"}\n',
    "field 'chosen'",
)
data_case(
    "duplicate record ids",
    RECORDS,
    "jsonl",
    _jsonl(RECORD, RECORD),
    "D.jsonl, line 2, field 'id': duplicate id",
)
data_case(
    "one response per prompt",
    "eval",
    "jsonl",
    _jsonl(_record(completions=RECORD["completions"][:1])),
    "field 'completions'",
)
# Responses that all tie: nothing to score is a clear outcome, not a traceback or an empty file.
data_case(
    "every completion ties",
    "score",
    "jsonl",
    _jsonl(_completion(0, gold_score=0.0)),
    "D.jsonl: nothing to score",
)
# Models and gold functions.
for command in ("eval", "score"):
    args = _data_commands("jsonl")[command]
    case(
        f"{command}: config.json is not JSON",
        args,
        {"D.jsonl": PAIR, "M/config.json": "{oops"},
        "config.json, line 1: not valid JSON",
    )
    case(
        f"{command}: config.json is latin-1",
        args,
        {"D.jsonl": PAIR, "M/config.json": b'{"a": "\xe9"}'},
        "config.json, line 1: not UTF-8",
    )
    case(f"{command}: config.json is a list", args, {"D.jsonl": PAIR, "M/config.json": "[]"}, "M")
    case(f"{command}: empty model folder", args, {"D.jsonl": PAIR, "M/.keep": ""}, "M")
    case(f"{command}: missing model", args, {"D.jsonl": PAIR}, "M")
LABEL = _data_commands("jsonl")["label"]
for body, expect in [
    ("raise KeyError('x')", "raised KeyError"),
    ("return 'high'", "returned 'high'"),
    ("return float('nan')", "nan"),
    ("return None", "None"),
    ("return [1.0]", "[1.0]"),
]:
    case(
        f"label: gold function {body}",
        LABEL,
        {"D.jsonl": _jsonl(RECORD), "gold.py": f"def gold(prompt, response):\n    {body}\n"},
        expect,
    )
case(
    "label: gold file with a syntax error",
    LABEL,
    {"D.jsonl": _jsonl(RECORD), "gold.py": "def gold(:\n"},
    "gold.py",
)
case(
    "label: gold module raises while loading",
    LABEL,
    {"D.jsonl": _jsonl(RECORD), "gold.py": "raise RuntimeError('no weights here')\n"},
    "raised RuntimeError: no weights here",
)
case(
    "label: gold function missing",
    [*LABEL[:-4], "--gold", "gold.py:nope", "--output", "out.jsonl"],
    {"D.jsonl": _jsonl(RECORD)},
    "has no function nope",
)
case(
    "label: gold file missing",
    [*LABEL[:-4], "--gold", "none.py:gold", "--output", "out.jsonl"],
    {"D.jsonl": _jsonl(RECORD)},
    "no such file",
)
# Outputs that cannot be written.
for command in ("eval", "label", "score"):
    args = _data_commands("jsonl")[command]
    data = {"D.jsonl": _jsonl(RECORD) if command == "label" else PAIR}
    case(
        f"{command}: output under a file",
        [*args[:-1], "a_file/out.json"],
        {**data, "a_file": ""},
        "a_file is a file",
    )
    case(
        f"{command}: output is a folder",
        [*args[:-1], "a_folder"],
        {**data, "a_folder/.keep": ""},
        "a_folder: it is a folder",
    )
    case(f"{command}: output in /proc", [*args[:-1], "/proc/out.json"], data, "cannot write /proc/out.json")
case(
    "split: output folder under a file",
    ["split", "--data", "D.jsonl", "--output-dir", "a_file/out", "--heldout-models", "2"],
    {"D.jsonl": SPLITTABLE, "a_file": ""},
    "a_file",
)
case(
    "split: output folder in /proc",
    ["split", "--data", "D.jsonl", "--output-dir", "/proc/out", "--heldout-models", "2"],
    {"D.jsonl": SPLITTABLE},
    "/proc/out",
)
# merge and export on what is not their input.
case("merge: missing adapter", ["merge", "--adapter", "A", "--output", "out"], {}, "A")
case("merge: empty adapter folder", ["merge", "--adapter", "A", "--output", "out"], {"A/.keep": ""}, "A")
case(
    "merge: adapter config.json not JSON",
    ["merge", "--adapter", "A", "--output", "out"],
    {"A/config.json": "{"},
    "config.json, line 1",
)
case(
    "merge: rmguard.json not an object",
    ["merge", "--adapter", "A", "--output", "out"],
    {"A/rmguard.json": "[]"},
    "rmguard.json",
)
case("export: missing model", ["export", "--model", "G", "--output", "out"], {}, "G")
case(
    "export: rmguard.json not JSON",
    ["export", "--model", "G", "--output", "out"],
    {"G/rmguard.json": "{"},
    "rmguard.json",
)
# Numeric options and enums, where they are parsed.
for args, option in OPTION_CASES:
    case(f"{args[0]}: {' '.join(args[-2:])}", [a.replace("OUT", "out") for a in args], {}, option)
case(
    "diagnose: --max-pairs -1",
    ["diagnose", "--model", "M", "--data", "D", "--output-dir", "out", "--max-pairs", "-1"],
    {},
    "--max-pairs",
)
case(
    "split: --heldout-models 0",
    ["split", "--data", "D.jsonl", "--output-dir", "out", "--heldout-models", "0"],
    {"D.jsonl": _jsonl(RECORD)},
    "--heldout-models",
)
case("label: --pairs bogus", [*LABEL, "--pairs", "bogus"], {"D.jsonl": _jsonl(RECORD)}, "--pairs")
case("train: --head_type bogus", ["train", "--head_type", "bogus"], {}, "head_type")


# Policies, environments files and train configs (the tamper, bon and train areas).
SEQ_CLS_CONFIG = '{"architectures": ["LlamaForSequenceClassification"], "num_labels": 1}'
BON = [
    "bon",
    "--policy",
    "P",
    "--prompts",
    "D.jsonl",
    "--proxy",
    "X",
    "--gold",
    "gold.py:gold",
    "--output-dir",
    "out",
]
case(
    "bon: policy is an empty folder",
    BON,
    {"P/.keep": "", "X/config.json": SEQ_CLS_CONFIG, "gold.py": GOLD_OK, "D.jsonl": '{"prompt": "p"}\n'},
    "no model here",
)
case(
    "bon: policy is a reward model",
    BON,
    {
        "P/config.json": SEQ_CLS_CONFIG,
        "X/config.json": SEQ_CLS_CONFIG,
        "gold.py": GOLD_OK,
        "D.jsonl": '{"prompt": "p"}\n',
    },
    "not a policy",
)
TAMPER = ["tamper", "run", "--env", "all", "--policy", "scripted:honest", "--output", "out.jsonl"]
case(
    "tamper run: policy is an empty folder",
    [*TAMPER[:5], "hf:P", *TAMPER[6:]],
    {"P/.keep": ""},
    "no model here",
)
for name, content, expect in [
    ("not UTF-8", b'{"environment": "reward_tampering", "prompt": "caf\xe9"}', "E.json, line 1: not UTF-8"),
    ("malformed JSON", '{"environment": ', "E.json, line 1"),
    ("a list of numbers", "[1, 2]", "E.json, line 1"),
    ("dirs: [5]", '{"environment": "reward_tampering", "prompt": "p", "dirs": [5]}', "field 'dirs"),
    (
        "an empty file name",
        '{"environment": "reward_tampering", "prompt": "p", "files": {"": "x"}}',
        "field 'files",
    ),
    (
        "a file where a folder is",
        '{"environment": "reward_tampering", "prompt": "p", "files": {"a": "x", "a/b": "y"}}',
        "field 'files",
    ),
]:
    case(
        f"tamper run: environments file {name}",
        [*TAMPER, "--environments-file", "E.json"],
        {"E.json": content},
        expect,
    )
case(
    "train: config YAML malformed", ["train", "--config", "c.yaml"], {"c.yaml": "objective: [bt\n"}, "c.yaml"
)
case(
    "train: config YAML not UTF-8",
    ["train", "--config", "c.yaml"],
    {"c.yaml": b"objective: b\xe9\n"},
    "c.yaml",
)
case("train: config YAML is a list", ["train", "--config", "c.yaml"], {"c.yaml": "- bt\n"}, "c.yaml")
case(
    "train: unknown field",
    ["train", "--train_file", "D.jsonl", "--bogus_field", "1"],
    {"D.jsonl": PAIR},
    "bogus_field",
)


CASE_CPU_S = 60  # per case, CPU seconds (a paused machine must not fail a case): a hang fails, not sticks


def run_cases(spec_file: str) -> None:
    """Driver: fork one process per case from here, run ``rmguard.cli.main(argv)`` as ``python -m rmguard``
    does (``raise SystemExit(main())``; an escaping exception prints its traceback), capture fds 1 and 2."""
    import os
    import resource
    import traceback

    import datasets  # noqa: F401  (imported once, before forking, with what the commands import)
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from rmguard.cli import main

    spec = json.loads(Path(spec_file).read_text())
    results = {}
    for name, folder, argv in spec["cases"]:
        out, err = Path(folder).with_suffix(".stdout"), Path(folder).with_suffix(".stderr")
        pid = os.fork()
        if pid == 0:
            os.chdir(folder)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # a case that reads stdin must not wait on a tty
            os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT), 1)
            os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT), 2)
            resource.setrlimit(resource.RLIMIT_CPU, (CASE_CPU_S, CASE_CPU_S))
            try:
                code = main(argv)
            except SystemExit as stop:
                if isinstance(stop.code, str):
                    print(stop.code, file=sys.stderr)
                code = stop.code if isinstance(stop.code, int) else 1
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        results[name] = {
            "rc": os.waitstatus_to_exitcode(status),
            "stdout": out.read_text(errors="replace"),
            "stderr": err.read_text(errors="replace"),
        }
    Path(spec["results"]).write_text(json.dumps(results))


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture(scope="module")
def table_results(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("bad_inputs")
    entries, snapshots = [], {}
    for index, (name, args, files, _) in enumerate(CASES):
        folder = root / f"case{index:03d}"
        folder.mkdir()
        for relative, content in files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        snapshots[name] = (folder, _snapshot(folder))
        entries.append((name, str(folder), args))
    spec = root / "spec.json"
    spec.write_text(json.dumps({"cases": entries, "results": str(root / "results.json")}))
    tests = Path(__file__).parent
    code = f"import sys; sys.path[:0] = [{str(tests)!r}]; import test_bad_inputs as t; t.run_cases({str(spec)!r})"
    env = {**os.environ, "PYTHONPATH": str(tests.parent / "src"), "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        stdin=subprocess.DEVNULL,
        check=True,
        timeout=3600,
    )
    results = json.loads((root / "results.json").read_text())
    for name, (folder, before) in snapshots.items():
        results[name]["unchanged"] = _snapshot(folder) == before
    return results


assert len({name for name, *_ in CASES}) == len(CASES), "case names must be unique"


@pytest.mark.parametrize("name, args, files, expect", [pytest.param(*c, id=c[0]) for c in CASES])
@pytest.mark.timeout(1800)  # the first case waits for the whole table (~3 min on an idle machine)
def test_bad_input_is_one_clear_line(name, args, files, expect, table_results) -> None:
    result = table_results[name]
    lines = result["stderr"].strip().splitlines()
    assert "Traceback" not in result["stderr"], result["stderr"]
    assert result["rc"] == 2, result
    assert len(lines) == 1 and lines[0].startswith("rmguard") and " error: " in lines[0], result["stderr"]
    assert expect in lines[0], lines[0]
    assert result["unchanged"], "an output was written or an input changed"
