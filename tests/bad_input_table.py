"""The bad-input table: each case is a command line, the files it finds, and what its one error line says.

``case(name, argv, files, expect)`` adds one; ``data_case`` gives one bad data file to several commands.
``tests/cli/test_bad_inputs.py`` runs each case as its own test (``pytest tests/cli/test_bad_inputs.py -k NAME``).
"""

from __future__ import annotations

import json

BON_OPTIONS = ["bon", "--policy", "P", "--proxy", "X", "--gold", "G", "--output-dir", "OUT"]
# (sub-command arguments with OUT standing for the output path, the option the message must name)
OPTION_CASES = [
    (["score", "--model", "M", "--data", "D", "--output", "OUT", "--batch-size", "-1"], "--batch-size"),
    (["score", "--model", "M", "--data", "D", "--output", "OUT", "--batch-size", "0"], "--batch-size"),
    (["score", "--model", "M", "--data", "D", "--output", "OUT", "--max-length", "-5"], "--max-length"),
    (["eval", "--model", "M", "--data", "D", "--output", "OUT", "--batch-size", "-1"], "--batch-size"),
    (["eval", "--model", "M", "--data", "D", "--output", "OUT", "--bootstrap", "0"], "--bootstrap"),
    (["label", "--data", "D", "--gold", "G", "--output", "OUT", "--batch-size", "-1"], "--batch-size"),
    (["label", "--data", "D", "--gold", "G", "--output", "OUT", "--label-noise", "1.5"], "--label-noise"),
    ([*BON_OPTIONS, "--score-batch-size", "-1"], "--score-batch-size"),
    ([*BON_OPTIONS, "--top-p", "0"], "--top-p"),
    ([*BON_OPTIONS, "--temperature", "nan"], "--temperature"),
    (["diagnose", "--model", "M", "--data", "D", "--output-dir", "OUT", "--max-pairs", "0"], "--max-pairs"),
    (["split", "--data", "D", "--output-dir", "OUT", "--heldout-prompts", "-0.1"], "--heldout-prompts"),
    (["tamper", "run", "--policy", "scripted:honest", "--output", "OUT", "--samples", "-3"], "--samples"),
    (["calibrate", "--model", "M", "--data", "D", "--output", "OUT", "--frac", "0"], "--frac"),
    (["calibrate", "--model", "M", "--data", "D", "--output", "OUT", "--iterations", "-1"], "--iterations"),
    (["train", "--objective", "nonsense"], "objective"),
    (["train", "--data_format", "bogus"], "--data_format"),
    (["train", "--pair_augmentation", "bogus"], "--pair_augmentation"),
    (["train", "--learning_rate", "-1", "--train_file", "D"], "learning_rate"),
]

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
    "score: a malformed length calibration beside the model",
    _data_commands("jsonl")["score"],
    {"D.jsonl": PAIR, "M/length_calibration.json": '{"lengths": [2, 1], "bias": [0, 0]}'},
    "M/length_calibration.json, field 'lengths': lengths must increase",
)
CALIBRATE = ["calibrate", "--model", "M", "--data", "D.jsonl", "--output", "O"]
case(
    "calibrate: model is not a folder", CALIBRATE, {"D.jsonl": PAIR}, "--model M is not a reward-model folder"
)
case("calibrate: missing data file", CALIBRATE, {"M/config.json": "{}"}, "D.jsonl: no such file")
case(
    "calibrate: output folder not empty",
    CALIBRATE,
    {"M/config.json": "{}", "D.jsonl": PAIR, "O/x.txt": "keep"},
    "output O exists and is not empty",
)
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
case(
    "train: rrm's ties with an objective that takes none",
    ["train", "--pair_augmentation", "rrm", "--objective", "hinge", "--train_file", "D.jsonl"],
    {"D.jsonl": PAIR},
    "pair_augmentation 'rrm' makes tie pairs, which objective 'hinge' does not take; use bt, bsr",
)


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


