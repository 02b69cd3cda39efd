"""Preference formats → canonical pairs, and clear errors for bad rows."""

from __future__ import annotations

import json

import pytest

from rmguard.data import load_pairs
from rmguard.errors import DataError

from helpers import write_jsonl


def pairs_of(tmp_path, rows, **kwargs):
    return load_pairs(str(write_jsonl(tmp_path / "d.jsonl", rows)), **kwargs)


def test_trl_explicit_prompt_text_and_margin(tmp_path):
    pairs, stats = pairs_of(tmp_path, [{"prompt": "Q: 2+2?", "chosen": " 4", "rejected": " 5", "margin": 2}])
    assert (pairs[0].prompt, pairs[0].chosen, pairs[0].rejected, pairs[0].margin) == (
        "Q: 2+2?",
        " 4",
        " 5",
        2.0,
    )
    assert not pairs[0].is_conversational and stats.pairs == 1


def test_trl_implicit_prompt_text_splits_at_whitespace(tmp_path):
    pairs, _ = pairs_of(
        tmp_path,
        [{"chosen": "Question: hi there. Answer: hello", "rejected": "Question: hi there. Answer: help"}],
    )
    assert pairs[0].prompt == "Question: hi there. Answer: "
    assert (pairs[0].chosen, pairs[0].rejected) == ("hello", "help")


def test_trl_conversational_implicit_prompt(tmp_path):
    user = {"role": "user", "content": "hi"}
    row = {
        "chosen": [user, {"role": "assistant", "content": "hello"}],
        "rejected": [user, {"role": "assistant", "content": "go away"}],
    }
    pair = pairs_of(tmp_path, [row])[0][0]
    assert pair.prompt == [user] and pair.chosen == [{"role": "assistant", "content": "hello"}]


def test_trl_conversational_with_string_prompt(tmp_path):
    row = {
        "prompt": "hi",
        "chosen": [{"role": "assistant", "content": "a"}],
        "rejected": [{"role": "assistant", "content": "b"}],
    }
    assert pairs_of(tmp_path, [row])[0][0].prompt == [{"role": "user", "content": "hi"}]


def test_hh_rlhf_transcripts(tmp_path):
    row = {
        "chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: joke?\n\nAssistant: knock knock",
        "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: joke?\n\nAssistant: no",
    }
    pair = pairs_of(tmp_path, [row])[0][0]
    assert [m["role"] for m in pair.prompt] == ["user", "assistant", "user"]
    assert pair.chosen == [{"role": "assistant", "content": "knock knock"}]
    assert pair.rejected == [{"role": "assistant", "content": "no"}]


def test_unified_feedback_orders_by_rating_and_counts_ties(tmp_path):
    def conv(answer):
        return [{"role": "user", "content": "q"}, {"role": "assistant", "content": answer}]

    rows = [
        {"conv_A": conv("a"), "conv_B": conv("b"), "conv_A_rating": 1, "conv_B_rating": 3},
        {"conv_A": conv("c"), "conv_B": conv("d"), "conv_A_rating": 2, "conv_B_rating": 2},
    ]
    pairs, stats = pairs_of(tmp_path, rows)
    assert len(pairs) == 1 and pairs[0].chosen[0]["content"] == "b"
    assert stats.dropped == {"tied ratings": 1}


def test_unified_feedback_summarize_rows_get_grm_instruction(tmp_path):
    """GRM's build_dataset_UF: 'summarize' in source → first message = instruction + content.strip()."""
    post = "  TL;DR wanted: my cat sleeps all day.\n"
    rows = [
        {
            "conv_A": [{"role": "user", "content": post}, {"role": "assistant", "content": "Cat sleeps."}],
            "conv_B": [{"role": "user", "content": post}, {"role": "assistant", "content": "Dogs."}],
            "conv_A_rating": 2,
            "conv_B_rating": 1,
            "source": "openai/summarize_from_feedback(comparisons)",
        },
        {
            "conv_A": [{"role": "user", "content": post}, {"role": "assistant", "content": "a"}],
            "conv_B": [{"role": "user", "content": post}, {"role": "assistant", "content": "b"}],
            "conv_A_rating": 1,
            "conv_B_rating": 2,
            "source": "Anthropic/hh-rlhf",
        },
    ]
    pairs, _ = pairs_of(tmp_path, rows)
    expected = "Generate one-sentence summary for the following post: TL;DR wanted: my cat sleeps all day."
    assert pairs[0].prompt == [{"role": "user", "content": expected}]
    assert pairs[0].chosen == [{"role": "assistant", "content": "Cat sleeps."}]
    assert pairs[1].prompt == [{"role": "user", "content": post}]  # other sources untouched
    assert rows[0]["conv_A"][0]["content"] == post  # the input rows are not modified


