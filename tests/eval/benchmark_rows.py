"""Rows in each benchmark's published format, and a data folder laid out under the official names.

Texts use the tiny test tokenizer's words (tests/helpers.py) so a tiny random-init model scores them.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import BAD_WORDS, GOOD_WORDS, PROMPT_WORDS


def _words(pool: list[str], start: int, n: int = 3) -> str:
    return " ".join(pool[(start + i) % len(pool)] for i in range(n))


def judgebench(n: int = 6) -> list[dict]:
    sources = ["mmlu-pro-law", "livebench-reasoning", "livebench-math", "livecodebench"]
    return [
        {
            "pair_id": f"jb-{i}",
            "original_id": str(i),
            "source": sources[i % 4],
            "question": _words(PROMPT_WORDS, i),
            "response_model": "gpt-4o-2024-05-13",
            "response_A": _words(GOOD_WORDS if i % 2 else BAD_WORDS, i),
            "response_B": _words(BAD_WORDS if i % 2 else GOOD_WORDS, i + 1),
            "label": "A>B" if i % 2 else "B>A",
        }
        for i in range(n)
    ]


def _conversation(i: int) -> list[dict]:
    return [{"content": _words(PROMPT_WORDS, i), "language": "English", "role": "user"}]


def rmb_pairwise(path: str, n: int = 3) -> list[dict]:
    return [
        {
            "pair_uid": f"{path}-{i}",
            "conversation_input": _conversation(i),
            "chosen": {"llm_name": "m1", "answer": _words(GOOD_WORDS, i)},
            "reject": {"llm_name": "m2", "answer": _words(BAD_WORDS, i)},
            "category_path": f"Pairwise_set/{path}",
        }
        for i in range(n)
    ]


def rmb_bon(path: str, n: int = 2) -> list[dict]:
    return [
        {
            "conversation_input": _conversation(i),
            "bon_best": {"llm_name": "m1", "answer": _words(GOOD_WORDS, i)},
            "loser_list": [{"llm_name": f"m{k}", "answer": _words(BAD_WORDS, i + k)} for k in range(2, 5)],
            "bon_uid": f"{path}-{i}",
            "category_path": f"BoN_set/{path}",
        }
        for i in range(n)
    ]


def ppe_preference(n: int = 5) -> list[dict]:
    winners = ["model_a", "model_b", "tie", "model_a", "tie (bothbad)"]
    return [
        {
            "question_id": f"q{i}",
            "prompt": _words(PROMPT_WORDS, i),
            "response_1": _words(GOOD_WORDS, i),
            "response_2": _words(BAD_WORDS, i),
            "winner": winners[i % len(winners)],
            "model_a": "a",
            "model_b": "b",
            "language": "English",
        }
        for i in range(n)
    ]


def ppe_correctness(n: int = 3, k: int = 4) -> list[dict]:
    rows = []
    for i in range(n):
        scores = [j % 2 == 0 for j in range(k)]
        row = {"question_id": f"c{i}", "prompt": _words(PROMPT_WORDS, i), "model_name": "m", "scores": scores}
        row.update(
            {f"response_{j + 1}": _words(GOOD_WORDS if scores[j] else BAD_WORDS, i + j) for j in range(k)}
        )
        row["sampled_conflict_pairs"] = [[0, 1], [2, 3], [1, 2]]
        rows.append(row)
    return rows


def rewardbench(n: int = 4) -> list[dict]:
    subsets = ["alpacaeval-easy", "mt-bench-hard", "donotanswer", "math-prm"]
    return [
        {
            "id": i,
            "prompt": _words(PROMPT_WORDS, i),
            "chosen": _words(GOOD_WORDS, i),
            "rejected": _words(BAD_WORDS, i),
            "chosen_model": "m1",
            "rejected_model": "m2",
            "subset": subsets[i % 4],
        }
        for i in range(n)
    ]


def rewardbench2(n: int = 3) -> list[dict]:
    return [
        {
            "id": str(i),
            "prompt": _words(PROMPT_WORDS, i),
            "chosen": [_words(GOOD_WORDS, i)],
            "rejected": [_words(BAD_WORDS, i + j) for j in range(3)],
            "num_correct": 1,
            "subset": ["Factuality", "Math", "Focus"][i % 3],
        }
        for i in range(n)
    ]


def rmbench(n: int = 2) -> list[dict]:
    return [
        {
            "id": i,
            "prompt": _words(PROMPT_WORDS, i),
            "chosen": [_words(GOOD_WORDS, i, m) for m in (2, 4, 6)],
            "rejected": [_words(BAD_WORDS, i, m) for m in (2, 4, 6)],
            "domain": ["chat", "safety-refuse"][i % 2],
        }
        for i in range(n)
    ]


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _json(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))


def _parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def standard_folder(root: Path, skip: tuple[str, ...] = ()) -> Path:
    """Every set of the standard suite under its official folder and file names (``skip``: leave out)."""
    writers = {
        "rewardbench": lambda: _parquet(
            root / "reward-bench/data/filtered-00000-of-00001.parquet", rewardbench()
        ),
        "rewardbench2": lambda: _parquet(
            root / "reward-bench-2/data/test-00000-of-00001.parquet", rewardbench2()
        ),
        "rmbench": lambda: _json(root / "RM-Bench/data/total_dataset.json", rmbench()),
        "judgebench": lambda: _jsonl(
            root / "JudgeBench/data/dataset=judgebench,response_model=gpt-4o-2024-05-13.jsonl", judgebench()
        ),
        "ppe_preference": lambda: _parquet(
            root / "PPE-Human-Preference-V1/data/test-00000-of-00001.parquet", ppe_preference()
        ),
        "ppe_correctness": lambda: [
            _parquet(root / f"PPE-{name}-Best-of-K/data/train-00000-of-00001.parquet", ppe_correctness())
            for name in ("MATH", "GPQA")
        ],
        "rmb": lambda: [
            _json(
                root / "RMB_dataset/Pairwise_set/Helpfulness/Chat/Discussion.json",
                rmb_pairwise("Helpfulness/Chat/Discussion"),
            ),
            _json(root / "RMB_dataset/Pairwise_set/Harmlessness/S1.json", rmb_pairwise("Harmlessness/S1")),
            _json(
                root / "RMB_dataset/BoN_set/Helpfulness/Chat/Discussion.json",
                rmb_bon("Helpfulness/Chat/Discussion"),
            ),
            _json(root / "RMB_dataset/BoN_set/Harmlessness/S1.json", rmb_bon("Harmlessness/S1")),
        ],
        "rewordbench": lambda: [
            _jsonl(
                root / "reWordBench/add_quotes.jsonl",
                [{**r, "prompt": f'"{r["prompt"]}"'} for r in rewardbench()],
            )
        ],
    }
    for name, write in writers.items():
        if name not in skip:
            write()
    return root