# Outputs that cannot be written, for the commands that write folders or runs: refused before any work.
BON_FILES = {"X/config.json": SEQ_CLS_CONFIG, "gold.py": GOLD_OK, "D.jsonl": '{"prompt": "p"}\n'}
for where, path, expect in [
    ("under a file", "a_file/out", "a_file is a file"),
    ("in /proc", "/proc/out", "cannot write /proc/out"),
]:
    case(
        f"train: output_dir {where}",
        ["train", "--train_file", "D.jsonl", "--output_dir", path],
        {"D.jsonl": PAIR, "a_file": ""},
        expect,
    )
    case(f"bon: output folder {where}", [*BON[:-1], path], {**BON_FILES, "a_file": ""}, expect)
    case(f"demo: output folder {where}", ["demo", "--quick", "--output-dir", path], {"a_file": ""}, expect)
    case(
        f"study: output folder {where}",
        ["study", "--config", "s.yaml", "--output-dir", path],
        {"s.yaml": "seeds: [0]\n", "a_file": ""},
        expect,
    )
    case(f"tamper run: output {where}", [*TAMPER[:-1], f"{path}.jsonl"], {"a_file": ""}, expect)
    case(
        f"tamper train: output folder {where}",
        ["tamper", "train", "--model", "P", "--output_dir", path],
        {"a_file": ""},
        expect,
    )
case(
    "train: unknown lr_scheduler_type",
    ["train", "--train_file", "D.jsonl", "--lr_scheduler_type", "bogus"],
    {"D.jsonl": PAIR},
    "unknown lr_scheduler_type 'bogus'",
)
# Folders that are not a model, given where a causal LM is needed.
NOT_A_MODEL = {"P/config.json": '{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}'}
NO_MODEL_TYPE = {"P/config.json": '{"hidden_size": 8}'}
FIVE_PROMPTS = {"D.jsonl": "".join(json.dumps({"prompt": f"p{i}"}) + "\n" for i in range(5))}
RLOO = ["rloo", "--policy", "P", "--prompts", "D.jsonl", "--proxy", "X", "--gold", "gold.py:gold"]
for where, path, expect in [
    ("under a file", "a_file/out", "a_file is a file"),
    ("in /proc", "/proc/out", "cannot write"),
]:
    case(
        f"rloo: output folder {where}",
        [*RLOO, "--output-dir", path],
        {**BON_FILES, **FIVE_PROMPTS, "a_file": ""},
        expect,
    )
for what, files, expect in [
    ("a folder without weights or tokenizer", NOT_A_MODEL, "not a model folder (no weights and no tokenizer"),
    ("a folder whose config names no model_type", NO_MODEL_TYPE, "names no model_type"),
]:
    case(f"bon: policy is {what}", BON, {**BON_FILES, **files}, expect)
    case(
        f"rloo: policy is {what}",
        [*RLOO, "--output-dir", "out"],
        {**BON_FILES, **FIVE_PROMPTS, **files},
        expect,
    )
    case(f"tamper run: policy is {what}", [*TAMPER[:5], "hf:P", *TAMPER[6:]], files, expect)
    case(
        f"tamper train: policy is {what}",
        ["tamper", "train", "--model", "P", "--output_dir", "out"],
        files,
        expect,
    )
    case(
        f"demo: backbone is {what}",
        ["demo", "--quick", "--policy", "P", "--output-dir", "out"],
        files,
        expect,
    )
case(
    "demo: backbone is a reward model",
    ["demo", "--quick", "--policy", "P", "--output-dir", "out"],
    {"P/config.json": SEQ_CLS_CONFIG},
    "a reward model (LlamaForSequenceClassification), not a proxy backbone",
)

case(
    "study: unknown shipped pool",
    ["study", "--config", "study.yaml", "--output-dir", "out"],
    {"study.yaml": "pool: huge\n"},
    "unknown shipped pool 'huge'; choose one of demo, large",
)


# The 2025–26 benchmarks' published rows (tests/eval/benchmark_rows.py builds whole ones).
JUDGEBENCH = {
    "pair_id": "1",
    "source": "livecodebench",
    "question": "q",
    "response_A": "a",
    "response_B": "b",
}
data_case(
    "JudgeBench label A=B", "eval", "jsonl", _jsonl({**JUDGEBENCH, "label": "A=B"}), "line 1, field 'label'"
)
data_case(
    "RMB answer missing",
    "eval",
    "json",
    json.dumps([{"conversation_input": [{"role": "user", "content": "q"}], "chosen": {"answer": "a"},
                 "reject": {"llm_name": "m"}, "category_path": "Pairwise_set/Harmlessness/S1"}]),
    "line 1, field 'reject.answer'",
)  # fmt: skip
data_case(
    "PPE conflict pair out of range",
    "eval",
    "jsonl",
    _jsonl({"prompt": "q", "response_1": "a", "response_2": "b", "scores": [True, False],
            "sampled_conflict_pairs": [[0, 5]]}),
    "line 1, field 'sampled_conflict_pairs'",
)  # fmt: skip

assert len({name for name, *_ in CASES}) == len(CASES), "case names must be unique"