ULTRA = {
    "instruction": "write",
    "completions": [
        {"model": "m1", "response": "best", "overall_score": 9},
        {"model": "m2", "response": "mid", "overall_score": 5},
        {"model": "m3", "response": "mid2", "overall_score": 5},
        {"model": "m4", "response": "worst", "overall_score": 1},
    ],
}


def test_ultrafeedback_strategies(tmp_path):
    worst, _ = pairs_of(tmp_path, [ULTRA], pair_strategy="best_vs_worst")
    assert [(p.chosen[0]["content"], p.rejected[0]["content"]) for p in worst] == [("best", "worst")]
    everything, _ = pairs_of(tmp_path, [ULTRA], pair_strategy="all_pairs")
    assert len(everything) == 5  # 6 pairs minus the tie mid/mid2
    random_pairs, _ = pairs_of(tmp_path, [ULTRA], pair_strategy="best_vs_random", seed=3)
    assert random_pairs[0].chosen[0]["content"] == "best" and random_pairs[0].rejected[0]["content"] != "best"


def test_ultrafeedback_all_tied_row_is_counted(tmp_path):
    row = {"instruction": "x", "completions": [{"response": "a", "score": 1}, {"response": "b", "score": 1}]}
    pairs, stats = pairs_of(tmp_path, [ULTRA, row])
    assert len(pairs) == 1 and stats.dropped == {"fewer than two distinct scores": 1}


def test_csv_and_parquet_sources(tmp_path):
    import datasets

    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": "c", "rejected": "d"}]
    ds = datasets.Dataset.from_list(rows)
    ds.to_csv(str(tmp_path / "d.csv"), index=False)
    ds.to_parquet(str(tmp_path / "d.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    for spec in ("d.csv", "d.parquet", "saved"):
        pairs, _ = load_pairs(str(tmp_path / spec))
        assert [p.chosen for p in pairs] == ["a", "c"]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("prompt,chosen,rejected\np,,b\n", 2),  # the first data row is line 2 (the header is line 1)
        ('prompt,chosen,rejected\n"two\nlines",a,b\nq,,d\n', 4),  # a quoted field spans lines 2-3
        ("prompt,chosen,rejected\n\np,a,b\n\nq,,d\n", 5),  # blank lines are skipped, still counted
    ],
)
def test_csv_errors_name_the_file_line(text: str, line: int, tmp_path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=f"line {line}, field 'chosen'"):
        load_pairs(str(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": \n',
            "line 2: malformed JSON",
        ),
        ('{"prompt": "p", "chosen": "a"}\n', "line 1, field 'rejected': missing field"),
        ('{"prompt": "p", "chosen": "  ", "rejected": "b"}\n', "line 1, field 'chosen': empty text"),
        (
            '{"prompt": "p", "chosen": "same", "rejected": "same"}\n',
            "line 1, field 'rejected': chosen and rejected are identical",
        ),
        ("", "no records"),
        ('{"text": "hello"}\n', "unknown preference format"),
        (
            '{"prompt": "p", "chosen": [{"role": "assistant"}], "rejected": "b"}\n',
            "field 'chosen': messages must be",
        ),
        (
            '{"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"}\n',
            "field 'margin': margin must be a number",
        ),
    ],
)
def test_bad_input_names_file_line_and_field(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError) as error:
        load_pairs(str(path))
    assert str(path) in str(error.value) and message in str(error.value)


def test_json_array_and_missing_file(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"prompt": "p", "chosen": "a", "rejected": "b"}]))
    assert len(load_pairs(str(path))[0]) == 1
    with pytest.raises(DataError, match="no such file"):
        load_pairs(str(tmp_path / "missing.jsonl"))
    with pytest.raises(DataError, match="unknown data_format"):
        load_pairs(str(path), data_format="nope")
